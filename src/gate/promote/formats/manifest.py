"""Plain Kubernetes manifests: every container of a workload whose image is the promoted repository.

Containers, init containers and ephemeral containers of Pods, the pod templates of Deployments,
StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and Argo Rollouts, and CronJobs'
job templates; ``kind: List`` items too. Each matching ``image:`` becomes ``repo[:tag]@sha256:...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from gate.errors import GitOpsError
from gate.promote.formats import yamltext as yt
from gate.promote.formats.refs import pinned, same_repository, split_ref

_TEMPLATE = ("spec", "template", "spec")
POD_SPEC: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": _TEMPLATE,
    "StatefulSet": _TEMPLATE,
    "DaemonSet": _TEMPLATE,
    "ReplicaSet": _TEMPLATE,
    "ReplicationController": _TEMPLATE,
    "Job": _TEMPLATE,
    "Rollout": _TEMPLATE,
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


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
    """Whether a document is (or lists) a workload with a pod spec."""
    return any(obj.get("kind") in POD_SPEC for obj in _objects(doc))


def containers(doc: Any) -> Iterator[Any]:
    """Every container mapping (with an ``image`` string) of every workload in ``doc``."""
    for obj in _objects(doc):
        node: Any = obj if obj.get("kind") in POD_SPEC else None
        for step in POD_SPEC.get(obj.get("kind"), ()):
            node = node.get(step) if yt.is_map(node) else None
        if not yt.is_map(node):
            continue
        for field in CONTAINER_LISTS:
            items = node.get(field)
            for container in items if yt.is_seq(items) else ():
                if yt.is_map(container) and isinstance(container.get("image"), str):
                    yield container


def edit(src: yt.Source, docs: list[Any], *, image: str, digest: str | None, tag: str | None) -> list[yt.Splice]:
    """Splices that pin every container running ``image``; none found is an error."""
    new = pinned(image, tag, digest)
    splices, found = [], 0
    for doc in docs:
        for container in containers(doc):
            if same_repository(split_ref(container["image"])[0], image):
                found += 1
                change = yt.replace(src, yt.value_span(src, container, "image"), new)
                if change is not None:
                    splices.append(change)
    if not found:
        raise GitOpsError(f"{src.path}: no container image {image} found")
    return splices
