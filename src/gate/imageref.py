"""Container image references: ``registry/repo[:tag]@sha256:<64 hex>``."""

from __future__ import annotations

import re

import msgspec

from gate.errors import UsageError

#: the reference grammar (Docker distribution), shared by every module that checks references
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
REPOSITORY = re.compile(r"^[a-z0-9]+([._-]+[a-z0-9]+|:[0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImageRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """An image pinned by digest; ``tag`` is kept for people, the digest is what counts."""

    image: str
    digest: str
    tag: str | None = None

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.image}{tag}@{self.digest}"


def parse_pinned(ref: str) -> ImageRef:
    """Parse ``REF@sha256:D``; a reference without a digest is refused (a tag can move)."""
    name, sep, digest = ref.partition("@")
    if not sep:
        raise UsageError(f"image {ref!r} is not pinned by digest: give it as REF@sha256:<64 hex digits>")
    if not DIGEST.match(digest):
        raise UsageError(f"image {ref!r}: digest must be sha256: followed by 64 lowercase hex digits")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG.match(tag):
            raise UsageError(f"image {ref!r}: invalid tag {tag!r}")
    if not REPOSITORY.match(name):
        raise UsageError(f"image {ref!r}: invalid repository name {name!r}")
    return ImageRef(image=name, digest=digest, tag=tag)
