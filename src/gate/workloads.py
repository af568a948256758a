"""Which container images a Kubernetes object runs: the one answer for promote, reconcile and the webhook.

Every stage asks the same question, so it is answered here only. Known workload kinds name where their
pod spec is (``KINDS``, keyed by API group and kind: a core ``Service`` runs nothing, a Knative
``Service`` does). For every object, whatever its kind, a bounded walk then finds each
``initContainers`` / ``containers`` / ``ephemeralContainers`` list wherever it sits, so a custom
resource nobody listed is judged too.

Fail closed: anything shaped so that its images cannot be read with certainty — a container list that
is not a list, a container that is not a mapping, an image that is missing or not a string, a known
kind without its pod spec, nesting too deep or too large to walk — is a *problem*, and an object with
problems is blocked. It never passes as "no images".

Works on plain dicts and lists and on ruamel.yaml's round-trip ``CommentedMap``/``CommentedSeq``
(subclasses of dict and list); ``Container.node`` is the container mapping itself, for in-place edits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: every list of containers a pod spec can hold, in the order they start; each runs an image
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
#: deepest nesting walked (a real pod spec inside a custom resource is ~15 levels down)
MAX_DEPTH = 100
#: most mappings and lists walked in one object (etcd stores at most 1.5 MiB per object)
MAX_NODES = 1_000_000

_TEMPLATE = ("spec", "template", "spec")


@dataclass(frozen=True)
class PodSpecAt:
    """Where a known kind keeps its pod spec; ``unless``: a key under ``spec`` that replaces it."""

    path: tuple[str, ...]
    #: Argo Rollouts may run a referenced Deployment's template (``spec.workloadRef``) instead
    unless: str | None = None


#: the pod spec of each known workload kind, by (API group, kind)
KINDS: dict[tuple[str, str], PodSpecAt] = {
    ("", "Pod"): PodSpecAt(("spec",)),
    ("", "PodTemplate"): PodSpecAt(("template", "spec")),
    ("", "ReplicationController"): PodSpecAt(_TEMPLATE),
    ("apps", "Deployment"): PodSpecAt(_TEMPLATE),
    ("apps", "ReplicaSet"): PodSpecAt(_TEMPLATE),
    ("apps", "StatefulSet"): PodSpecAt(_TEMPLATE),
    ("apps", "DaemonSet"): PodSpecAt(_TEMPLATE),
    ("batch", "Job"): PodSpecAt(_TEMPLATE),
    ("batch", "CronJob"): PodSpecAt(("spec", "jobTemplate", "spec", "template", "spec")),
    ("argoproj.io", "Rollout"): PodSpecAt(_TEMPLATE, unless="workloadRef"),
    ("serving.knative.dev", "Service"): PodSpecAt(_TEMPLATE),
    ("serving.knative.dev", "Configuration"): PodSpecAt(_TEMPLATE),
    ("serving.knative.dev", "Revision"): PodSpecAt(("spec",)),
    ("apps.openshift.io", "DeploymentConfig"): PodSpecAt(_TEMPLATE),
}

#: kinds whose content is free-form strings by API validation: they run nothing, and a data key
#: named ``containers`` is a file name, not a container list
DATA_ONLY = frozenset({("", "ConfigMap"), ("", "Secret")})


@dataclass(frozen=True)
class Container:
    """One container of an object: where it is, its image, and its mapping."""

    #: e.g. ``spec.template.spec.containers[web]`` (by index when the container has no name)
    path: str
    image: str
    #: the container mapping itself (a CommentedMap when the object was read round-trip)
    node: Mapping[str, Any]


@dataclass(frozen=True)
class Workload:
    """Every container of an object, and why some could not be read (``problems`` block the object)."""

    containers: tuple[Container, ...]
    problems: tuple[str, ...]

    @property
    def images(self) -> list[tuple[str, str]]:
        """``(container path, image)`` for every container, in manifest order."""
        return [(c.path, c.image) for c in self.containers]

    @property
    def blocked(self) -> bool:
        """True when the object's images cannot all be read: it must not run."""
        return bool(self.problems)


def api_group(api_version: object) -> str:
    """The group of an ``apiVersion`` (``apps/v1`` → ``apps``; ``v1`` → the core group ``""``)."""
    return api_version.rpartition("/")[0] if isinstance(api_version, str) else ""


def pod_spec_at(api_version: object, kind: object) -> PodSpecAt | None:
    """Where a known workload kind keeps its pod spec, or None for any other kind."""
    return KINDS.get((api_group(api_version), kind)) if isinstance(kind, str) else None


