"""``gate serve --admission``: a Kubernetes ValidatingAdmissionWebhook judging with the admission policy.

With ``--evidence vsa`` it needs no decision log: each image is admitted on the VSA attached to it
in its registry (gate.reconcile.evidence: each fetch bounded to a few seconds, passes cached
briefly, a failed or slow fetch denies).

``gate reconcile`` re-checks every object before it applies it; this webhook asks the same
question (``AdmissionChecker.check_review``) of every object anyone else sends to the API server —
``kubectl apply`` by hand, another controller — so an image without a signed allow decision is
refused at the door too (defence in depth).

The mapping is pure (``read_review``, ``review_problem``, ``review_response``, ``error_response``)
and tested without a server. ``review_problem`` refuses what cannot be judged as sent: the rules
judge ``request.object`` as what will run, so a CREATE/UPDATE/CONNECT must carry one, of the kind
``request.kind`` says the API server stores, on a resource or subresource whose object is all the
request runs. ``AdmissionWebhook`` owns one ``AdmissionChecker`` and one decision-store connection on one
worker thread: regorus engines panic when used from a thread other than the one that made them,
and a SQLite connection belongs to its thread, so the HTTP request threads hand their reviews to
that thread and wait. The bundle is compiled once, at start, and a start that fails (a bundle that
does not compile, a store that cannot be opened) fails the command, not the first request.

Fail closed: an error while judging answers ``allowed: false`` with the error's one-line message
(and the webhook configuration's ``failurePolicy: Fail`` covers gate being down or slow).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from gate.errors import GateError

if TYPE_CHECKING:
    from gate.decisions.interface import DecisionStore
    from gate.reconcile.admission import AdmissionChecker, Verdict

logger = logging.getLogger(__name__)

#: The AdmissionReview versions the API server may send; the answer uses the request's version.
API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
#: Largest AdmissionReview accepted: an object and its old version, each at most etcd's 1.5 MiB.
MAX_REVIEW_BODY = 8 * 1024 * 1024
#: Kubernetes truncates warnings over 256 characters (and asks for 120 where possible).
MAX_WARNING = 256
#: Kubernetes drops warnings beyond a total size; a few explain enough.
MAX_WARNINGS = 20
#: Seconds a request waits for its verdict (the API server's webhook timeout is at most 30 s).
WAIT_LIMIT = 30.0
#: Every operation an AdmissionRequest can carry; anything else is refused.
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
#: Subresources whose request object is all the request runs, so judging the object judges the request:
#: the whole object (``status``; a Pod for ``ephemeralcontainers`` and ``resize``), or an object that
#: starts no container (``scale``: the pods it adds are judged at their own CREATE; ``binding``,
#: ``eviction``; the CONNECT options of ``exec``, ``attach``, ``portforward``, ``proxy``). Any other
#: may run images its object does not name (OpenShift's ``deploymentconfigs/rollback``): refused.
JUDGED_SUBRESOURCES = frozenset(
    {"", "status", "ephemeralcontainers", "resize", "scale", "binding", "eviction", "exec", "attach", "portforward", "proxy"}
)

_T = TypeVar("_T")


class MalformedReview(GateError):
    """The body is not an AdmissionReview gate can answer (HTTP 400: there is no uid to answer to)."""


@dataclass(frozen=True)
class Review:
    """The parts of an AdmissionReview the answer needs."""

    api_version: str
    uid: str
    request: dict[str, Any]

    @property
    def operation(self) -> str:
        """CREATE, UPDATE, DELETE or CONNECT."""
        return str(self.request.get("operation") or "")


def read_review(body: bytes) -> Review:
    """The AdmissionReview in ``body`` (JSON, as the API server sends it), or ``MalformedReview``."""
    from gate import jsonbody

    try:
        document = jsonbody.loads(body)
    except jsonbody.JSONProblem as e:
        raise MalformedReview(f"AdmissionReview: body is {e}") from None
    if not isinstance(document, dict):
        raise MalformedReview("AdmissionReview: body must be a JSON object")
    if document.get("kind") != "AdmissionReview" or document.get("apiVersion") not in API_VERSIONS:
        raise MalformedReview(
            f"AdmissionReview: expected kind AdmissionReview of apiVersion {' or '.join(API_VERSIONS)}, got "
            f"kind {document.get('kind')!r} of apiVersion {document.get('apiVersion')!r}"
        )
    request = document.get("request")
    if not isinstance(request, dict):
        raise MalformedReview("AdmissionReview: request must be an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise MalformedReview("AdmissionReview: request.uid must be a non-empty string")
    return Review(api_version=str(document["apiVersion"]), uid=uid, request=request)


def review_problem(review: Review) -> str | None:
    """Why ``review`` cannot be judged as the API server sent it (it is then refused), or None.

    The admission rules judge ``request.object`` as the thing that will run, so it must be there
    (for everything but a DELETE, which stores and starts nothing), be of the kind the request says
    the API server will store, and be all the request runs: a subresource not in
    ``JUDGED_SUBRESOURCES`` may start images its object does not name.
    """
    request = review.request
    operation = request.get("operation")
    if operation not in OPERATIONS:
        return f"request.operation {_shown(operation)} is not one of {', '.join(OPERATIONS)}"
    if operation == "DELETE":
        return None
    obj = request.get("object")
    if not isinstance(obj, dict):
        shape = "missing" if "object" not in request else "null" if obj is None else f"a {type(obj).__name__}"
        return (
            f"the {operation} request has no object (request.object is {shape}): "
            "gate judges the object the API server would store"
        )
    kind = request.get("kind")
    if not (
        isinstance(kind, dict)
        and all(isinstance(kind.get(key), str) for key in ("group", "version", "kind"))
        and kind["version"]
        and kind["kind"]
    ):
        return "request.kind must be a {group, version, kind} object naming the kind of request.object"
    stored = f"{kind['group']}/{kind['version']}" if kind["group"] else kind["version"]
    if obj.get("kind") != kind["kind"] or obj.get("apiVersion") != stored:
        return (
            f"request.kind is {_named(kind['kind'])} ({_named(stored)}) but request.object is "
            f"{_named(obj.get('kind'))} ({_named(obj.get('apiVersion'))}): "
            "the policy would judge another kind than the API server stores"
        )
    resource = request.get("resource")
    if not (isinstance(resource, dict) and isinstance(resource.get("resource"), str) and resource["resource"]):
        return "request.resource must be a {group, version, resource} object naming what is written"
    subresource = request.get("subResource") or ""
    if not isinstance(subresource, str):
        return f"request.subResource must be a string, got {_shown(subresource)}"
    if subresource not in JUDGED_SUBRESOURCES:
        return (
            f"subresource {_named(resource['resource'])}/{_named(subresource)}: gate cannot tell which images "
            "such a request runs (send the webhook main resources and pods/ephemeralcontainers)"
        )
    return None


def _named(value: Any) -> str:
    """A name from the request as shown in a message: ``?`` when it is not a string, cut when long."""
    if not isinstance(value, str) or not value:
        return "?"
    return _clip(value, 100)


def _shown(value: Any) -> str:
    return _clip(repr(value), 100)


def _clip(text: str, width: int) -> str:
    """``text``, cut to ``width`` characters with an ellipsis when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def review_response(review: Review, verdict: Verdict) -> dict[str, Any]:
    """The AdmissionReview answering ``review`` with ``verdict``: denied with the reasons, or allowed."""
    response: dict[str, Any] = {"uid": review.uid, "allowed": not verdict.blocked}
    if verdict.blocked:
        # a deny without words would reach the user as an empty refusal: say at least who refused
        reasons = [" ".join(r.split()) or "a deny rule of gate's admission policy gave no message" for r in verdict.reasons]
        message = "; ".join(reasons) or "denied by gate's admission policy"
        response["status"] = {"code": 403, "reason": "Forbidden", "message": message}
    warnings = _warnings(verdict.warnings)
    if warnings:
        response["warnings"] = warnings
    return _envelope(review, response)


