"""The only module that talks to Kubernetes.

Everything the reconciler asks of a cluster goes through ``Cluster``: read, server-side dry-run
(so the cluster's own admission webhooks have their say), server-side apply, prune, events, rollout
health and a Lease so only one reconciler acts at a time. It speaks the plain API through the
official client's dynamic client, so any kind the cluster serves works, and it turns every client
failure into a ``GateError``: ``ClusterUnavailable`` (temporary: back off and retry),
``AdmissionRefused`` (the cluster refused this object) or ``ReconcileError`` (anything else),
each naming the object and carrying the API server's own message, never a credential.

``kubernetes`` is imported only here, and only when a ``Cluster`` is built.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import logging
import os
import shutil
import socket
import tempfile
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from gate import rfc3339
from gate.errors import ReconcileError

logger = logging.getLogger(__name__)

FIELD_MANAGER = "gate"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "gate"
DEFAULT_NAMESPACE = "default"
_REFUSAL_STATUSES = frozenset({400, 403, 422})

Clock = Callable[[], datetime.datetime]


class ClusterUnavailable(ReconcileError):
    """The API server cannot be reached or failed (5xx, 429): temporary, the loop backs off and retries."""


#: kinds whose rollout has a status to wait for
ROLLOUT_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet")


class Forbidden(ReconcileError):
    """The API server's RBAC does not let gate's identity do this (403 outside admission)."""


class AdmissionRefused(ReconcileError):
    """The cluster refused an object: an admission webhook denied it, or it is invalid or forbidden.

    ``message`` is the API server's own text (e.g. ``admission webhook "validation.gatekeeper.sh"
    denied the request: ...``); ``status`` its HTTP status.
    """

    def __init__(self, obj_ref: str, message: str, status: int) -> None:
        super().__init__(f"{obj_ref}: refused by the cluster ({status}): {message}")
        self.ref = obj_ref
        self.message = message
        self.status = status


def ref(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` (or ``Kind name`` when cluster-scoped), for messages."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{obj.get('kind', '?')} {ns + '/' if ns else ''}{meta.get('name', '?')}"


def _now() -> datetime.datetime:
    """Wall-clock time in UTC."""
    return datetime.datetime.now(tz=datetime.timezone.utc)


def _micro_time(t: datetime.datetime) -> str:
    """A Kubernetes MicroTime (what Lease times are)."""
    return rfc3339.format(t)


def _parse_time(value: Any) -> datetime.datetime | None:
    """A Kubernetes Time or MicroTime string as an aware datetime; None if absent or unreadable."""
    try:
        return rfc3339.parse(value) if isinstance(value, str) else None
    except rfc3339.TimeFormatError:
        return None


class Cluster:
    """One Kubernetes API server, reached as its kubeconfig, the pod's service account, or ``host`` says.

    Precedence: ``host`` (plain, unauthenticated: tests and local proxies), then ``kubeconfig``,
    then in-cluster config when ``KUBERNETES_SERVICE_HOST`` is set, then the default kubeconfig
    (``$KUBECONFIG`` or ``~/.kube/config``), as kubectl does. Nothing is contacted until first use.
    ``clock`` is injectable so lease expiry can be tested without sleeping.
    """

    def __init__(
        self,
        kubeconfig: str | Path | None = None,
        *,
        context: str | None = None,
        host: str | None = None,
        timeout_s: float = 30.0,
        clock: Clock = _now,
    ) -> None:
        from kubernetes import client, config

        self._timeout = timeout_s
        self._clock = clock
        self._dyn: Any = None
        cfg = client.Configuration()
        try:
            with _client_logged_errors() as logged:
                if host is not None:
                    cfg.host = host
                    self.source = host
                elif kubeconfig is not None:
                    config.load_kube_config(
                        config_file=str(kubeconfig), context=context, client_configuration=cfg, persist_config=False
                    )
                    self.source = str(kubeconfig)
                elif os.environ.get("KUBERNETES_SERVICE_HOST"):
                    config.load_incluster_config(client_configuration=cfg)
                    self.source = "in-cluster service account"
                else:
                    config.load_kube_config(context=context, client_configuration=cfg, persist_config=False)
                    self.source = os.environ.get("KUBECONFIG") or "~/.kube/config"
            if logged:  # the client logs a failed exec plugin (aws eks get-token) and goes on without a token
                raise config.ConfigException(f"the exec credential plugin failed: {_first_line(logged[0])}")
        except (config.ConfigException, OSError, ValueError, TypeError, KeyError) as e:
            where = str(kubeconfig) if kubeconfig is not None else "Kubernetes configuration"
            raise ReconcileError(f"{where}: cannot load: {_first_line(e)}") from e
        except Exception as e:  # yaml errors and friends from the kubeconfig loader
            where = str(kubeconfig) if kubeconfig is not None else "Kubernetes configuration"
            raise ReconcileError(f"{where}: cannot load: {type(e).__name__}: {_first_line(e)}") from e
        self._renew_credentials_or_fail(cfg)
        import urllib3

        # One quick retry on connect; anything longer is the reconcile loop's back-off, not ours.
        cfg.retries = urllib3.util.Retry(total=1, connect=1, read=0, status=0, backoff_factor=0.1)
        self.server = cfg.host
        self._api = client.ApiClient(cfg)
        # The discovery cache lives in a private folder of ours, never a shared /tmp file.
        self._cache_dir = tempfile.mkdtemp(prefix="gate-kube-discovery-")
        self._finalizer = weakref.finalize(self, _cleanup, self._api, self._cache_dir)

    def _renew_credentials_or_fail(self, cfg: Any) -> None:
        """The client runs the exec plugin again before each request once its token is about to expire,
        and on failure only logs and sends the old token: here that failure fails the request instead,
        naming the plugin's error, as a temporary error (the loop retries; the plugin may recover)."""
        renew = cfg.refresh_api_key_hook
        if renew is None:
            return
        source = self.source

        def renew_or_fail(configuration: Any) -> None:
            with _client_logged_errors() as logged:
                renew(configuration)
            configuration.refresh_api_key_hook = renew_or_fail  # the client puts its own back on each call
            if logged:
                raise ClusterUnavailable(f"{source}: the exec credential plugin failed: {_first_line(logged[0])}")

        cfg.refresh_api_key_hook = renew_or_fail

    def close(self) -> None:
        """Release connections and the discovery cache."""
        self._finalizer()

    def __enter__(self) -> Cluster:
        """Use as a context manager to close on exit."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close."""
        self.close()

    # -- plumbing -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self, what: str, refusals: bool = False) -> Iterator[None]:
        """Turn client failures into GateErrors; ``refusals`` maps 400/403/422 to AdmissionRefused."""
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            yield
        except ApiException as e:
            status = int(e.status or 0)
            message = _server_message(e)
            if status == 0 or status >= 500 or status == 429:
                raise ClusterUnavailable(f"Kubernetes API {self.server}: {what}: {status} {message}") from None
            if refusals and status in _REFUSAL_STATUSES:
                raise AdmissionRefused(what, message, status) from None
            if status == 403:
                raise Forbidden(f"{what}: 403 {message}") from None
            raise ReconcileError(f"{what}: {status} {message}") from None
        except ResourceNotFoundError as e:
            raise ReconcileError(f"{what}: the cluster does not serve this kind ({_first_line(e)})") from None
        except (urllib3.exceptions.HTTPError, OSError) as e:
            raise ClusterUnavailable(
                f"Kubernetes API {self.server} unreachable: {what}: {type(e).__name__}"
                f"{': ' + _reason(e) if _reason(e) else ''}"
            ) from None

    def _dynamic(self) -> Any:
        """The dynamic client, discovering the API on first use."""
        if self._dyn is None:
            from kubernetes.dynamic import DynamicClient

            with self._errors("API discovery"):
                self._dyn = DynamicClient(self._api, cache_file=os.path.join(self._cache_dir, "discovery.json"))
        return self._dyn

    def _resource(self, api_version: str, kind: str) -> Any:
        """The discovered API resource serving ``kind`` (ResourceNotFoundError if none)."""
        return self._dynamic().resources.get(api_version=api_version, kind=kind)

    def _address(self, obj: dict[str, Any]) -> tuple[Any, str, str | None]:
        """(resource, name, namespace-or-None) for an object; namespaced objects default to ``default``."""
        resource = self._resource(str(obj["apiVersion"]), str(obj["kind"]))
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or DEFAULT_NAMESPACE) if resource.namespaced else None
        return resource, str(meta["name"]), namespace

    def _body(self, obj: dict[str, Any], namespace: str | None) -> dict[str, Any]:
        """What gate applies: the object, labelled as gate's, with its namespace made explicit."""
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        labels = meta.get("labels") or {}
        meta["labels"] = {**labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE}
        if namespace is not None:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for server_set in ("uid", "resourceVersion", "creationTimestamp", "generation", "managedFields"):
            meta.pop(server_set, None)
        body.pop("status", None)
        return body

    # -- objects -------------------------------------------------------------------------------

    def get(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The live object, or None when it does not exist (or its kind is not served yet)."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        what = ref(obj)
        with self._errors(what):
            try:
                resource, name, namespace = self._address(obj)
                return dict(resource.get(name=name, namespace=namespace, _request_timeout=self._timeout).to_dict())
            except (NotFoundError, ResourceNotFoundError):
                return None

    def dry_run_apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with ``dryRun=All``: what the object would become; nothing is persisted.

        Raises AdmissionRefused with the API server's message when a webhook or validation refuses it.
        """
        return self._apply(obj, dry_run=True)

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply (field manager ``gate``, forcing conflicts): the object as stored."""
        return self._apply(obj, dry_run=False)

    def _apply(self, obj: dict[str, Any], *, dry_run: bool) -> dict[str, Any]:
        """One server-side apply PATCH (``application/apply-patch+yaml``)."""
        what = ref(obj)
        with self._errors(what, refusals=True):
            resource, name, namespace = self._address(obj)
            result = self._dynamic().server_side_apply(
                resource,
                body=self._body(obj, namespace),
                name=name,
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts="true",
                dry_run="All" if dry_run else None,
                _request_timeout=self._timeout,
            )
            return dict(result.to_dict())

    def delete(self, obj: dict[str, Any]) -> bool:
        """Delete (background propagation); False when it was already gone."""
        from kubernetes.dynamic.exceptions import NotFoundError

        what = ref(obj)
        with self._errors(what):
            resource, name, namespace = self._address(obj)
            try:
                resource.delete(
                    name=name, namespace=namespace, propagation_policy="Background", _request_timeout=self._timeout
                )
            except NotFoundError:
                return False
            return True

    def list_managed(self, kinds: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every object of the ``(apiVersion, kind)`` pairs labelled as managed by gate, in all namespaces.

        Kinds the cluster does not serve are skipped. The label is asked of the server and checked
        again here, so a server that ignores the selector can never make gate prune what is not its own.
        """
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        found: list[dict[str, Any]] = []
        for api_version, kind in kinds:
            what = f"list {kind} ({api_version})"
            with self._errors(what):
                try:
                    resource = self._resource(api_version, kind)
                except ResourceNotFoundError:
                    logger.debug("%s: not served by the cluster; nothing to list", what)
                    continue
                response = self._dynamic().request(
                    "get", resource.path(), label_selector=selector, serialize=False, _request_timeout=self._timeout
                )
            try:
                items = json.loads(response.data).get("items") or []
            except (ValueError, AttributeError) as e:
                raise ReconcileError(f"{what}: unreadable list response from {self.server}") from e
            for item in items:
                labels = (item.get("metadata") or {}).get("labels") or {}
                if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
                    continue
                item.setdefault("apiVersion", api_version)  # a real server leaves these out of list items
                item.setdefault("kind", kind)
                found.append(item)
        return found

    # -- events and health ----------------------------------------------------------------------

    def emit_event(self, obj: dict[str, Any], reason: str, message: str, type: str = "Warning") -> dict[str, Any]:
        """Record a core/v1 Event about ``obj`` (shown by ``kubectl describe``); the created Event."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") or DEFAULT_NAMESPACE
        now = rfc3339.format(self._clock(), microseconds=False)
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
        }
        if meta.get("uid"):
            involved["uid"] = meta["uid"]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta.get('name', 'object')}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {k: v for k, v in involved.items() if v},
            "reason": reason,
            "message": message[:1024],
            "type": type,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": FIELD_MANAGER},
            "reportingComponent": FIELD_MANAGER,
            "reportingInstance": socket.gethostname(),
        }
        with self._errors(f"Event for {ref(obj)}"):
            created = self._resource("v1", "Event").create(body=event, namespace=namespace, _request_timeout=self._timeout)
            return dict(created.to_dict())

    def rollout_status(self, obj: dict[str, Any]) -> tuple[str, str]:
        """``("healthy" | "progressing" | "degraded", detail)`` of a workload, as ``kubectl rollout status``.

        Kinds without a rollout (ConfigMaps, Services, ...) are healthy once they exist.
        """
        kind = obj.get("kind")
        if kind not in ROLLOUT_KINDS:
            return ("healthy", "")
        live = self.get(obj)
        if live is None:
            return ("progressing", f"{ref(obj)} does not exist yet")
        return rollout_health(live)

    # -- leader election -------------------------------------------------------------------------

    def acquire_lease(self, name: str, namespace: str, identity: str, duration_s: int) -> bool:
        """Hold the coordination.k8s.io/v1 Lease ``namespace/name`` for ``duration_s``: True if ours now.

        Creates the Lease when absent, renews it when already ours, takes it over when its holder
        let it expire; every update carries the read resourceVersion, so two reconcilers racing for
        it cannot both win.
        """
        lease = self._get_lease(name, namespace)
        now = self._clock()
        if lease is None:
            return self._create_lease(name, namespace, identity, duration_s, now)
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity")
        if holder == identity:
            return self._update_lease(lease, {"renewTime": _micro_time(now), "leaseDurationSeconds": duration_s})
        if holder and not _expired(spec, now):
            return False
        changes = {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration_s,
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": int(spec.get("leaseTransitions") or 0) + 1,
        }
        taken = self._update_lease(lease, changes)
        if taken:
            logger.info("lease %s/%s taken over from %s by %s", namespace, name, holder or "nobody", identity)
        return taken

    def renew_lease(self, name: str, namespace: str, identity: str) -> bool:
        """Extend our hold on the Lease: False if it is not ours any more (someone took it over)."""
        lease = self._get_lease(name, namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != identity:
            return False
        return self._update_lease(lease, {"renewTime": _micro_time(self._clock())})

    def release_lease(self, name: str, namespace: str, identity: str) -> bool:
        """Give the Lease up so another reconciler need not wait for it to expire; False if not ours."""
        lease = self._get_lease(name, namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != identity:
            return False
        return self._update_lease(lease, {"holderIdentity": None, "renewTime": None, "leaseDurationSeconds": 1})


    def _lease_ref(self, name: str, namespace: str) -> dict[str, Any]:
        """A Lease address for the object helpers."""
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name, "namespace": namespace}}

    def _get_lease(self, name: str, namespace: str) -> dict[str, Any] | None:
        """The Lease, or None; an unserved Lease kind is an error here, not an absence."""
        with self._errors(f"Lease {namespace}/{name}"):
            self._resource("coordination.k8s.io/v1", "Lease")
        return self.get(self._lease_ref(name, namespace))

    def _create_lease(self, name: str, namespace: str, identity: str, duration_s: int, now: datetime.datetime) -> bool:
        """Create the Lease held by ``identity``; False if someone created it first."""
        from kubernetes.dynamic.exceptions import ConflictError

        body = self._lease_ref(name, namespace)
        body["spec"] = {
            "holderIdentity": identity,
            "leaseDurationSeconds": duration_s,
            "acquireTime": _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": 0,
        }
        with self._errors(f"Lease {namespace}/{name}"):
            try:
                self._resource("coordination.k8s.io/v1", "Lease").create(
                    body=body, namespace=namespace, _request_timeout=self._timeout
                )
            except ConflictError:
                return False
        return True

    def _update_lease(self, lease: dict[str, Any], spec_changes: dict[str, Any]) -> bool:
        """Merge-patch the Lease's spec, conditional on the resourceVersion we read; False on a lost race."""
        from kubernetes.dynamic.exceptions import ConflictError, NotFoundError

        meta = lease["metadata"]
        patch: dict[str, Any] = {"spec": spec_changes}
        if meta.get("resourceVersion"):
            patch["metadata"] = {"resourceVersion": meta["resourceVersion"]}
        with self._errors(f"Lease {meta.get('namespace')}/{meta['name']}"):
            try:
                self._dynamic().patch(
                    self._resource("coordination.k8s.io/v1", "Lease"),
                    body=patch,
                    name=meta["name"],
                    namespace=meta.get("namespace"),
                    content_type="application/merge-patch+json",
                    _request_timeout=self._timeout,
                )
            except (ConflictError, NotFoundError):
                return False
        return True


