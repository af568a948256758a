"""One repository on one registry over the OCI distribution API (httpx): manifests, blobs, uploads.

Every manifest fetched by digest is checked against that digest, and so is every blob read with
``get_blob``; sizes are bounded before anything is read whole. Failures are ``RegistryError`` lines
naming the registry and repository (the registry's error code, never a credential).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx

from gate.errors import RegistryError
from gate.imageref import Reference
from gate.registry.auth import RegistryAuth, load_credentials
from gate.registry.hosts import api_base

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ",".join(MANIFEST_TYPES)
#: a manifest larger than this is not a manifest (the distribution registry's own limit is 4 MiB)
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
TIMEOUT = httpx.Timeout(30.0, read=300.0)
CHUNK = 1024 * 1024


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def verify_digest(data: bytes, expected: str, what: str) -> None:
    """Refuse bytes whose sha256 is not ``expected`` (a registry must never substitute content)."""
    actual = sha256_digest(data)
    if actual != expected:
        raise RegistryError(f"{what}: content digest {actual} does not match the requested {expected}; refusing")


def _error_detail(response: httpx.Response) -> str:
    """``CODE: message`` from the registry's error body, if it sent one."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        code, message = str(first.get("code", "")), str(first.get("message", ""))
    except Exception:  # noqa: BLE001 — any non-conforming body just means "no detail"
        return ""
    return f"{code}: {message[:200]}" if message else code


