"""A STAND-IN for the OCI 1.1 referrers API in front of the real distribution registry — not a real registry.

The distribution registry 2.8 (Debian's ``docker-registry``, what the tests run) has no referrers API.
This proxy forwards every request to it unchanged, except that it does what the OCI distribution
spec 1.1 asks of a registry with the API: a manifest PUT whose body has a ``subject`` is answered with
an ``OCI-Subject`` header and remembered, and ``GET /v2/<name>/referrers/<digest>`` answers an image
index of the remembered referrers of that digest (``artifactType`` filter applied and announced in
``OCI-Filters-Applied``; ``page_size`` splits it into pages linked by ``Link: <…>; rel="next"``).
``extra`` adds descriptors to a listing, to play a registry that lists what it should not.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_REFERRERS = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "date", "server"}


@dataclass
class ReferrersStandIn:
    """The proxy: ``host`` is ``127.0.0.1:PORT``; ``upstream`` the real registry's ``http://host:port``."""

    upstream: str
    page_size: int = 0
    #: answer referrers GETs with this status and an error body instead (0: answer the listing)
    fail_status: int = 0
    #: (name, digest) -> descriptors of the referrers PUT through the proxy
    referrers: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    #: (name, digest) -> descriptors listed besides the real ones
    extra: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    host: str = ""
    _server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                with httpx.Client(base_url=standin.upstream, timeout=30) as client:
                    response = client.request(self.command, self.path, content=body, headers=headers)
                extra_headers: dict[str, str] = {}
                match = _MANIFEST.match(urlsplit(self.path).path)
                if self.command == "PUT" and match and response.status_code == 201:
                    extra_headers.update(standin._remember(match.group("name"), body, response))
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() in _HOP:
                        continue
                    if key.lower() == "location":
                        value = value.replace(standin.upstream, f"http://{standin.host}")
                    self.send_header(key, value)
                for key, value in extra_headers.items():
                    self.send_header(key, value)
                data = b"" if self.command == "HEAD" else response.content
                self.send_header("Content-Length", str(len(data) if self.command != "HEAD" else
                                                       int(response.headers.get("Content-Length") or 0)))
                self.end_headers()
                if data:
                    self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                match = _REFERRERS.match(url.path)
                if match is None:
                    self._forward()
                    return
                if standin.fail_status:
                    error = b'{"errors":[{"code":"UNKNOWN","message":"stand-in failure"}]}'
                    self.send_response(standin.fail_status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                query = dict(parse_qsl(url.query))
                key = (match.group("name"), match.group("digest"))
                listed = standin.referrers.get(key, []) + standin.extra.get(key, [])
                headers = {"Content-Type": OCI_INDEX}
                if "artifactType" in query:
                    listed = [d for d in listed if d.get("artifactType") == query["artifactType"]]
                    headers["OCI-Filters-Applied"] = "artifactType"
                page = int(query.get("page", "0"))
                if standin.page_size:
                    start = page * standin.page_size
                    if start + standin.page_size < len(listed):
                        rest = urlencode({"page": page + 1} | ({"artifactType": query["artifactType"]}
                                                               if "artifactType" in query else {}))
                        headers["Link"] = f'<{url.path}?{rest}>; rel="next"'
                    listed = listed[start:start + standin.page_size]
                body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}).encode()
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _remember(self, name: str, body: bytes, response: httpx.Response) -> dict[str, str]:
        manifest = json.loads(body)
        subject = manifest.get("subject") if isinstance(manifest, dict) else None
        if not isinstance(subject, dict):
            return {}
        descriptor = {
            "mediaType": manifest.get("mediaType"),
            "digest": response.headers["Docker-Content-Digest"],
            "size": len(body),
            "artifactType": manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType"),
        }
        if manifest.get("annotations"):
            descriptor["annotations"] = manifest["annotations"]
        known = self.referrers.setdefault((name, subject["digest"]), [])
        if all(d["digest"] != descriptor["digest"] for d in known):
            known.append(descriptor)
        return {"OCI-Subject": subject["digest"]}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
