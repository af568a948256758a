"""Real servers for the promotion tests (recipes: ../shared/REAL-COMPONENTS.md sections 1 and 2).

- ``start_registry``: the CNCF distribution registry (Debian ``docker-registry serve``) on a free
  127.0.0.1 port, storage and config in a temp folder; optionally htpasswd (bcrypt) or token auth.
- ``TokenServer``: a stand-in token server (the registry's ``auth: token`` needs one and none is packaged):
  a minimal HTTP endpoint that checks basic credentials and issues RS256 JWTs, with the signing
  certificate in ``x5c``, which the registry verifies against its ``rootcertbundle``.
- ``start_podman``: podman's Docker-compatible API on a unix socket, its own storage root, with a
  registries.conf that marks the test registries insecure (plain HTTP).
- ``push_image`` / ``push_index``: hand-built OCI images (gzip layers + config + manifest) and a
  two-platform image index pushed with httpx.

Everything is stopped by its own PID; a server that cannot start raises with its log, never skips.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import signal
import socket
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

REGISTRY_BIN = "docker-registry"
PODMAN_BIN = "podman"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json,"
    "application/vnd.docker.distribution.manifest.v2+json,application/vnd.docker.distribution.manifest.list.v2+json"
)


class ServerError(RuntimeError):
    """A test server could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process by its own PID, then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------------------------- registry


@dataclass
class Registry:
    """One running ``docker-registry``; ``host`` is ``127.0.0.1:PORT``; user/password when htpasswd is on."""

    root: Path
    host: str = ""
    proc: subprocess.Popen[bytes] | None = None
    user: str | None = None
    password: str | None = None
    token: TokenServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def log(self) -> Path:
        return self.root / "registry.log"

    def client(self) -> httpx.Client:
        """An httpx client for the registry's API, with basic credentials or tokens when it needs them
        (independent of gate's own auth code, so tests can set up and inspect with it)."""
        auth: Any = None
        if self.token is not None:
            auth = _DirectTokenAuth(self.token)
        elif self.user and self.password:
            auth = (self.user, self.password)
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)


def _write_htpasswd(path: Path, user: str, password: str) -> None:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{user}:{hashed}\n")


def start_registry(
    root: Path, *, htpasswd: tuple[str, str] | None = None, token: TokenServer | None = None, attempts: int = 5
) -> Registry:
    """Start a registry with storage under ``root``; ready when ``/v2/`` answers 200 or 401."""
    root.mkdir(parents=True, exist_ok=True)
    reg = Registry(root)
    auth: dict[str, Any] = {}
    if htpasswd:
        reg.user, reg.password = htpasswd
        _write_htpasswd(root / "htpasswd", *htpasswd)
        auth = {"htpasswd": {"realm": "gate-test", "path": str(root / "htpasswd")}}
    elif token:
        reg.token = token
        auth = {
            "token": {
                "realm": token.realm,
                "service": token.service,
                "issuer": token.issuer,
                "rootcertbundle": str(token.cert_path),
            }
        }
    last = ""
    for _ in range(attempts):
        port = free_port()
        config = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "cache": {"blobdescriptor": "inmemory"},
                "filesystem": {"rootdirectory": str(root / "data")},
                "delete": {"enabled": True},
            },
            "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if auth:
            config["auth"] = auth
        (root / "config.yml").write_text(json.dumps(config, indent=2))  # JSON is YAML
        log = reg.log.open("ab")
        proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=log, stderr=log)
        log.close()
        reg.proc, reg.host = proc, f"127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                if httpx.get(f"{reg.url}/v2/", timeout=1).status_code in (200, 401):
                    return reg
            time.sleep(0.1)
        last = _tail(reg.log)
        _stop_process(proc)
    raise ServerError(f"docker-registry did not start in {root}:\n{last}")


def stop_registry(reg: Registry) -> None:
    """Stop the registry by its PID."""
    if reg.proc is not None:
        _stop_process(reg.proc)


