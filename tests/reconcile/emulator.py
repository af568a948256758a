"""A Kubernetes API server for the reconciler's tests: kmock's emulator, taught what it lacks.

No real API server can run on these machines. ``kmock.KubernetesEmulator`` (PyPI ``kmock``) serves the
official client's create/get/list/patch/delete/watch from an in-memory store. Gate's ``Cluster`` needs
more than that, so ``GateEmulator`` subclasses kmock's handler (kmock's own extension point: its
docstring says "inherit and implement for your cases") and adds, each marked EMULATION below:

1. server-side apply: a PATCH ``application/apply-patch+yaml`` creates a missing object (201) and
   otherwise replaces the applied fields (single field manager); every write fills ``metadata.uid``,
   ``resourceVersion``, ``generation`` and ``creationTimestamp``, and bumps ``generation`` when
   ``spec`` changes.
2. ``dryRun=All``: the would-be object is returned; nothing is stored, no watch event is sent.
3. Namespaces: ``/api/v1/namespaces[/name]`` (kmock's path parser takes ``namespaces`` as a prefix).
4. label selectors on list: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``.
5. an admission webhook stand-in: ``refuse(predicate, message)`` makes create/apply (dry-run or not)
   of matching objects fail with a 403 worded like a real webhook denial.
6. ``set_status(...)``: a test sets a workload's status, as its controller would.
7. optimistic concurrency: a patch carrying ``metadata.resourceVersion`` that is not the stored one
   fails with 409 Conflict, as on a real API server.
8. an RBAC stand-in: ``forbid_list(plural)`` makes listing that resource fail with 403 Forbidden,
   worded as the API server words it, as when a role lacks ``list`` on it.
9. authentication: ``require_token(token)`` answers 401 Unauthorized, as an API server does, to a
   request without ``Authorization: Bearer <token>``.

``EmulatorThread`` runs it on a free 127.0.0.1 port in a background thread with its own event loop
(the synchronous kubernetes client would deadlock a loop shared with the test). ``python -m
tests.reconcile.emulator PORT`` runs it standalone for subprocess tests (port 0 picks one; the first
stdout line is ``ready http://127.0.0.1:PORT``). Production code knows nothing of any of this.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import datetime
import json
import re
import signal
import sys
import threading
import uuid
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml

WEBHOOK = "validation.gatekeeper.sh"
#: requests kmock's request log keeps (see GateEmulator.__call__)
REQUEST_LOG = 8
NAMESPACES = kmock.resource("", "v1", "namespaces")
_NAMESPACE_PATH = re.compile(r"/api/v1/namespaces(?:/([^/]+))?/?")
_APPLY = "application/apply-patch+yaml"
_WRITES = (kmock.action.CREATE, kmock.action.UPDATE)

Predicate = Callable[[dict[str, Any]], bool]


@attrs.frozen
class Refusal:
    """EMULATION 5: one registered webhook denial."""

    predicate: Predicate
    message: str
    webhook: str = WEBHOOK
    status: int = 403


def _conflict(message: str) -> kmock.KubernetesError:
    """A 409 Conflict Status, as the API server sends."""
    return kmock.KubernetesError(status=409, reason="Conflict", message=message, details={})


def _not_found(request: kmock.Request) -> kmock.KubernetesError:
    """A 404 NotFound Status naming the object, as the API server sends."""
    plural = request.resource.plural if request.resource is not None else "object"
    return kmock.KubernetesError(
        status=404, reason="NotFound", message=f'{plural} "{request.name}" not found', details={}
    )


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """EMULATION 4: the equality-based label selector grammar (comma = AND)."""
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


@attrs.define(kw_only=True)
class GateEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator with the behaviours of a real API server listed in the module docstring."""

    refusals: list[Refusal] = attrs.field(factory=list, init=False)
    forbidden_lists: set[str] = attrs.field(factory=set, init=False)
    required_token: str | None = attrs.field(default=None, init=False)
    _revision: int = attrs.field(default=0, init=False)

    # -- test hooks --------------------------------------------------------------------------------

    def refuse(self, predicate: Predicate, message: str, *, webhook: str = WEBHOOK, status: int = 403) -> None:
        """EMULATION 5: refuse create/apply of objects ``predicate`` accepts, as webhook ``webhook`` would."""
        self.refusals.append(Refusal(predicate, message, webhook, status))

    def forbid_list(self, plural: str) -> None:
        """EMULATION 8: listing ``plural`` (e.g. ``secrets``) is refused, as RBAC without ``list`` would."""
        self.forbidden_lists.add(plural)

    def require_token(self, token: str) -> None:
        """EMULATION 9: from now on, only requests bearing ``token`` are served; others get 401."""
        self.required_token = token

    def set_status(self, resource: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        """EMULATION 6: replace an object's ``status`` as its controller would (call in the server's loop)."""
        stored = self.objects[resource, namespace, name]
        new = copy.deepcopy(stored.raw)
        new["status"] = copy.deepcopy(status)
        new["metadata"]["resourceVersion"] = self._next_revision()
        stored.history.append(new)

    # -- the request path ------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """Serve one request, then forget all but the latest REQUEST_LOG requests.

        kmock keeps every request it served and matches each new one against that whole log, so a
        request costs more with every one before it (a 1,000-object cycle slowed to ~100 ms a GET).
        The tests here assert on stored objects, never on the request log, so it is kept short.
        """
        if self.required_token is not None and raw_request.headers.get("Authorization") != f"Bearer {self.required_token}":
            return aiohttp.web.json_response(  # EMULATION 9, the Status a real API server answers
                {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized",
                 "reason": "Unauthorized", "code": 401}, status=401)
        try:
            return await self._serve(raw_request)
        finally:
            if len(self._requests) > REQUEST_LOG:
                del self._requests[:-REQUEST_LOG]

    async def _serve(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """EMULATION 3: route ``/api/v1/namespaces[/name]`` as the cluster-scoped resource it is."""
        match = _NAMESPACE_PATH.fullmatch(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        body = await raw_request.read()
        text = body.decode("utf-8", "replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        name = match.group(1)
        query = dict(raw_request.query)
        method = raw_request.method.upper()
        action = {
            "GET": kmock.action.WATCH if query.get("watch") == "true" else (
                kmock.action.FETCH if name else kmock.action.LIST),
            "POST": kmock.action.CREATE,
            "PATCH": kmock.action.UPDATE,
            "DELETE": kmock.action.DELETE,
        }.get(method)
        request = kmock.Request(
            id=len(self._requests), raw_request=raw_request, url=raw_request.url, method=method,
            params=query, headers=dict(raw_request.headers), cookies=dict(raw_request.cookies),
            data=data, body=body, text=text, action=action, resource=NAMESPACES, namespace=None, name=name,
        )
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as e:  # rendered as a Status, exactly as kmock does for every other path
            if self._errors:
                self._errors[-1].append(e)
            return await self._render_error(e)

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        """Admission, dry-run, apply and preconditions before kmock's own store logic."""
        if request.resource is None or request.subresource is not None:
            return await super()._handle(request)
        if request.action == kmock.action.LIST and request.resource.plural in self.forbidden_lists:  # EMULATION 8
            raise kmock.KubernetesError(
                status=403, reason="Forbidden", details={},
                message=f'{request.resource.plural} is forbidden: User "system:serviceaccount:gate-system:gate" '
                f'cannot list resource "{request.resource.plural}" in API group "{request.resource.group}" at the cluster scope',
            )
        dry_run = request.params.get("dryRun") == "All"
        if request.action == kmock.action.DELETE and dry_run:
            async with self._lock:
                stored = self._stored(request)
            if stored is None:
                raise _not_found(request)
            return aiohttp.web.json_response(stored)  # EMULATION 2
        if request.action not in _WRITES:
            return await super()._handle(request)

        async with self._lock:
            stored = self._stored(request)
            would_be, status = self._would_be(request, stored)
            self._admit(would_be)  # EMULATION 5
            if dry_run:  # EMULATION 2: answer, store nothing, tell no watcher
                return aiohttp.web.json_response(would_be, status=status)
            if not self._is_apply(request):
                # kmock stores it; we only make the body carry what the server fills in.
                if request.action == kmock.action.CREATE:
                    meta = request.data.setdefault("metadata", {})
                    meta.update({k: would_be["metadata"][k] for k in ("uid", "resourceVersion",
                                                                      "generation", "creationTimestamp")})
        if self._is_apply(request):
            await self._store_applied(request, stored, would_be)
            return aiohttp.web.json_response(would_be, status=status)
        response = await super()._handle(request)  # kmock's own create / merge patch
        if request.action == kmock.action.UPDATE:
            async with self._lock:
                self._restamp(request, stored)
                return aiohttp.web.json_response(self._stored(request))
        return response

    async def _store_applied(
        self, request: kmock.Request, stored: dict[str, Any] | None, would_be: dict[str, Any]
    ) -> None:
        """EMULATION 1: persist a server-side apply (kmock would 404 on a missing object) and tell watchers."""
        assert request.resource is not None
        async with self._lock:
            key = self._key(request)
            if stored is None:
                if key in self.objects:
                    self.objects[key].create(would_be)  # re-created after a deletion: history kept
                else:
                    self.objects[key] = would_be
                await self._buses[request.resource].put({"type": "ADDED", "object": would_be})
            else:
                self.objects[key].history.append(would_be)
                await self._buses[request.resource].put({"type": "MODIFIED", "object": would_be})

    async def _serve_list(self, request: kmock.Request) -> Any:
        """EMULATION 4: kmock's list, with ``labelSelector`` applied."""
        result = await super()._serve_list(request)
        selector = request.params.get("labelSelector")
        if selector:
            result["items"] = [
                item for item in result["items"]
                if selector_matches(selector, (item.get("metadata") or {}).get("labels") or {})
            ]
        return result

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _is_apply(request: kmock.Request) -> bool:
        """Whether a PATCH is a server-side apply."""
        content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
        return request.action == kmock.action.UPDATE and content_type.split(";")[0].strip() == _APPLY

    def _key(self, request: kmock.Request) -> tuple[Any, str | None, str | None]:
        """The store key of the object a write addresses."""
        meta = (request.data or {}).get("metadata") or {} if isinstance(request.data, dict) else {}
        return (request.resource, request.namespace or meta.get("namespace"), request.name or meta.get("name"))

    def _stored(self, request: kmock.Request) -> dict[str, Any] | None:
        """The live object a request addresses, or None."""
        key = self._key(request)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return copy.deepcopy(self.objects[key].raw)

    def _next_revision(self) -> str:
        """A fresh resourceVersion (one counter for the whole server, as etcd's)."""
        self._revision += 1
        return str(self._revision)

    def _would_be(self, request: kmock.Request, stored: dict[str, Any] | None) -> tuple[dict[str, Any], int]:
        """EMULATION 1 and 7: the object a write would leave in the store, and the HTTP status it answers."""
        body = request.data if isinstance(request.data, dict) else {}
        if request.action == kmock.action.CREATE:
            if stored is not None:
                raise _conflict(f'{request.resource.plural} "{self._key(request)[2]}" already exists')
            return self._stamped(copy.deepcopy(body), None, request), 201
        if stored is None:
            if self._is_apply(request):
                return self._stamped(copy.deepcopy(body), None, request), 201
            raise _not_found(request)
        wanted_rv = (body.get("metadata") or {}).get("resourceVersion")
        if wanted_rv is not None and str(wanted_rv) != stored["metadata"].get("resourceVersion"):
            raise _conflict(
                f'Operation cannot be fulfilled on {request.resource.plural} "{request.name}": '
                "the object has been modified; please apply your changes to the latest version and try again"
            )
        if self._is_apply(request):
            new = copy.deepcopy(body)
            new.setdefault("metadata", {})
            if "status" in stored:
                new["status"] = stored["status"]
        else:
            scratch = kmock.Object(copy.deepcopy(stored))
            scratch.patch(body)
            new = copy.deepcopy(scratch.raw)
        return self._stamped(new, stored, request), 200

    def _stamped(self, new: dict[str, Any], old: dict[str, Any] | None, request: kmock.Request) -> dict[str, Any]:
        """EMULATION 1: server-set metadata on a would-be object."""
        meta = new.setdefault("metadata", {})
        _, namespace, name = self._key(request)
        meta["name"] = name
        if namespace is not None:
            meta["namespace"] = namespace
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            meta["generation"] = 1
        else:
            old_meta = old["metadata"]
            for key in ("uid", "creationTimestamp"):
                meta[key] = old_meta.get(key)
            generation = int(old_meta.get("generation") or 1)
            meta["generation"] = generation + 1 if new.get("spec") != old.get("spec") else generation
        meta["resourceVersion"] = self._next_revision()
        return new

    def _restamp(self, request: kmock.Request, old: dict[str, Any] | None) -> None:
        """EMULATION 1: after kmock merged a patch into the store, fix the server-set metadata."""
        key = self._key(request)
        current = copy.deepcopy(self.objects[key].raw)
        self.objects[key].history[-1] = self._stamped(current, old, request)

    def _admit(self, obj: dict[str, Any]) -> None:
        """EMULATION 5: the webhook stand-in; raises the denial a real API server would relay."""
        for refusal in self.refusals:
            if refusal.predicate(obj):
                raise kmock.KubernetesError(
                    status=refusal.status,
                    reason="Forbidden",
                    message=f'admission webhook "{refusal.webhook}" denied the request: {refusal.message}',
                    details={},
                )


def _load_resources(emulator: GateEmulator) -> None:
    """Discovery for the builtin kinds (kmock's bundled k3s snapshot); its legacy importlib call is not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        emulator.resources.load_bundled()


class EmulatorThread:
    """A ``GateEmulator`` served on 127.0.0.1 from a background thread with its own asyncio loop."""

    def __init__(self, port: int = 0) -> None:
        self.emulator = GateEmulator()
        self._port = port
        self._loop = asyncio.new_event_loop()
        self._started: Future[str] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self.url = ""

    def start(self, timeout_s: float = 30.0) -> EmulatorThread:
        """Start serving; raises with the server's reason if it cannot start."""
        self._thread.start()
        self.url = self._started.result(timeout=timeout_s)
        return self

    def _run(self) -> None:
        """Thread body: run the server until stop()."""
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as e:  # reported to start(), which fails the test with it
            if not self._started.done():
                self._started.set_exception(e)
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        """Serve until the stop event is set."""
        self._stop = asyncio.Event()
        async with self.emulator, kmock.Server(self.emulator, host="127.0.0.1", port=self._port or None) as server:
            _load_resources(self.emulator)
            self._started.set_result(f"http://127.0.0.1:{server.port}")
            await self._stop.wait()

    def call(self, fn: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """Run ``fn`` in the server's loop (between requests) and return its result."""

        async def run() -> Any:
            async with self.emulator._lock:
                return fn()

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=timeout_s)

    def forbid_list(self, plural: str) -> None:
        """EMULATION 8: listing ``plural`` (e.g. ``secrets``) is refused, as RBAC without ``list`` would."""
        self.forbidden_lists.add(plural)

    def set_status(self, resource: str, namespace: str | None, name: str, status: dict[str, Any]) -> None:
        """EMULATION 6 from the test's thread."""
        self.call(lambda: self.emulator.set_status(resource, namespace, name, status))

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


def write_kubeconfig(path: Path, server_url: str, *, namespace: str = "default", token: str | None = None) -> Path:
    """A kubeconfig for ``server_url`` (plain HTTP; a bearer ``token`` if given), as ``--kubeconfig`` reads it."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server_url}}],
        "users": [{"name": "tester", "user": {"token": token} if token else {}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "tester", "namespace": namespace}}],
        "current-context": "emulator",
        "preferences": {},
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _image_refusal(substring: str) -> Predicate:
    """A predicate matching objects with a container image containing ``substring``."""

    def matches(obj: dict[str, Any]) -> bool:
        from gate import workloads

        return any(substring in image for _, image in workloads.of(obj).images)

    return matches


def main(argv: list[str] | None = None) -> None:
    """Standalone mode for subprocess tests: serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m tests.reconcile.emulator", description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--deny-image", action="append", default=[], metavar="SUBSTRING",
                        help="EMULATION 5: refuse workloads with an image containing SUBSTRING (repeatable)")
    args = parser.parse_args(argv)

    async def serve() -> None:
        emulator = GateEmulator()
        for substring in args.deny_image:
            emulator.refuse(_image_refusal(substring), f"[gate-test] image {substring!r} is not allowed")
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        async with emulator, kmock.Server(emulator, host="127.0.0.1", port=args.port or None) as server:
            _load_resources(emulator)
            print(f"ready http://127.0.0.1:{server.port}", flush=True)
            await stop.wait()

    asyncio.run(serve())


if __name__ == "__main__":
    sys.exit(main())
