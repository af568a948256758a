"""The OPA-server engine: Rego evaluated by an OPA server through PyPI ``opa-python-client``.

With ``push`` (the default) gate owns what it uploads: every non-test policy of the bundle becomes
policy ``gate/<path in bundle>``, every top-level key of the data document is written to
``/v1/data/<key>``, and what an earlier push left that this bundle no longer has (policies under
``gate/``, data keys listed in ``data.gate_pushed_keys``) is removed — a stale waiver left on the
server would otherwise still waive. Without ``push`` the server is expected to hold the policies
already (``opa run -s policies/``, bundles), and gate only checks that it answers.

An optional bearer token comes from ``GATE_OPA_TOKEN``; it is sent, never logged or shown. Every
failure is a one-line ``PolicyError`` naming the server's URL (scheme, host, port and path only).
``opa_client`` (and ``requests``) are imported on first use, so commands that never talk to OPA
don't pay for them.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from gate.errors import PolicyError, UsageError

if TYPE_CHECKING:
    from opa_client import OpaClient

    from gate.policy.bundle import Bundle

logger = logging.getLogger(__name__)

TOKEN_ENV = "GATE_OPA_TOKEN"
POLICY_PREFIX = "gate/"
#: Where the top-level data keys of the last push are listed, so the next push can remove stale ones.
PUSHED_KEYS = "gate_pushed_keys"
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")
T = TypeVar("T")


class OpaEngine:
    """An OPA server (or anything speaking its REST API, such as ``gate serve``)."""

    name = "opa"

    def __init__(self, url: str, push: bool = True, timeout: float = 30, token: str | None = None) -> None:
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise UsageError(f"the OPA URL must not carry credentials: set {TOKEN_ENV} instead")
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise UsageError(f"OPA URL {url!r}: use http(s)://HOST[:PORT][/PATH], e.g. http://127.0.0.1:8181")
        self._https = parts.scheme == "https"
        self._host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self._port = port or (443 if self._https else 80)
        self._prefix = parts.path.strip("/")
        self.url = f"{parts.scheme}://{self._host}:{self._port}" + (f"/{self._prefix}" if self._prefix else "")
        self._push = push
        self._timeout = timeout
        self._token = token if token is not None else (os.environ.get(TOKEN_ENV) or None)
        self._client: OpaClient | None = None
        self._version: str | None = None

    def version(self) -> str:
        """``opa <version>`` as the server reports it at ``data.system.version``."""
        if self._version is None:
            reported = str((self._read_data("system/version", "read the server version") or {}).get("Version") or "")
            # OPA reports a bare number ("0.70.0"); a stand-in such as gate serve names itself.
            if not reported:
                self._version = "opa (version unknown)"
            else:
                self._version = f"opa {reported}" if reported[0].isdigit() else reported
        return self._version

    def load(self, bundle: Bundle, data: dict[str, Any]) -> None:
        """Upload the bundle's policies and ``data`` (push), or check the server answers (no push)."""
        if not self._push:
            self._call("list policies", lambda c: c.get_policies_list())
            return
        self._push_policies(bundle.policies())
        self._push_data(data)

    def set_data(self, data: dict[str, Any]) -> None:
        """Replace the data on the server (as a push does; also without push: the caller asks for it)."""
        self._push_data(data)

    def evaluate(self, path: str, input: dict[str, Any]) -> Any:
        """``POST /v1/data/<path>`` with ``{"input": input}``: the ``result``, None when undefined."""
        answer = self._call(f"evaluate data.{path}", lambda c: c.query_rule(input, package_path=path))
        if not isinstance(answer, dict):
            raise PolicyError(f"OPA server {self.url}: evaluate data.{path}: the answer is not a JSON object")
        return answer.get("result")

    def evaluate_many(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any]:
        """One query per input over the client's kept-alive session (OPA's REST API has no batch query)."""
        return [self.evaluate(path, i) for i in inputs]

    def evaluate_each(self, path: str, inputs: Sequence[dict[str, Any]]) -> list[Any | PolicyError]:
        """As ``evaluate_many``, an input that fails (an error, no answer within the client's timeout)
        answered by its ``PolicyError``."""
        answers: list[Any | PolicyError] = []
        for i in inputs:
            try:
                answers.append(self.evaluate(path, i))
            except PolicyError as e:
                answers.append(e)
        return answers

    def _push_policies(self, sources: dict[str, str]) -> None:
        """Upload every policy and remove stale ``gate/`` ones, in whatever order compiles.

        OPA compiles the whole module set on every change, so a policy calling a function of a file
        not uploaded yet, or clashing with a stale file not deleted yet, fails for now: such steps
        are retried after the others, until all are done or a round makes no progress.
        """
        from opa_client.errors import DeletePolicyError, RegoParseError

        wanted = {f"{POLICY_PREFIX}{rel}": text for rel, text in sorted(sources.items())}
        present = self._call("list policies", lambda c: c.get_policies_list())
        stale = sorted(i for i in present if i.startswith(POLICY_PREFIX) and i not in wanted)
        # (policy id, its text to upload, or None to delete it)
        steps: list[tuple[str, str | None]] = [*wanted.items(), *((policy_id, None) for policy_id in stale)]
        while steps:
            failed: list[tuple[str, str | None]] = []
            first_error: PolicyError | None = None
            for policy_id, text in steps:
                try:
                    self._apply(policy_id, text)
                except PolicyError as e:
                    compile_error = isinstance(e.__cause__, RegoParseError) and e.__cause__.errors
                    if not (compile_error or isinstance(e.__cause__, DeletePolicyError)):
                        raise
                    failed.append((policy_id, text))
                    first_error = first_error or e
            if first_error is not None and len(failed) == len(steps):
                raise first_error
            steps = failed
        logger.debug("pushed %d policies to %s, removed %d stale", len(wanted), self.url, len(stale))

    def _apply(self, policy_id: str, text: str | None) -> None:
        """Upload ``text`` as ``policy_id`` exactly as written, or delete ``policy_id`` (None)."""
        if text is None:
            self._call(f"delete stale policy {policy_id}", lambda c: c.delete_policy(quote(policy_id)))
        else:
            # rego_compat=False: the client would otherwise rewrite a policy OPA rejects and retry
            upload = lambda c: c.update_policy_from_string(text, quote(policy_id), rego_compat=False)
            self._call(f"upload policy {policy_id}", upload)

    def _push_data(self, data: dict[str, Any]) -> None:
        """Write each top-level key; remove keys an earlier push wrote that ``data`` no longer has."""
        previous = self._read_data(PUSHED_KEYS, "read pushed data keys") or []
        for key in sorted(set(previous) - set(data)):
            self._write_data(key, None)
        for key, value in {**data, PUSHED_KEYS: sorted(data)}.items():
            self._write_data(key, value)

    def _write_data(self, key: str, value: Any) -> None:
        """Replace ``data.<key>`` with ``value``; None removes it."""
        endpoint = quote(key, safe="")
        if value is None:
            self._call(f"remove stale data {key}", lambda c: c.delete_data(endpoint))
        elif isinstance(value, dict):
            self._call(f"write data {key}", lambda c: c.update_or_create_data(value, endpoint))
        else:
            # the client PUTs objects only; a JSON Patch "add" at the key writes any other value
            patch = [{"op": "add", "path": "/", "value": value}]
            self._call(f"write data {key}", lambda c: c.patch_data(endpoint, patch))

    def _read_data(self, path: str, what: str) -> Any:
        """The document at ``data.<path>``, None when undefined (the client raises for that too)."""
        from opa_client.errors import PolicyNotFoundError

        try:
            return self._call(what, lambda c: c.get_data(path)).get("result")
        except PolicyError as e:
            # a 200 without "result" comes back as PolicyNotFoundError with no code of OPA's
            if isinstance(e.__cause__, PolicyNotFoundError) and e.__cause__.expression == "PolicyNotFoundError":
                return None
            raise

    def _connection(self) -> OpaClient:
        if self._client is None:
            from opa_client import OpaClient

            version = f"{self._prefix}/v1" if self._prefix else "v1"  # the client's only hook for a path prefix
            self._client = OpaClient(
                host=self._host,
                port=self._port,
                version=version,
                ssl=self._https,
                token=self._token,
                timeout=self._timeout,
            )
        return self._client

    def _call(self, what: str, step: Callable[[OpaClient], T]) -> T:
        """Run one client call; any failure becomes a one-line ``PolicyError`` naming the server."""
        import requests

        where = f"OPA server {self.url}: {what}"
        try:
            return step(self._connection())
        except requests.exceptions.HTTPError as e:
            raise PolicyError(f"{where}: {_http_problem(e.response)}") from e
        except requests.exceptions.JSONDecodeError as e:  # a proxy's or login page's HTML, say
            raise PolicyError(f"{where}: the answer is not JSON: is this OPA's API?") from e
        except requests.exceptions.Timeout as e:
            raise PolicyError(f"{where}: no answer within {self._timeout:g} s") from e
        except requests.exceptions.RequestException as e:
            reason = _ERRNO.search(str(e))
            raise PolicyError(f"{where}: cannot connect: {reason.group(1) if reason else type(e).__name__}") from e
        except ValueError as e:  # a client-side check
            raise PolicyError(f"{where}: unexpected answer: {_one_line(str(e)) or type(e).__name__}") from e
        except Exception as e:
            if type(e).__module__.startswith("opa_client"):
                raise PolicyError(f"{where}: {_client_problem(e)}") from e
            raise


def _http_problem(response: Any) -> str:
    """``HTTP 500: <OPA's message>`` from an error response."""
    try:
        body = response.json()
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return f"HTTP {response.status_code}" + (f": {_one_line(message)}" if message else "")


def _client_problem(error: Exception) -> str:
    """opa_client's errors carry OPA's code, message and (for compile errors) the error list."""
    code = getattr(error, "expression", None)
    message = getattr(error, "message", None) or str(error)
    details = [_located(e) for e in getattr(error, "errors", None) or [] if isinstance(e, dict) and e.get("message")]
    if details:
        return "does not compile: " + "; ".join(details)
    return _one_line(f"{code}: {message}" if code else str(message))


def _located(error: dict[str, Any]) -> str:
    location = error.get("location") or {}
    where = ":".join(str(location[k]) for k in ("file", "row", "col") if location.get(k) is not None)
    return _one_line(f"{where}: {error['message']}" if where else error["message"])


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
