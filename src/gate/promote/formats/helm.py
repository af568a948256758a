"""Helm values: the image mapping at a dotted key (``image``, ``frontend.image``) or a single string.

The chart convention is ``repository`` / ``tag`` / ``digest`` (some charts split off ``registry``);
``repository`` is rewritten only when it names another repository, ``digest`` is added after ``tag``.
The same key is looked up inside a Flux ``HelmRelease``'s ``spec.values`` and an Argo CD
``Application``'s ``spec.source.helm.valuesObject`` when the file is one of those.
"""

from __future__ import annotations

from typing import Any

from gate.errors import GitOpsError
from gate.imageref import DOCKER_HUB, join, same_repository, split_registry
from gate.promote.formats import yamltext as yt

_WRAPPERS = {"HelmRelease": ("spec", "values"), "Application": ("spec", "source", "helm", "valuesObject")}


def _walk(node: Any, keys: list[str]) -> tuple[Any, Any] | None:
    """``(parent, key)`` at the end of ``keys`` (digits index lists), or None when a step is missing."""
    parent: Any = None
    last: Any = None
    for part in keys:
        if parent is not None:
            node = parent[last]
        if yt.is_map(node) and part in node:
            parent, last = node, part
        elif yt.is_seq(node) and part.isdigit() and int(part) < len(node):
            parent, last = node, int(part)
        else:
            return None
    return (parent, last) if parent is not None else None


def locate(docs: list[Any], values_key: str) -> tuple[Any, Any] | None:
    """Find ``values_key`` in the first document that has it (directly, or inside a known wrapper)."""
    keys = [k for k in values_key.split(".") if k]
    for doc in docs:
        found = _walk(doc, keys)
        if found is None and yt.is_map(doc) and doc.get("kind") in _WRAPPERS:
            found = _walk(doc, [*_WRAPPERS[doc["kind"]], *keys])
        if found is not None:
            return found
    return None


def edit(
    src: yt.Source, docs: list[Any], *, image: str, digest: str | None, tag: str | None, values_key: str
) -> list[yt.Splice]:
    """Splices that pin ``image`` at ``values_key``."""
    found = locate(docs, values_key)
    if found is None:
        raise GitOpsError(f"{src.path}: values key {values_key!r} not found")
    parent, key = found
    node = parent[key]
    if isinstance(node, str):
        change = yt.replace(src, yt.value_span(src, parent, key), join(image, tag, digest))
        return [change] if change is not None else []
    if not yt.is_map(node):
        raise GitOpsError(f"{src.path}: values key {values_key!r} is neither an image mapping nor an image reference")
    return yt.set_keys(src, node, _updates(node, image, digest, tag), at_end=False)


def _updates(node: Any, image: str, digest: str | None, tag: str | None) -> list[tuple[str, str | None]]:
    """What to write into an image mapping; ``None`` values keep a key only as an insertion anchor."""
    updates: list[tuple[str, str | None]] = []
    registry, repository = node.get("registry"), node.get("repository")
    if isinstance(registry, str) and registry:
        current = f"{registry}/{repository}" if isinstance(repository, str) else registry
        if same_repository(current, image):
            updates += [("registry", None), ("repository", None)]
        else:
            host, rest = split_registry(image)
            updates += [("registry", host or DOCKER_HUB), ("repository", rest)]
    elif isinstance(repository, str) and same_repository(repository, image):
        updates.append(("repository", None))
    else:
        updates.append(("repository", image))
    if tag is not None or "tag" in node:
        updates.append(("tag", tag))
    if digest is not None:
        updates.append(("digest", digest))
    return updates
