"""Lenient image-reference splitting for values found in GitOps files.

``gate.promote.imageref`` validates references the registry client will use and refuses malformed
ones; a GitOps file may hold placeholders or template text, which must simply not match, never fail.
Repositories are compared the way Docker names them (``redis`` is ``docker.io/library/redis``).
"""

from __future__ import annotations


def split_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``repo[:tag][@digest]`` → ``(repo, tag, digest)``; a colon in the registry host is not a tag."""
    name, sep, digest = ref.strip().partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, (digest if sep else None)


def normalize_repository(repo: str) -> str:
    """Docker's canonical spelling: a registry host first, ``library/`` for official Hub images."""
    first, slash, rest = repo.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = "docker.io", repo
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = "docker.io"
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def same_repository(a: str, b: str) -> bool:
    """Whether two repositories (without tag or digest) name the same image repository."""
    return bool(a) and bool(b) and normalize_repository(a) == normalize_repository(b)


def pinned(image: str, tag: str | None, digest: str | None) -> str:
    """``image[:tag][@digest]``: the reference gate writes where a whole reference is one value."""
    return image + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def split_registry(image: str) -> tuple[str | None, str]:
    """``(registry, path)`` when the first component is a host (has ``.``/``:`` or is ``localhost``)."""
    first, slash, rest = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, image