# --------------------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Stand-in for a registry token server (docker distribution "token" auth): grants every requested
    action to one user (basic auth), refuses everyone else with 401. Records the scopes it was asked for."""

    root: Path
    user: str
    password: str
    service: str = "gate-test-registry"
    issuer: str = "gate-test-token-issuer"
    port: int = 0
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _key: Any = None
    _cert_der: bytes = b""

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    @property
    def cert_path(self) -> Path:
        return self.root / "token-cert.pem"

    def start(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.root.mkdir(parents=True, exist_ok=True)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.issuer)])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._cert_der = cert.public_bytes(serialization.Encoding.DER)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                """Quiet: the tests read the token server's effects, not its access log."""

            def do_GET(self) -> None:  # noqa: N802 — http.server's naming
                from urllib.parse import parse_qs, urlsplit

                query = parse_qs(urlsplit(self.path).query)
                header = self.headers.get("Authorization", "")
                expected = "Basic " + base64.b64encode(f"{outer.user}:{outer.password}".encode()).decode()
                outer.requests.append({"scopes": query.get("scope", []), "authorized": header == expected})
                if header != expected:
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"details":"bad credentials"}')
                    return
                body = json.dumps({"token": outer.issue(query.get("scope", []), query.get("service", [""])[0])})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def issue(self, scopes: list[str], service: str) -> str:
        """An RS256 JWT granting ``scopes`` (``repository:NAME:a,b``) to the user."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._cert_der).decode()]}
        claims = {
            "iss": self.issuer, "sub": self.user, "aud": service, "exp": now + 300, "nbf": now - 10,
            "iat": now, "jti": uuid.uuid4().hex, "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


class _DirectTokenAuth(httpx.Auth):
    """Test-side auth for the token registry: answers a Bearer challenge with a token minted directly."""

    def __init__(self, server: TokenServer) -> None:
        self.server = server

    def auth_flow(self, request: httpx.Request) -> Any:
        response = yield request
        if response.status_code == 401:
            from gate.registry.auth import parse_challenge

            _, params = parse_challenge(response.headers.get("WWW-Authenticate", ""))
            scopes = [params["scope"]] if params.get("scope") else []
            request.headers["Authorization"] = "Bearer " + self.server.issue(scopes, params.get("service", ""))
            yield request


# ------------------------------------------------------------------------------------------- podman


def short_runroot() -> Path:
    """podman refuses a runroot longer than 50 characters, and pytest's temp folders (pytest-xdist's
    above all) are longer: a short folder under /tmp, removed after the store is reset."""
    return Path(tempfile.mkdtemp(prefix="gate-podman-", dir="/tmp"))


@dataclass
class Podman:
    """A running ``podman system service``; ``socket_url`` is ``unix://...`` for the docker SDK."""

    root: Path
    proc: subprocess.Popen[bytes] | None = None
    runroot: Path = field(default_factory=short_runroot)

    @property
    def socket_url(self) -> str:
        return f"unix://{self.root / 'podman.sock'}"

    def base_argv(self) -> list[str]:
        return [PODMAN_BIN, "--root", str(self.root / "storage"), "--runroot", str(self.runroot)]

    def env(self) -> dict[str, str]:
        return os.environ | {"CONTAINERS_REGISTRIES_CONF": str(self.root / "registries.conf")}


def start_podman(root: Path, insecure_registries: list[str]) -> Podman:
    """Start podman's Docker API on a unix socket under ``root``; ready when ``/_ping`` answers."""
    root.mkdir(parents=True, exist_ok=True)
    pod = Podman(root)
    conf = "".join(f'[[registry]]\nlocation = "{host}"\ninsecure = true\n\n' for host in insecure_registries)
    (root / "registries.conf").write_text(conf)
    log_path = root / "service.log"
    with log_path.open("ab") as log:
        pod.proc = subprocess.Popen(
            [*pod.base_argv(), "system", "service", "--time=0", pod.socket_url],
            stdout=log, stderr=log, env=pod.env(),
        )
    sock = root / "podman.sock"
    transport = httpx.HTTPTransport(uds=str(sock))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pod.proc.poll() is None:
        if sock.exists():
            with contextlib.suppress(httpx.HTTPError), httpx.Client(transport=transport, base_url="http://podman") as c:
                if c.get("/_ping", timeout=2).status_code == 200:
                    return pod
        time.sleep(0.1)
    stop_podman(pod)
    raise ServerError(f"podman system service did not start in {root}:\n{_tail(log_path)}")