class Repository:
    """One repository on one registry, with the client (and auth) that talks to it."""

    def __init__(self, ref: Reference, client: httpx.Client) -> None:
        self.ref = ref
        self.client = client

    @property
    def label(self) -> str:
        return f"registry {self.ref.registry} repository {self.ref.repository}"

    def url(self, kind: str, reference: str) -> str:
        return f"/v2/{self.ref.repository}/{kind}/{reference}"

    def fail(self, what: str, response: httpx.Response) -> RegistryError:
        detail = _error_detail(response)
        if not detail and response.status_code == 401:
            detail = "UNAUTHORIZED"
        elif not detail and response.status_code == 403:
            detail = "DENIED"
        suffix = f" {detail}" if detail else ""
        return RegistryError(f"{self.label}: {what} failed: HTTP {response.status_code}{suffix}")

    def request(self, method: str, url: str | httpx.URL, what: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.client.request(method, url, **kwargs)
        except httpx.HTTPError as e:
            where = api_base(self.ref.registry)
            raise RegistryError(f"{self.label}: {what} failed: {type(e).__name__} talking to {where}") from None

    def manifest_digest(self, reference: str) -> str | None:
        """The digest ``reference`` (tag or digest) resolves to, or None when it does not exist."""
        what = f"resolve manifest {reference}"
        response = self.request("HEAD", self.url("manifests", reference), what, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code == 200 and response.headers.get("Docker-Content-Digest", "").startswith("sha256:"):
            return response.headers["Docker-Content-Digest"]
        # HEAD carries no error body and some registries omit the digest header: ask with GET
        response = self.request("GET", self.url("manifests", reference), what, headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self.fail(what, response)
        return sha256_digest(response.content)

    def get_manifest(self, digest: str) -> tuple[bytes, str]:
        """The manifest's exact bytes and media type, checked against ``digest``."""
        what = f"get manifest {digest}"
        response = self.request("GET", self.url("manifests", digest), what, headers={"Accept": ACCEPT})
        if response.status_code != 200:
            raise self.fail(what, response)
        data = response.content
        if len(data) > MAX_MANIFEST_BYTES:
            raise RegistryError(f"{self.label}: manifest {digest} is larger than {MAX_MANIFEST_BYTES} bytes; refusing")
        verify_digest(data, digest, f"{self.label}: manifest")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            declared = json.loads(data).get("mediaType")
        except (json.JSONDecodeError, AttributeError):
            raise RegistryError(f"{self.label}: manifest {digest} is not a JSON object") from None
        media_type = declared or media_type
        if media_type not in MANIFEST_TYPES:
            raise RegistryError(f"{self.label}: manifest {digest} has unsupported media type {media_type!r}")
        return data, media_type

    def put_manifest(self, reference: str, data: bytes, media_type: str, digest: str) -> httpx.Response:
        """PUT the exact bytes under ``reference`` and check the digest the registry reports; the response
        (its headers: ``OCI-Subject`` says a registry took a referrer)."""
        what = f"put manifest {digest} as {reference}"
        response = self.request(
            "PUT", self.url("manifests", reference), what, content=data, headers={"Content-Type": media_type}
        )
        if response.status_code not in (200, 201):
            raise self.fail(what, response)
        echoed = response.headers.get("Docker-Content-Digest")
        if echoed and echoed != digest:
            raise RegistryError(f"{self.label}: {what}: the registry stored it as {echoed}; refusing")
        return response

    def has_blob(self, digest: str) -> bool:
        what = f"check blob {digest}"
        response = self.request("HEAD", self.url("blobs", digest), what)
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self.fail(what, response)

    def get_blob(self, digest: str, max_bytes: int) -> bytes:
        """The blob's bytes, read with a bound (at most one byte past ``max_bytes``) and checked against ``digest``."""
        what = f"get blob {digest}"
        chunks: list[bytes] = []
        size = 0
        try:
            with self.client.stream("GET", self.url("blobs", digest)) as response:
                if response.status_code != 200:
                    response.read()
                    raise self.fail(what, response)
                for chunk in response.iter_bytes(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise RegistryError(f"{self.label}: blob {digest} is larger than {max_bytes} bytes; refusing")
                    chunks.append(chunk)
        except httpx.HTTPError as e:
            raise RegistryError(f"{self.label}: {what} failed: {type(e).__name__}") from None
        data = b"".join(chunks)
        verify_digest(data, digest, f"{self.label}: blob")
        return data

    def put_blob(self, data: bytes) -> str:
        """Upload ``data`` unless the repository has it already; returns its digest."""
        digest = sha256_digest(data)
        if not self.has_blob(digest):
            _, location = self.start_upload(digest)
            self.finish_upload(location, digest, iter((data,)), len(data))
        return digest

    def start_upload(self, digest: str, mount_from: str | None = None) -> tuple[bool, str]:
        """POST an upload (optionally a mount): (True, "") when mounted, else (False, upload Location)."""
        params = {"mount": digest, "from": mount_from} if mount_from else None
        what = f"mount blob {digest} from {mount_from}" if mount_from else f"start upload of {digest}"
        response = self.request("POST", f"/v2/{self.ref.repository}/blobs/uploads/", what, params=params)
        if mount_from and response.status_code == 201:
            return True, ""
        if response.status_code != 202 or not response.headers.get("Location"):
            raise self.fail(what, response)
        return False, response.headers["Location"]

    def finish_upload(self, location: str, digest: str, body: Iterator[bytes], size: int | None) -> None:
        """PUT the whole blob to the upload session (query merged, never replaced: it carries ``_state``)."""
        url = self.client.base_url.join(location) if location.startswith("/") else httpx.URL(location)
        url = url.copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        what = f"upload blob {digest}"
        response = self.request("PUT", url, what, content=body, headers=headers)
        if response.status_code not in (201, 204):
            raise self.fail(what, response)


def open_client(registry: str, scopes: list[str], timeout: float | None = None) -> httpx.Client:
    """An httpx client for one registry with its credentials and the given token scopes.

    ``timeout`` (seconds, every phase of every request) replaces TIMEOUT where a caller answers within
    a bound of its own (admission), so a request it stopped waiting for does not run on."""
    auth = RegistryAuth(registry, load_credentials(registry), scopes)
    limit = TIMEOUT if timeout is None else httpx.Timeout(timeout)
    return httpx.Client(base_url=api_base(registry), auth=auth, timeout=limit, follow_redirects=True)


def pull_scope(ref: Reference) -> str:
    """The token scope that reads ``ref``'s repository."""
    return f"repository:{ref.repository}:pull"


def push_scope(ref: Reference) -> str:
    """The token scope that reads and writes ``ref``'s repository."""
    return f"repository:{ref.repository}:pull,push"


__all__ = [
    "ACCEPT",
    "CHUNK",
    "DOCKER_MANIFEST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "MAX_MANIFEST_BYTES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Repository",
    "open_client",
    "pull_scope",
    "push_scope",
    "sha256_digest",
    "verify_digest",
]
