"""Write a promoted image into a GitOps file, changing only the image value bytes.

``update_image`` detects the file's format (kustomize ``images:``, Helm values, plain manifests,
Flux setter markers), lets that format's module find the values with ruamel.yaml, and splices the new
tokens into the original text: comments, key order, quoting, indentation, blank lines, ``---``
separators and line endings stay exactly as they were. Already-current files give no changes, so a
repeated promotion is a no-op rather than an empty commit.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from gate.errors import GitOpsError, UsageError
from gate.imageref import DIGEST, TAG, require_repository

FORMATS = ("kustomize", "helm", "manifest", "setters")


@dataclass(frozen=True)
class ImageChange:
    """One value changed (``old == ""``: a key or entry was added); ``line`` is 1-based, in the new text."""

    path: str
    line: int
    old: str
    new: str


@dataclass(frozen=True)
class EditResult:
    """The edited text and what changed; no changes means the file already pins this image."""

    text: str
    changes: tuple[ImageChange, ...]
    format: str


def _check_inputs(image: str, digest: str | None, tag: str | None) -> None:
    """Refuse values that are not an image repository, digest or tag before they reach a file."""
    require_repository(image, "image")
    if digest is not None and not DIGEST.fullmatch(digest):
        raise UsageError(f"digest {digest!r}: must be sha256: followed by 64 lowercase hex digits")
    if tag is not None and not TAG.fullmatch(tag):
        raise UsageError(f"tag {tag!r}: not a valid image tag")
    if digest is None and tag is None:
        raise UsageError(f"image {image}: nothing to write (neither digest nor tag given)")


def detect_format(text: str, docs: list[Any], path: str) -> str:
    """Which format a file is, for ``format="auto"``.

    Flux setter markers win over everything: where they are present, Flux's automation owns exactly
    those fields (a marked kustomization's ``images:`` entry is usually named after a placeholder).
    """
    from gate.promote.formats import kustomize, manifest, setters

    if setters.has_markers(text):
        return "setters"
    if any(kustomize.is_kustomization(d, path) for d in docs) or (not docs and kustomize.is_kustomization(None, path)):
        return "kustomize"
    if any(manifest.is_workload(d) for d in docs):
        return "manifest"
    return "helm"


def update_image(
    text: str,
    *,
    path: str,
    image: str,
    digest: str | None,
    tag: str | None,
    format: str = "auto",
    values_key: str = "image",
    setter: str | None = None,
) -> EditResult:
    """Pin ``image`` (``repo``, no tag) to ``digest`` (and ``tag``) in the GitOps file ``text``.

    ``digest=None`` writes tags only, as Flux's image automation does; gate itself always pins.
    Raises ``GitOpsError`` for invalid YAML, a missing ``values_key`` or an image the file does not use.
    """
    from gate.promote.formats import helm, kustomize, manifest, setters
    from gate.promote.formats import yamltext as yt

    _check_inputs(image, digest, tag)
    if format != "auto" and format not in FORMATS:
        raise UsageError(f"unknown GitOps file format {format!r} (one of: auto, {', '.join(FORMATS)})")
    src = yt.Source(text, path)
    docs = [d for d in yt.load_documents(src) if d is not None]
    kind = detect_format(text, docs, path) if format == "auto" else format
    if kind == "kustomize":
        splices = kustomize.edit(src, docs, image=image, digest=digest, tag=tag)
    elif kind == "helm":
        splices = helm.edit(src, docs, image=image, digest=digest, tag=tag, values_key=values_key)
    elif kind == "manifest":
        splices = manifest.edit(src, docs, image=image, digest=digest, tag=tag)
    else:
        splices = setters.edit(src, docs, image=image, digest=digest, tag=tag, setter=setter)
    new_text, changes = _apply(src, splices)
    return EditResult(new_text, changes, kind)


def _apply(src: Any, splices: list[Any]) -> tuple[str, tuple[ImageChange, ...]]:
    """Apply non-overlapping splices left to right; insertions at one offset keep their order."""
    from gate.promote.formats.yamltext import LINE_BREAK

    ordered = sorted(enumerate(splices), key=lambda p: (p[1].start, p[0]))
    out: list[str] = []
    placed: list[tuple[int, Any]] = []
    cursor = length = 0
    for _, s in ordered:
        if s.start < cursor:
            raise GitOpsError(f"{src.where(s.start)}: two edits overlap (is the same value referenced twice?)")
        chunk = src.text[cursor : s.start]
        out.append(chunk)
        length += len(chunk)
        placed.append((length + s.value_at, s))
        out.append(s.text)
        length += len(s.text)
        cursor = s.end
    out.append(src.text[cursor:])
    new_text = "".join(out)
    changes = tuple(ImageChange(src.path, len(LINE_BREAK.findall(new_text, 0, at)) + 1, s.old, s.new) for at, s in placed)
    return new_text, changes


def unified_diff(path: str, old_text: str, new_text: str) -> str:
    """A ``git diff``-style unified diff (``a/``, ``b/`` headers) for ``gate promote --dry-run``."""
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    out = []
    for line in lines:
        if line.endswith(("\n", "\r")):
            out.append(line)
        else:
            out.append(line + "\n\\ No newline at end of file\n")
    return "".join(out)