def of(obj: object) -> Workload:
    """Every container (with its image) of the Kubernetes object ``obj``, and every problem found.

    ``obj`` may be anything (a webhook receives what it is sent): what is not a mapping is a problem.
    """
    if not isinstance(obj, Mapping):
        return Workload((), (f"the object is {_shape(obj)}, not a mapping: its containers cannot be read",))
    kind = obj.get("kind")
    kind = kind if isinstance(kind, str) else ""
    if (api_group(obj.get("apiVersion")), kind) in DATA_ONLY:
        return Workload((), ())
    problems: list[str] = []
    known = pod_spec_at(obj.get("apiVersion"), kind)
    if known is not None:
        problems.extend(_pod_spec_problems(obj, kind, known))
    containers, walk_problems = _walk(obj)
    return Workload(tuple(containers), tuple(problems + walk_problems))


def _pod_spec_problems(obj: Mapping[str, Any], kind: str, known: PodSpecAt) -> list[str]:
    """A known kind must have its pod spec, a mapping with a container list, where the table says."""
    node: Any = obj
    for depth, step in enumerate(known.path):
        if depth == 1 and known.unless is not None and isinstance(node, Mapping) and node.get(known.unless) is not None:
            return []  # the pod template is another object's, judged as that object
        node = node.get(step) if isinstance(node, Mapping) else None
    where = ".".join(known.path)
    if not isinstance(node, Mapping):
        return [f"{kind} has no pod spec at {where} (found {_shape(node)}): its containers cannot be read"]
    if node.get("containers") is None:
        return [f"{kind} has no containers at {where}.containers: its containers cannot be read"]
    return []


def _walk(obj: Mapping[str, Any]) -> tuple[list[Container], list[str]]:
    """Every container list anywhere in ``obj``, depth-first in manifest order, without recursion.

    Skipped: ``status`` (what a controller reports, not what runs) and the ``annotations``/``labels``
    of any ``metadata`` when they are string maps (a key named ``containers`` there is a label, not a
    container); a custom resource's ``metadata.labels`` holding lists or mappings is walked like the rest.
    """
    containers: list[Container] = []
    problems: list[str] = []
    stack: list[tuple[Any, str, int]] = [(obj, "", 0)]
    seen = 0
    while stack:
        node, path, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            problems.append(f"the object has more than {MAX_NODES} mappings and lists: too large to walk for containers")
            break
        if depth > MAX_DEPTH:
            problems.append(f"{path}: nested deeper than {MAX_DEPTH} levels: too deep to walk for containers")
            break
        children: list[tuple[Any, str, int]] = []
        if isinstance(node, Mapping):
            for field in CONTAINER_LISTS:
                if field in node:
                    _read_list(node[field], _join(path, field), containers, problems)
            is_meta = path == "metadata" or path.endswith(".metadata")
            for key, value in node.items():
                if key in CONTAINER_LISTS or (depth == 0 and key == "status"):
                    continue
                if is_meta and key in ("annotations", "labels") and _string_map(value):
                    continue  # a string map holds no container; anything else under it is walked
                if isinstance(value, Mapping | list):
                    children.append((value, _join(path, str(key)), depth + 1))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                if isinstance(value, Mapping | list):
                    children.append((value, f"{path}[{index}]", depth + 1))
        stack.extend(reversed(children))  # popped in manifest order
    return containers, problems


def _read_list(value: Any, path: str, containers: list[Container], problems: list[str]) -> None:
    """The containers of one container list; any entry that is not a container with an image is a problem."""
    if value is None:
        return  # ``containers: null`` / ``initContainers:`` — an empty list, as the API server reads it
    if not isinstance(value, list):
        problems.append(f"{path} must be a list of containers, found {_shape(value)}")
        return
    for index, container in enumerate(value):
        if not isinstance(container, Mapping):
            problems.append(f"{path}[{index}] must be a container (a mapping), found {_shape(container)}")
            continue
        name = container.get("name")
        where = f"{path}[{name if isinstance(name, str) and name else index}]"
        image = container.get("image")
        if not isinstance(image, str) or not image.strip():
            problems.append(f"container {where} has no image (found {_shape(image)}): it cannot be judged")
            continue
        containers.append(Container(where, image, container))


def _string_map(value: Any) -> bool:
    """A mapping of strings only (what labels and annotations are): it can hold no container list."""
    return isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values())


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _shape(value: object) -> str:
    """What a value is, for a message, without echoing it (it may be large or hostile)."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, Sequence):
        return "a list"
    return f"a {type(value).__name__}"
