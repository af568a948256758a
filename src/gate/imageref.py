"""Container image references: the one grammar, and Docker Hub normalised in one place.

``[registry/]repository[:tag][@sha256:<64 hex>]`` as Docker reads it:

- the first path component is a registry host when it has a ``.`` or a ``:`` or is ``localhost``;
  otherwise the image is on Docker Hub, whose registry is named ``docker.io`` (``index.docker.io``
  and ``registry-1.docker.io`` are the same registry), and a one-component name gets ``library/``.
  So ``nginx``, ``docker.io/library/nginx`` and ``index.docker.io/library/nginx`` are one
  repository: ``canonical`` says so for promote's file matching, admission and evaluate alike.
- a reference is never a URL and never holds credentials (``user:password@host/repo``): ``parse``
  refuses both, without echoing the value, so a secret never reaches a message, a log or a record.

``parse`` is strict (what the registry client and the CLI accept); ``split`` is lenient, for values
found in GitOps files, which may hold placeholders that must simply not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import msgspec

from gate.errors import UsageError

DOCKER_HUB = "docker.io"
#: the host that serves Docker Hub's registry API
DOCKER_HUB_API = "registry-1.docker.io"
#: the host Docker's own config names Docker Hub by (``auths`` keys, ``credHelpers``)
DOCKER_HUB_INDEX_HOST = "index.docker.io"
#: the key Docker uses for Docker Hub in config.json ``auths`` and for credential helpers
DOCKER_HUB_INDEX = f"https://{DOCKER_HUB_INDEX_HOST}/v1/"
#: other names of Docker Hub's registry
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB_INDEX_HOST, DOCKER_HUB_API})

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
#: the repository path under a registry (``library/nginx``, ``team/app``)
REPOSITORY = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
#: a registry host, with an optional port (``ghcr.io``, ``127.0.0.1:5000``, ``[::1]:5000``)
REGISTRY = re.compile(rf"^(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-f:.]+\])(?::[0-9]+)?$")
_DIGEST_PREFIX = re.compile(r"^sha(?:256|384|512):")


@dataclass(frozen=True)
class Reference:
    """One image reference: registry host (Docker Hub as ``docker.io``), repository path, tag, digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, canonical: equal names are the same repository."""
        return f"{self.registry}/{self.repository}"

    @property
    def daemon_name(self) -> str:
        """The repository as a Docker daemon names it: Docker Hub's without the registry, any other with it."""
        return self.repository if self.registry == DOCKER_HUB else self.name

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (tag dropped)."""
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        return join(self.name, self.tag, self.digest)


class ImageRef(msgspec.Struct, frozen=True, omit_defaults=True):
    """An image pinned by digest (a decision's artifact); ``tag`` is kept for people, the digest is what counts."""

    #: the repository as it was given (``nginx`` stays ``nginx``; ``canonical`` compares spellings)
    image: str
    digest: str
    tag: str | None = None

    def __str__(self) -> str:
        return join(self.image, self.tag, self.digest)


# --- lenient: values found in files ----------------------------------------------------------------


def split(ref: str) -> tuple[str, str | None, str | None]:
    """``name[:tag][@digest]`` → ``(name, tag, digest)`` without judging any part; a colon in the
    registry host (``host:5000/app``) is not a tag."""
    name, sep, digest = ref.strip().partition("@")
    tag = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, (digest if sep else None)


def split_registry(name: str) -> tuple[str | None, str]:
    """``(registry, path)`` of a repository name; registry None when the name is on Docker Hub implicitly."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return None, name


def canonical(name: str) -> str:
    """The one spelling of the repository ``name`` (a tag or digest on it is dropped):
    ``nginx``, ``docker.io/library/nginx`` and ``index.docker.io/library/nginx:1`` → ``docker.io/library/nginx``."""
    registry, path = split_registry(split(name)[0])
    if registry is None or registry in DOCKER_HUB_ALIASES:
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return f"{registry}/{path}"


def same_repository(a: str, b: str) -> bool:
    """Whether two repository names (tags and digests ignored) name the same repository."""
    return bool(split(a)[0]) and bool(split(b)[0]) and canonical(a) == canonical(b)


def join(name: str, tag: str | None, digest: str | None) -> str:
    """``name[:tag][@digest]``: a reference written whole."""
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


# --- strict: references gate acts on ----------------------------------------------------------------


def parse(ref: str, what: str = "image") -> Reference:
    """Parse ``[registry/]repository[:tag][@sha256:D]``; anything else is a ``UsageError`` naming ``what``.

    A URL or a reference carrying credentials is refused without showing it.
    """
    ref = ref.strip()
    _refuse_credentials(ref, what)
    name, tag, digest = split(ref)
    if digest is not None and not DIGEST.fullmatch(digest):
        raise UsageError(f"{what} {ref!r}: digest must be sha256: followed by 64 lowercase hex digits")
    if tag is not None and not TAG.fullmatch(tag):
        raise UsageError(f"{what} {ref!r}: invalid tag {tag!r}")
    registry, repository = split_registry(name)
    if registry is not None and not REGISTRY.fullmatch(registry):
        raise UsageError(f"{what} {ref!r}: invalid registry host {registry!r}")
    if not REPOSITORY.fullmatch(repository):
        raise UsageError(f"{what} {ref!r}: invalid repository name {repository!r}")
    registry_name, path = canonical(name).split("/", 1)
    return Reference(registry_name, path, tag, digest)


def parse_pinned(ref: str, what: str = "image") -> ImageRef:
    """Parse ``REF@sha256:D`` (evaluate's ``--image``); a reference without a digest is refused (a tag can move)."""
    parsed = require_digest(ref, what)
    name, tag, _ = split(ref)
    assert parsed.digest is not None
    return ImageRef(image=name, digest=parsed.digest, tag=tag)


def require_digest(ref: str, what: str = "image") -> Reference:
    """``parse``, refusing a reference that is not pinned by digest."""
    parsed = parse(ref, what)
    if parsed.digest is None:
        raise UsageError(f"{what} {ref.strip()!r} is not pinned by digest: give it as REF@sha256:<64 hex digits>")
    return parsed


def require_tag(ref: str, what: str = "target") -> Reference:
    """``parse``, refusing anything but ``REGISTRY/REPO:TAG`` (a tag, no digest): where a release tag is set."""
    parsed = parse(ref, what)
    if parsed.digest is not None or parsed.tag is None:
        raise UsageError(f"{what} {ref.strip()!r} must be REGISTRY/REPO:TAG (a tag, no digest)")
    return parsed


def require_repository(name: str, what: str = "image") -> Reference:
    """``parse``, refusing a tag or a digest: a repository name alone."""
    parsed = parse(name, what)
    if parsed.digest is not None or parsed.tag is not None:
        raise UsageError(f"{what} {name.strip()!r}: give the repository only, without tag or digest")
    return parsed


def digest_of(ref: str) -> str | None:
    """The digest a valid reference is pinned to; None when it is not pinned or not a valid reference."""
    try:
        return parse(ref).digest
    except UsageError:
        return None


def _refuse_credentials(ref: str, what: str) -> None:
    """Refuse a URL or ``user:password@`` in a reference. The value is not shown: it may be a secret."""
    if "://" in ref:
        raise UsageError(
            f"{what}: an image reference has no scheme (https://...): give REGISTRY/REPO[:TAG][@sha256:D]; "
            "credentials come from the Docker config, never from the reference (the value is not shown)"
        )
    name, at, after = ref.rpartition("@")
    if at and ("@" in name or not _DIGEST_PREFIX.match(after)):
        raise UsageError(
            f"{what}: what follows '@' in the image reference is not a sha256 digest; credentials "
            "(user:password@host) are never accepted in a reference: use the Docker config (the value is not shown)"
        )
