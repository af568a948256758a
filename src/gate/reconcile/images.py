"""Where the container images of a Kubernetes object are.

Rendering, the admission re-check and the reconcile report all need the same answer to "which images
would this object run, and in which container": one function, so they can never disagree.
"""

from __future__ import annotations

from typing import Any

# The pod spec of each workload kind, as a path of keys from the object's root.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "PodTemplate": ("template", "spec"),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "ReplicationController": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# Every list of containers a pod spec can hold; all of them run an image.
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec_path(kind: str) -> tuple[str, ...] | None:
    """The keys leading to the pod spec of a workload ``kind``, or None when the kind runs no pods."""
    return _POD_SPEC_PATHS.get(kind)


def workload_images(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """``(container path, image)`` for every container of a workload object, in manifest order.

    The path names the container, e.g. ``spec.template.spec.containers[web]`` (by index when the
    container has no name). A container without an image yields ``""`` so a policy can refuse it
    rather than miss it. Kinds that run no pods, and malformed specs, yield nothing.
    """
    keys = _POD_SPEC_PATHS.get(str(obj.get("kind", "")))
    if keys is None:
        return []
    spec: Any = obj
    for key in keys:
        spec = spec.get(key) if isinstance(spec, dict) else None
    if not isinstance(spec, dict):
        return []
    prefix = ".".join(keys)
    found: list[tuple[str, str]] = []
    for list_name in _CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if not isinstance(container, dict):
                continue
            name = container.get("name")
            label = name if isinstance(name, str) and name else str(index)
            image = container.get("image")
            found.append((f"{prefix}.{list_name}[{label}]", image if isinstance(image, str) else ""))
    return found