def allowed_response(review: Review) -> dict[str, Any]:
    """The AdmissionReview allowing ``review`` without judging it (a DELETE: nothing will run)."""
    return _envelope(review, {"uid": review.uid, "allowed": True})


def refused_response(review: Review, problem: str) -> dict[str, Any]:
    """The AdmissionReview refusing ``review`` because it cannot be judged as sent (``review_problem``)."""
    status = {"code": 400, "reason": "BadRequest", "message": f"gate cannot judge this request: {problem}"}
    return _envelope(review, {"uid": review.uid, "allowed": False, "status": status})


def error_response(review: Review, message: str) -> dict[str, Any]:
    """The AdmissionReview refusing ``review`` because no verdict could be reached (fail closed)."""
    status = {"code": 500, "reason": "InternalError", "message": f"gate could not judge the request: {message}"}
    return _envelope(review, {"uid": review.uid, "allowed": False, "status": status})


def _envelope(review: Review, response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": review.api_version, "kind": "AdmissionReview", "response": response}


def _warnings(warnings: Sequence[str]) -> list[str]:
    """Warnings as Kubernetes shows them: one line each, at most ``MAX_WARNING`` characters."""
    shown = []
    for text in warnings[:MAX_WARNINGS]:
        line = " ".join(text.split())
        shown.append(_clip(line, MAX_WARNING))
    if len(warnings) > MAX_WARNINGS:
        shown.append(f"and {len(warnings) - MAX_WARNINGS} more warnings")
    return shown


class _Worker:
    """One thread that runs every job handed to it, in order: for objects bound to their thread."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], _T]) -> Future[_T]:
        """Run ``job`` on the worker thread; its result or exception arrives in the future."""
        future: Future[_T] = Future()
        self._jobs.put((job, future))
        return future

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread."""
        self._jobs.put(None)
        self._thread.join(WAIT_LIMIT)

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = job()
            except BaseException as e:  # noqa: BLE001 - a regorus panic too: the request fails closed
                if not isinstance(e, GateError):
                    logger.debug("%s failed", self._thread.name, exc_info=e)
                # the traceback's frames may hold thread-bound engines: free them here, not in the caller
                e.__traceback__ = None
                e.__context__ = None
                future.set_exception(e)
            else:
                future.set_result(result)
                del result
            del job, future, item


class AdmissionWebhook:
    """Answers AdmissionReviews for one environment with one bundle and one decision log."""

    def __init__(
        self,
        policy: str | Path | Sequence[str],
        environment: str,
        *,
        data_files: Sequence[str | Path] = (),
        store_url: str | None = None,
        evidence: str | None = None,
        checker_options: dict[str, Any] | None = None,
    ) -> None:
        """Choose the evidence (``evidence``, else GATE_EVIDENCE, gate.toml, the default of
        gate.reconcile.evidence.choose), open the store when it uses the log (``store_url``, else
        GATE_DECISION_STORE) and compile the bundle on the worker thread; a ``GateError`` there is
        raised here. ``checker_options`` go to ``AdmissionChecker`` (``trusted_keys``, ``now``,
        ``vsa_max_age``; default: GATE_TRUSTED_KEYS, the clock, 30 days)."""
        self.environment = environment
        #: the evidence in force, and why (set at start)
        self.evidence = ""
        self.evidence_why = ""
        self._worker = _Worker(f"gate-admission-{environment}")
        self._store: DecisionStore | None = None
        self._checker: AdmissionChecker | None = None
        self._closed = False
        options = dict(checker_options or {})

        def start() -> None:
            from gate.decisions.store import open_store
            from gate.reconcile.admission import AdmissionChecker
            from gate.reconcile.evidence import choose

            if "trusted_keys" not in options:
                from gate.decisions.signing import load_trust

                trust = load_trust()
                (logger.info if trust.configured else logger.warning)("admission webhook: %s", trust.source)
                options["trusted_keys"] = trust
            chosen = choose(evidence, lambda: open_store(store_url, create=False), store_url=store_url)
            self.evidence, self.evidence_why = chosen.evidence.value, chosen.why
            logger.info("admission webhook: evidence %s (%s)", chosen.evidence.value, chosen.why)
            self._store = chosen.store  # None with vsa evidence: no decision log is opened
            self._checker = AdmissionChecker(
                policy, environment, self._store, data_files=[Path(p) for p in data_files], evidence=chosen.evidence,
                **options,
            )

        try:
            self._worker.submit(start).result()
        except BaseException:
            self.close()
            raise

    @property
    def policy_digest(self) -> str:
        """The digest of the bundle every review is judged under."""
        assert self._checker is not None
        return self._checker.policy_digest

    def answer(self, body: bytes) -> dict[str, Any]:
        """The AdmissionReview answering ``body``; ``MalformedReview`` when it cannot be answered."""
        review = read_review(body)
        problem = review_problem(review)
        if problem is not None:
            logger.warning("admission review %s: %s: denied", review.uid, problem)
            return refused_response(review, problem)
        if review.operation == "DELETE":
            return allowed_response(review)  # nothing will run: no image to judge
        assert self._checker is not None
        try:
            # the VSAs are fetched here, on the request's thread: a slow registry holds this review only
            attested = self._checker.attest_review(review.request)
        except GateError as e:
            logger.warning("admission review %s: %s: denied", review.uid, e.diagnostics())
            return error_response(review, e.diagnostics())
        except Exception as e:  # noqa: BLE001 - a bug must deny, not crash the request thread
            logger.error("admission review %s: %s while checking VSAs: denied", review.uid, type(e).__name__)
            return error_response(review, f"internal error ({type(e).__name__})")
        pending = self._worker.submit(lambda: self._check(review.request, attested))
        try:
            verdict = pending.result(WAIT_LIMIT)
        except FutureTimeout:
            pending.cancel()  # still queued: the worker skips it (the API server has given up anyway)
            logger.warning("admission review %s: no verdict within %g s: denied", review.uid, WAIT_LIMIT)
            return error_response(review, f"no verdict within {WAIT_LIMIT:g} s")
        except GateError as e:
            logger.warning("admission review %s: %s: denied", review.uid, e.diagnostics())
            return error_response(review, e.diagnostics())
        except BaseException as e:  # noqa: BLE001 - a bug or an engine panic must deny, not crash the thread
            if isinstance(e, KeyboardInterrupt | SystemExit):
                raise
            first_line = next(iter(str(e).splitlines()), "")
            logger.error("admission review %s: %s: %s: denied", review.uid, type(e).__name__, first_line)
            return error_response(review, f"internal error ({type(e).__name__})")
        request = review.request
        kind = request.get("kind")
        logger.info(
            "admission %s %s %s/%s: %s%s",
            review.operation or "?",
            kind.get("kind") if isinstance(kind, dict) else "?",
            request.get("namespace") or "-",
            request.get("name") or "-",
            "allowed" if not verdict.blocked else "denied",
            " (dry run)" if request.get("dryRun") else "",
        )
        return review_response(review, verdict)

    def _check(self, request: dict[str, Any], attested: dict[str, dict[str, Any]] | None = None) -> Verdict:
        assert self._checker is not None
        return self._checker.check_review(request, attested=attested)

    def close(self) -> None:
        """Close the store connection (on its own thread) and stop the worker; once."""
        if self._closed:
            return
        self._closed = True

        def stop() -> None:
            self._checker = None  # its regorus engines must be dropped on the thread that made them
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            self._worker.submit(stop).result(WAIT_LIMIT)
        except BaseException as e:  # noqa: BLE001 - closing must not hide why the server stops
            logger.debug("closing the admission webhook's store: %s", e)
        finally:
            self._worker.stop()