def _expired(spec: dict[str, Any], now: datetime.datetime) -> bool:
    """Whether a Lease's holder stopped renewing more than leaseDurationSeconds ago."""
    renewed = _parse_time(spec.get("renewTime")) or _parse_time(spec.get("acquireTime"))
    duration = spec.get("leaseDurationSeconds")
    if renewed is None or not isinstance(duration, int):
        return True
    return now >= renewed + datetime.timedelta(seconds=duration)


def rollout_health(live: dict[str, Any]) -> tuple[str, str]:
    """Health of a live workload from its status, the way ``kubectl rollout status`` reads it."""
    kind = live.get("kind")
    meta = live.get("metadata") or {}
    spec = live.get("spec") or {}
    status = live.get("status") or {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return ("progressing", f"waiting for the controller to observe generation {generation}")
    for condition in status.get("conditions") or []:
        if (
            condition.get("type") == "Progressing"
            and condition.get("status") == "False"
            and condition.get("reason") == "ProgressDeadlineExceeded"
        ):
            return ("degraded", condition.get("message") or "progress deadline exceeded")
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        if updated < desired:
            return ("progressing", f"{updated} of {desired} pods updated")
        if available < desired:
            return ("progressing", f"{available} of {desired} updated pods available")
        return ("healthy", f"{available} of {desired} pods available")
    wanted = int(spec["replicas"]) if spec.get("replicas") is not None else 1
    updated = int(status.get("updatedReplicas") or 0)
    replicas = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or status.get("readyReplicas") or 0)
    if kind == "StatefulSet":
        ready = int(status.get("readyReplicas") or 0)
        if ready < wanted:
            return ("progressing", f"{ready} of {wanted} replicas ready")
        if status.get("updateRevision") and status.get("currentRevision") != status.get("updateRevision"):
            return ("progressing", f"{updated} of {wanted} replicas updated")
        return ("healthy", f"{ready} of {wanted} replicas ready")
    if kind == "ReplicaSet":
        if available < wanted:
            return ("progressing", f"{available} of {wanted} replicas available")
        return ("healthy", f"{available} of {wanted} replicas available")
    if updated < wanted:
        return ("progressing", f"{updated} of {wanted} replicas updated")
    if replicas > updated:
        return ("progressing", f"{replicas - updated} old replicas pending termination")
    if available < updated:
        return ("progressing", f"{available} of {updated} updated replicas available")
    return ("healthy", f"{available} of {wanted} replicas available")