def stop_podman(pod: Podman) -> None:
    """Stop the service by its PID, then ``system reset -f`` to release the store's overlay mounts."""
    if pod.proc is not None:
        _stop_process(pod.proc, timeout=20)
    subprocess.run(
        [*pod.base_argv(), "system", "reset", "-f"], env=pod.env(), capture_output=True, timeout=120, check=False
    )
    shutil.rmtree(pod.runroot, ignore_errors=True)


# ----------------------------------------------------------------------------------- hand-built images


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class PushedImage:
    """Digests of a pushed image: manifest, config and layers."""

    digest: str
    config: str
    layers: tuple[str, ...]
    manifest: bytes


@dataclass(frozen=True)
class PushedIndex:
    """Digests of a pushed image index and its per-platform images."""

    digest: str
    children: tuple[PushedImage, ...]


def _layer(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """(gzip tar, uncompressed tar) holding ``files``, deterministic."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(content), 0, 0o644
            tar.addfile(info, io.BytesIO(content))
    plain = raw.getvalue()
    return gzip.compress(plain, mtime=0), plain


def _push_blob(client: httpx.Client, repo: str, data: bytes) -> str:
    digest = sha256(data)
    if client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200:
        return digest
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, (r.status_code, r.text)
    url = httpx.URL(r.headers["Location"]).copy_merge_params({"digest": digest})
    if not url.is_absolute_url:
        url = client.base_url.join(url)
    r = client.put(url, content=data, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 201, (r.status_code, r.text)
    return digest


def _put_manifest(client: httpx.Client, repo: str, ref: str, body: bytes, media_type: str) -> str:
    r = client.put(f"/v2/{repo}/manifests/{ref}", content=body, headers={"Content-Type": media_type})
    assert r.status_code == 201, (r.status_code, r.text)
    assert r.headers["Docker-Content-Digest"] == sha256(body)
    return sha256(body)


def push_image(
    reg: Registry, repo: str, tag: str | None = None, *, content: bytes = b"hello\n", layers: int = 2,
    arch: str = "amd64",
) -> PushedImage:
    """Push a small OCI image (``layers`` gzip layers + config + manifest) to ``repo``; by digest when no tag."""
    with reg.client() as client:
        layer_descs, diff_ids = [], []
        for i in range(layers):
            gz, plain = _layer({f"file{i}.txt": content + f" layer {i} {arch}\n".encode()})
            layer_descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                "digest": _push_blob(client, repo, gz), "size": len(gz)})
            diff_ids.append(sha256(plain))
        config = json.dumps({
            "architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }, sort_keys=True).encode()
        config_digest = _push_blob(client, repo, config)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest,
                       "size": len(config)},
            "layers": layer_descs,
        }, indent=2).encode()
        digest = _put_manifest(client, repo, tag or sha256(manifest), manifest, OCI_MANIFEST)
    return PushedImage(digest, config_digest, tuple(d["digest"] for d in layer_descs), manifest)


def push_index(reg: Registry, repo: str, tag: str | None = None, *, content: bytes = b"multi\n") -> PushedIndex:
    """Push a two-platform (linux/amd64, linux/arm64) OCI image index whose children are pushed by digest."""
    children = tuple(push_image(reg, repo, content=content, layers=1, arch=arch) for arch in ("amd64", "arm64"))
    index = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": child.digest, "size": len(child.manifest),
             "platform": {"architecture": arch, "os": "linux"}}
            for child, arch in zip(children, ("amd64", "arm64"))
        ],
    }, indent=2).encode()
    with reg.client() as client:
        digest = _put_manifest(client, repo, tag or sha256(index), index, OCI_INDEX)
    return PushedIndex(digest, children)


def manifest_digest(reg: Registry, repo: str, ref: str) -> str | None:
    """What ``repo:ref`` resolves to on ``reg`` (independent of gate's client), or None."""
    with reg.client() as client:
        r = client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ACCEPT})
        if r.status_code == 404:
            return None
        assert r.status_code == 200, (r.status_code, r.text)
        return sha256(r.content)


def blob_bytes(reg: Registry, repo: str, digest: str) -> bytes | None:
    """The blob's bytes from ``repo`` on ``reg``, or None when it is not there."""
    with reg.client() as client:
        r = client.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        return r.content if r.status_code == 200 else None


def new_repo(prefix: str = "gate") -> str:
    """A fresh repository name, so session-scoped registries can be shared by tests."""
    return f"{prefix}/r{uuid.uuid4().hex[:10]}"
