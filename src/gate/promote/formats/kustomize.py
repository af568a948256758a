"""Kustomize ``images:`` entries: set ``newTag`` and ``digest`` of the entry for the promoted image.

kustomize (v4+) renders an entry with both ``newTag`` and ``digest`` as ``name:tag@digest``, so the
release tag stays readable and the digest decides. An entry matches when its ``newName`` or its
``name`` (tag ignored), is the promoted repository; an entry matched by ``name`` whose ``newName``
points elsewhere gets ``newName`` rewritten, since the promoted image lives at ``image``. If no entry
matches, a new one is appended.
"""

from __future__ import annotations

from typing import Any

from gate.errors import GitOpsError
from gate.imageref import same_repository
from gate.promote.formats import yamltext as yt

KINDS = ("Kustomization", "Component")
FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def is_kustomization(doc: Any, path: str) -> bool:
    """A kustomize file: by file name, or ``kind: Kustomization|Component`` of kustomize's API group."""
    if path.replace("\\", "/").rsplit("/", 1)[-1] in FILE_NAMES:
        return True
    if not yt.is_map(doc) or doc.get("kind") not in KINDS:
        return False
    api = doc.get("apiVersion")
    return api is None or str(api).startswith("kustomize.config.k8s.io/")


def _matches(entry: Any, image: str) -> bool:
    """Whether an ``images:`` entry is the one for ``image``."""
    return any(
        isinstance(entry.get(key), str) and same_repository(entry[key], image)
        for key in ("newName", "name")
    )


def edit(src: yt.Source, docs: list[Any], *, image: str, digest: str | None, tag: str | None) -> list[yt.Splice]:
    """Splices that pin ``image`` in the kustomization's ``images:``."""
    maps = [d for d in docs if yt.is_map(d)]
    if len(maps) != 1:
        raise GitOpsError(f"{src.path}: a kustomization must be one YAML mapping, found {len(maps)} documents")
    doc = maps[0]
    images = doc.get("images")
    if images is not None and not yt.is_seq(images):
        raise GitOpsError(f"{src.path}: 'images' is not a list")
    entries = [e for e in images or [] if yt.is_map(e) and _matches(e, image)]
    splices: list[yt.Splice] = []
    for entry in entries:
        updates: list[tuple[str, str | None]] = []
        new_name = entry.get("newName")
        if isinstance(new_name, str) and not same_repository(new_name, image):
            updates.append(("newName", image))
        if tag is not None:
            updates.append(("newTag", tag))
        if digest is not None:
            updates.append(("digest", digest))
        splices += yt.set_keys(src, entry, updates, at_end=True)
    if entries:
        return splices
    return _add_entry(src, doc, images, image=image, digest=digest, tag=tag)


def _fields(image: str, digest: str | None, tag: str | None) -> list[tuple[str, str]]:
    """The keys of a new entry, in kustomize's documented order."""
    fields = [("name", image)]
    if tag is not None:
        fields.append(("newTag", tag))
    if digest is not None:
        fields.append(("digest", digest))
    return fields


def _add_entry(
    src: yt.Source, doc: Any, images: Any, *, image: str, digest: str | None, tag: str | None
) -> list[yt.Splice]:
    """Append ``- name: image`` (with newTag/digest) to ``images:``, creating the list if needed."""
    fields = _fields(image, digest, tag)
    tokens = [(k, v, yt.render(v, "", False)) for k, v in fields]
    if images is not None and yt.is_flow(images):
        close = yt.flow_end(src, src.offset(*yt.position(doc, "images"))) - 1
        splices, sep = [], ", " if len(images) else ""
        for n, (key, value, _) in enumerate(tokens):
            token = yt.render(value, "", True)
            head = (sep + "{" if n == 0 else ", ") + f"{key}: "
            tail = "}" if n == len(tokens) - 1 else ""
            splices.append(yt.Splice(close, close, head + token + tail, len(head), "", value))
        return splices
    if images:  # a block list: copy the last item's dash and key columns
        last = len(images) - 1
        line, col = yt.position(images, last)
        dash = src.text.rfind("-", src.starts[line], src.offset(line, col))
        if dash < 0:
            raise GitOpsError(f"{src.where(src.offset(line, col))}: cannot find the '-' of the last image entry")
        dash_col, key_col = dash - src.starts[line], col
        end, header = yt.value_end(src, images, last), ""
    elif images is not None or "images" in doc:  # "images:" with nothing after it
        dash_col = key_col = yt.key_indent(src, doc)
        key_col += 2
        end, header = src.offset(*doc.lc.key("images")), ""
    else:  # no images: at all: add it after the last top-level key
        if yt.is_flow(doc):
            raise GitOpsError(f"{src.path}: cannot add 'images' to a flow-style kustomization")
        indent = yt.key_indent(src, doc)
        dash_col, key_col = indent, indent + 2
        end, header = yt.value_end(src, doc, list(doc.keys())[-1]), " " * indent + "images:"
    splices = []
    for n, (key, value, token) in enumerate(tokens):
        prefix = (" " * dash_col + "-" + " " * (key_col - dash_col - 1)) if n == 0 else " " * key_col
        prefix += f"{key}: "
        if n == 0 and header:  # the new "images:" line travels with the first entry line
            prefix = header + src.newline + prefix
        splices.append(yt.insert_line_after(src, end, prefix + token, len(prefix), value))
    return splices