def _server_message(e: Any) -> str:
    """The API server's ``Status.message`` from an ApiException, else its reason; one line."""
    body = getattr(e, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body:
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict) and data.get("message"):
            return _first_line(data["message"])
        return _first_line(body)[:300]
    return str(getattr(e, "reason", "") or "no message")


def _reason(e: BaseException) -> str:
    """The innermost reason of a connection error (urllib3 nests them), without URLs' query strings."""
    inner: Any = getattr(e, "reason", None) or e
    text = _first_line(inner)
    return text.split("?")[0]


def _first_line(value: object) -> str:
    """The first non-empty line of ``str(value)``."""
    for line in str(value).splitlines():
        if line.strip():
            return line.strip()
    return ""


@contextlib.contextmanager
def _client_logged_errors() -> Iterator[list[str]]:
    """The errors the kubernetes client logs instead of raising while it loads a kubeconfig: a failed
    exec credential plugin (``aws eks get-token`` missing or without AWS credentials) is only logged,
    on the root logger, and the client then sends no token. Caught here, they are neither printed nor lost."""
    caught: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "kubernetes" in record.pathname:
                caught.append(record.getMessage())

    root = logging.getLogger()
    handler = Catch(logging.ERROR)
    root.addHandler(handler)  # with a handler there, logging.error() does not print through basicConfig()
    try:
        yield caught
    finally:
        root.removeHandler(handler)


def _cleanup(api: Any, cache_dir: str) -> None:
    """Close the client's connection pool and remove the discovery cache folder."""
    with contextlib.suppress(Exception):
        api.close()
    shutil.rmtree(cache_dir, ignore_errors=True)
