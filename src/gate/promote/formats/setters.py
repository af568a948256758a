"""Flux image-automation setter markers: ``# {"$imagepolicy": "ns:policy[:tag|:name|:digest]"}``.

A marker is a line comment on a scalar value. Without a suffix the value is a whole reference and
becomes ``repo[:tag][@digest]``; ``:name`` takes the repository, ``:tag`` the tag, ``:digest`` the
digest (as Flux's image-automation-controller writes them). Only markers that are real comments
after a scalar count: marker-like text inside a block scalar is data and is left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gate.errors import GitOpsError
from gate.imageref import join, same_repository
from gate.promote.formats import yamltext as yt

MARKER = re.compile(r'#\s*\{\s*"\$imagepolicy"\s*:\s*"([^"]+)"\s*\}')
FIELDS = ("tag", "name", "digest")


def has_markers(text: str) -> bool:
    """Whether the text carries any ``$imagepolicy`` marker (the auto-detection test)."""
    return MARKER.search(text) is not None


@dataclass(frozen=True)
class Marker:
    """One marked value: its policy (``ns:name``), field (``image`` for a whole reference) and token."""

    policy: str
    field: str
    span: yt.Span


def _scalars(node: Any, out: dict[int, list[tuple[int, Any, Any]]], src: yt.Source) -> None:
    """Index every scalar value of ``node`` by line: ``line -> [(offset, parent, key)]``."""
    keys = list(node.keys()) if yt.is_map(node) else range(len(node)) if yt.is_seq(node) else ()
    for key in keys:
        child = node[key]
        if yt.is_map(child) or yt.is_seq(child):
            _scalars(child, out, src)
            continue
        line, col = yt.position(node, key)
        if child is None and yt.is_map(node):  # an empty value sits on its key's line
            line, col = node.lc.key(key)
        out.setdefault(line, []).append((src.offset(line, col), node, key))


def markers(src: yt.Source, docs: list[Any]) -> list[Marker]:
    """Every marker that is a comment on a scalar value, with that value's token."""
    index: dict[int, list[tuple[int, Any, Any]]] = {}
    for doc in docs:
        _scalars(doc, index, src)
    found = []
    for match in MARKER.finditer(src.text):
        line = src.line_of(match.start())
        before = [c for c in index.get(line, []) if c[0] < match.start()]
        if not before:
            continue
        _, parent, key = max(before, key=lambda c: c[0])
        span = yt.value_span(src, parent, key)
        gap = src.text[span.end : match.start()]
        if gap.strip(" \t") or (not span.empty and not gap):
            continue  # the '#' is part of the value, not a comment on it
        parts = match.group(1).split(":")
        if len(parts) == 3 and parts[2] in FIELDS:
            found.append(Marker(":".join(parts[:2]), parts[2], span))
        elif len(parts) == 2:
            found.append(Marker(match.group(1), "image", span))
    return found


def _value(marker: Marker, image: str, digest: str | None, tag: str | None) -> str | None:
    """What a marker's field gets; None leaves it (no tag given for a ``:tag`` marker)."""
    return {"image": join(image, tag, digest), "name": image, "tag": tag, "digest": digest}[marker.field]


def edit(
    src: yt.Source, docs: list[Any], *, image: str, digest: str | None, tag: str | None, setter: str | None
) -> list[yt.Splice]:
    """Splices for the markers of ``setter`` (or of every policy whose image is ``image``)."""
    found = markers(src, docs)
    if setter is not None:
        policies = {setter}
    else:
        policies = set()
        for m in found:
            current = yt.current_text(m.span)
            if m.field == "image" and same_repository(current, image):
                policies.add(m.policy)
            elif m.field == "name" and same_repository(current, image):
                policies.add(m.policy)
    chosen = [m for m in found if m.policy in policies]
    if not chosen:
        what = f"image policy marker {setter!r}" if setter else f"container image {image}"
        raise GitOpsError(f"{src.path}: no {what} found")
    splices = []
    for m in chosen:
        value = _value(m, image, digest, tag)
        change = yt.replace(src, m.span, value) if value is not None else None
        if change is not None:
            splices.append(change)
    return splices
