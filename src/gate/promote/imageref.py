"""Image references as the registry client needs them: which registry, which repository, which tag/digest.

``gate.imageref.parse_pinned`` checks that a reference is pinned; this module splits any reference
(``registry/repo[:tag][@sha256:...]``) the way Docker does, so the client knows which host to talk to:

- the first path component is a registry when it has a ``.`` or a ``:`` or is ``localhost``;
  otherwise the image is on Docker Hub (``docker.io``) and a one-component name gets ``library/``;
- loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``) speak plain HTTP, as Docker treats them;
  every other registry speaks HTTPS.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from gate.errors import UsageError
from gate.imageref import DIGEST, REPOSITORY, TAG

DOCKER_HUB = "docker.io"
#: the host that serves Docker Hub's registry API
DOCKER_HUB_API = "registry-1.docker.io"
#: the key Docker uses for Docker Hub in config.json ``auths`` and for credential helpers
DOCKER_HUB_INDEX = "https://index.docker.io/v1/"


@dataclass(frozen=True)
class Reference:
    """One image reference split into registry host, repository path, tag and digest."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What goes after ``/manifests/``: the digest when there is one, else the tag (``latest`` by default)."""
        return self.digest or self.tag or "latest"

    @property
    def name(self) -> str:
        """``registry/repository`` without tag or digest (what ``docker tag``/``push`` call the repository)."""
        return f"{self.registry}/{self.repository}"

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (tag dropped)."""
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.name}{tag}{digest}"


def parse_reference(ref: str) -> Reference:
    """Split ``[registry/]repo[:tag][@sha256:D]``; a malformed reference is a ``UsageError``."""
    name, sep, digest = ref.strip().partition("@")
    if sep and not DIGEST.match(digest):
        raise UsageError(f"image {ref!r}: digest must be sha256: followed by 64 lowercase hex digits")
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG.match(tag):
            raise UsageError(f"image {ref!r}: invalid tag {tag!r}")
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry in ("index.docker.io", DOCKER_HUB_API):
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or not REPOSITORY.match(repository) or ":" in repository:
        raise UsageError(f"image {ref!r}: invalid repository name {repository!r}")
    if registry.lower() != registry or not registry or "/" in registry:
        raise UsageError(f"image {ref!r}: invalid registry host {registry!r}")
    return Reference(registry, repository, tag, digest or None)


def host_of(registry: str) -> str:
    """The host part of ``host[:port]`` (brackets of an IPv6 literal removed)."""
    if registry.startswith("["):
        return registry[1 : registry.find("]")]
    return registry.rsplit(":", 1)[0] if registry.count(":") == 1 else registry


def is_loopback(registry: str) -> bool:
    """``localhost``, ``127.x.x.x`` or ``::1``, with or without a port: Docker talks plain HTTP to these."""
    host = host_of(registry)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_base(registry: str) -> str:
    """The base URL of the registry's ``/v2/`` API (``http://`` for loopback, Docker Hub's API host)."""
    if registry == DOCKER_HUB:
        return f"https://{DOCKER_HUB_API}"
    scheme = "http" if is_loopback(registry) else "https"
    return f"{scheme}://{registry}"


def credential_key(registry: str) -> str:
    """The server name Docker uses for this registry in config.json and with credential helpers."""
    return DOCKER_HUB_INDEX if registry == DOCKER_HUB else registry
