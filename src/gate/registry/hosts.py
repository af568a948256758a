"""Registry hosts as the registry client talks to them: which URL, which scheme, which credential key.

What a reference *is* (grammar, Docker Hub normalisation) is ``gate.imageref``'s; this module only
knows how to reach a registry once a reference has been parsed:

- Docker Hub's registry API is served by its own host, and Docker keeps its credentials under its
  index URL (both named in ``gate.imageref``);
- loopback registries (``localhost``, ``127.0.0.0/8``, ``[::1]``) speak plain HTTP, as Docker treats
  them; every other registry speaks HTTPS.
"""

from __future__ import annotations

import ipaddress

from gate.imageref import DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_INDEX


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
