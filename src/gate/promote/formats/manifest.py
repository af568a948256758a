"""Plain Kubernetes manifests: every container of a workload whose image is the promoted repository.

Which containers an object has is ``gate.workloads``' answer, the same reconcile and the admission
webhook use: the pod spec of every known kind (Pods, Deployments, StatefulSets, DaemonSets,
ReplicaSets, ReplicationControllers, Jobs, CronJobs, PodTemplates, Argo Rollouts, Knative Services,
Configurations and Revisions, OpenShift DeploymentConfigs) and any ``containers`` /
``initContainers`` / ``ephemeralContainers`` list of any other kind; ``kind: List`` items too. Each
matching ``image:`` becomes ``repo[:tag]@sha256:...``. A file with an object whose containers cannot
be read is refused, not half-edited.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gate import workloads
from gate.errors import GitOpsError
from gate.imageref import join, same_repository
from gate.promote.formats import yamltext as yt


def _objects(doc: Any) -> Iterator[Any]:
    """The Kubernetes objects of one document (a ``kind: List`` yields its items)."""
    if not yt.is_map(doc):
        return
    if doc.get("kind") == "List" and yt.is_seq(doc.get("items")):
        for item in doc["items"]:
            yield from _objects(item)
    elif "apiVersion" in doc and "kind" in doc:
        yield doc


def is_workload(doc: Any) -> bool:
    """Whether a document is (or lists) an object that runs containers (or has container fields gate cannot read)."""
    for obj in _objects(doc):
        if workloads.pod_spec_at(obj.get("apiVersion"), obj.get("kind")):
            return True  # a known kind: no need to walk it
        workload = workloads.of(obj)
        if workload.containers or workload.problems:
            return True
    return False


def containers(src: yt.Source, doc: Any) -> Iterator[workloads.Container]:
    """Every container (with an image) of every object in ``doc``; an unreadable one is a GitOpsError."""
    for obj in _objects(doc):
        workload = workloads.of(obj)
        if workload.problems:
            meta = obj.get("metadata")
            name = meta.get("name") if yt.is_map(meta) else None
            raise GitOpsError(f"{src.path}: {obj.get('kind')} {name}: {workload.problems[0]}: gate cannot read its containers")
        yield from workload.containers


def edit(src: yt.Source, docs: list[Any], *, image: str, digest: str | None, tag: str | None) -> list[yt.Splice]:
    """Splices that pin every container running ``image``; none found is an error."""
    new = join(image, tag, digest)
    splices, found = [], 0
    for doc in docs:
        for container in containers(src, doc):
            if same_repository(container.image, image):
                found += 1
                change = yt.replace(src, yt.value_span(src, container.node, "image"), new)
                if change is not None:
                    splices.append(change)
    if not found:
        raise GitOpsError(f"{src.path}: no container image {image} found")
    return splices
