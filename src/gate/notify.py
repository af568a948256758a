"""Notifications: telling people about a deny, a promotion, a blocked object or an expiring waiver.

Two payloads, both JSON over HTTPS (or HTTP) POST:

- a generic webhook gets a CloudEvents 1.0 event in structured mode (``application/cloudevents+json``:
  ``specversion``, ``id``, ``source``, ``type`` = ``dev.gate.<kind>``, ``time``, ``subject``,
  ``datacontenttype``, ``data``);
- a Slack-compatible incoming webhook gets ``{"text": "<one short mrkdwn line>"}``.

Targets come from ``[notify]`` in gate.toml (``webhooks``, ``slack``, ``on``) and from ``--notify URL``
(repeatable; ``slack+https://…`` is a Slack target, any other ``https://…``/``http://…`` a generic one).
A value ``env:NAME`` reads the URL from the environment variable NAME: a webhook URL is often a
secret (a Slack webhook's path is its credential) and the configuration file never holds one.

A notification is best-effort by design: it is sent after the decision (or event) is recorded and
printed, synchronously, within a bounded time (``TIMEOUT_S`` per request, ``ATTEMPTS`` attempts with
back-off, ``Retry-After`` honoured up to ``MAX_RETRY_AFTER_S``, ``BUDGET_S`` for one call). One that
fails prints one warning line on stderr — the URL shown as scheme and host only — and never changes
a decision or an exit code: :func:`notify` never raises. A bad target (not a URL, an unknown kind in
``notify.on``, an unset variable) is a usage error found by :func:`targets` before anything is decided.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from gate import rfc3339, settings
from gate.errors import UsageError
from gate.redact import redact
from gate.version import __version__

__all__ = ["KINDS", "SLACK_PREFIX", "Target", "notify", "parse_target", "targets"]

#: what gate notifies about; the CloudEvents type is ``dev.gate.<kind>``
KINDS = (
    "decision.denied", "decision.error", "promotion.done", "promotion.refused", "reconcile.blocked",
    "waiver.expiring",
)
#: ``--notify slack+https://hooks.slack.com/services/…``: a Slack-compatible target
SLACK_PREFIX = "slack+"
#: ``env:NAME`` in gate.toml: the URL is in the environment variable NAME
ENV_PREFIX = "env:"
CLOUDEVENTS_TYPE_PREFIX = "dev.gate."
CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json"

#: seconds one request may take (connect and answer)
TIMEOUT_S = 5.0
#: attempts per target; waits between them grow from BACKOFF_S (0.5, 1, 2 …)
ATTEMPTS = 3
BACKOFF_S = 0.5
#: a receiver's Retry-After is honoured up to this; a longer one ends the retries
MAX_RETRY_AFTER_S = 30.0
#: one notify() call never takes (much) longer than this, whatever the targets do
BUDGET_S = 60.0
#: the reasons a payload lists at most (payloads stay small)
TOP_REASONS = 5
#: a markdown summary in a payload is cut to this many characters
MAX_MARKDOWN = 8000

Style = Literal["cloudevents", "slack"]


@dataclass(frozen=True)
class Target:
    """Where one notification goes and in which shape."""

    #: the http(s) URL posted to (may hold a secret: never print it, print ``shown``)
    url: str
    style: Style
    #: the kinds this target hears; None: every kind
    kinds: frozenset[str] | None = None

    @property
    def shown(self) -> str:
        """The URL as it may be printed: scheme and host only (a webhook path or query is often the secret)."""
        parts = urlsplit(self.url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if _port(parts) else ""
        tail = "/…" if parts.path not in ("", "/") or parts.query else ""
        prefix = SLACK_PREFIX if self.style == "slack" else ""
        return f"{prefix}{parts.scheme}://{host}{port}{tail}"

    def secrets(self) -> list[str]:
        """The parts of the URL that must not appear in a message."""
        parts = urlsplit(self.url)
        found = [self.url, parts.path, parts.query, parts.fragment, parts.username or "", parts.password or ""]
        found += [segment for segment in parts.path.split("/") if len(segment) >= 6]
        return [s for s in found if s and s != "/"]


def _port(parts: Any) -> int | None:
    try:
        return parts.port  # type: ignore[no-any-return]
    except ValueError:
        return None


def parse_target(value: str, where: str, *, style: Style | None = None, kinds: frozenset[str] | None = None) -> Target:
    """One target from ``--notify`` or gate.toml; ``where`` names it in errors (never the URL itself)."""
    text = value.strip()
    if text.startswith(ENV_PREFIX):
        variable = text.removeprefix(ENV_PREFIX)
        text = os.environ.get(variable, "").strip()
        if not text:
            raise UsageError(f"{where}: env:{variable}: the environment variable is not set or empty")
        where = f"{where} (env:{variable})"
    if text.startswith(SLACK_PREFIX):
        if style == "cloudevents":
            raise UsageError(f"{where}: a slack+ URL belongs in notify.slack")
        text, style = text.removeprefix(SLACK_PREFIX), "slack"
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or any(c.isspace() for c in text):
        scheme = f" (scheme {parts.scheme!r})" if parts.scheme else ""
        raise UsageError(
            f"{where}: not an http(s) URL{scheme}; give https://HOST/PATH, "
            f"or {SLACK_PREFIX}https://… for a Slack-compatible webhook"
        )
    if _port(parts) is None and ":" in parts.netloc.rsplit("@", 1)[-1]:
        raise UsageError(f"{where}: the URL's port is not a number")
    return Target(text, style or "cloudevents", kinds)


def targets(flags: Sequence[str] = ()) -> list[Target]:
    """The targets of this call: ``[notify]`` in gate.toml (``on`` filters its kinds) and the ``--notify``
    flags (every kind the command sends). Raises ``UsageError`` for a bad one: call it before deciding."""
    configured = settings.current()
    on = configured.value("notify.on")
    kinds: frozenset[str] | None = None
    if on is not None:
        listed = (on,) if isinstance(on, str) else on
        unknown = [kind for kind in listed if kind not in KINDS]
        if unknown:
            raise UsageError(f"{configured.path}: notify.on: unknown kind {unknown[0]!r}; kinds: {', '.join(KINDS)}")
        kinds = frozenset(listed)
    found: list[Target] = []
    for key, style in (("notify.webhooks", "cloudevents"), ("notify.slack", "slack")):
        value = configured.value(key)
        for index, item in enumerate((value,) if isinstance(value, str) else value or ()):
            found.append(parse_target(item, f"{configured.path}: {key}[{index}]", style=style, kinds=kinds))  # type: ignore[arg-type]
    found += [parse_target(flag, "--notify") for flag in flags]
    return found


def notify(kind: str, subject: str, data: Mapping[str, Any], *, targets: Sequence[Target] | None = None) -> None:
    """Send one notification of ``kind`` about ``subject`` to every target that hears it. Never raises.

    ``data`` is small and JSON-able: ``text`` (one human line; the Slack message), then what the kind has
    (``outcome``, ``image``, ``environment``, ``decision_id``, ``reasons``, ``markdown`` …).
    ``targets`` None: those of gate.toml (a broken configuration is then one warning line, not an error).
    """
    try:
        chosen = list(targets) if targets is not None else _configured_quietly()
        hearing = [t for t in chosen if t.kinds is None or kind in t.kinds]
        if not hearing:
            return
        deadline = time.monotonic() + BUDGET_S
        event = cloudevent(kind, subject, data)
        for target in hearing:
            body = event if target.style == "cloudevents" else slack_message(kind, subject, data)
            content_type = CLOUDEVENTS_CONTENT_TYPE if target.style == "cloudevents" else "application/json"
            problem = _deliver(target, json.dumps(body).encode(), content_type, deadline)
            if problem is not None:
                _warn(kind, target, problem)
    except Exception as e:  # noqa: BLE001 - a notification never changes what the command did
        _warn(kind, None, f"{type(e).__name__}: {e}")


def _configured_quietly() -> list[Target]:
    try:
        return targets()
    except UsageError as e:
        _warn("*", None, str(e))
        return []


def cloudevent(kind: str, subject: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvents 1.0 event (structured JSON) for ``kind``."""
    import socket
    import uuid

    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": f"urn:gate:{socket.gethostname() or 'localhost'}",
        "type": CLOUDEVENTS_TYPE_PREFIX + kind,
        "time": rfc3339.format(datetime.now(UTC), microseconds=False),
        "subject": subject,
        "datacontenttype": "application/json",
        "gateversion": __version__,
        "data": dict(data),
    }


_ICONS = {
    "decision.denied": ":no_entry:", "decision.error": ":warning:", "promotion.done": ":rocket:",
    "promotion.refused": ":no_entry:", "reconcile.blocked": ":octagonal_sign:", "waiver.expiring": ":hourglass:",
}


def slack_message(kind: str, subject: str, data: Mapping[str, Any]) -> dict[str, str]:
    """``{"text": …}``: one short mrkdwn line (Slack, Mattermost, Rocket.Chat, Teams' Slack-compatible hooks)."""
    text = str(data.get("text") or "")
    line = f"{_ICONS.get(kind, '')} *gate {kind}* `{_slack_escape(subject)}`"
    return {"text": f"{line}: {_slack_escape(text)}".strip() if text else line.strip()}


def _slack_escape(text: str) -> str:
    # Slack's three control characters (https://api.slack.com/reference/surfaces/formatting#escaping)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")


def _deliver(target: Target, body: bytes, content_type: str, deadline: float) -> str | None:
    """POST ``body``, retrying what may pass later (connection errors, timeouts, 408, 429, 5xx); the
    problem of the last attempt, or None once delivered."""
    import http.client
    import urllib.error
    import urllib.request

    # A redirect is not followed: urllib would turn the POST into a GET without the body (a silent
    # loss), and the Location may be another host. A 3xx is a refusal, told in the warning line.
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises the 3xx as an HTTPError

    opener = urllib.request.build_opener(NoRedirect)
    problem = "not attempted"
    for attempt in range(1, ATTEMPTS + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return f"{problem}; gave up: the {BUDGET_S:g}s notification budget is spent"
        request = urllib.request.Request(
            target.url, data=body, method="POST",
            headers={"Content-Type": content_type, "User-Agent": f"gate/{__version__}"},
        )
        retry_after: float | None = None
        try:
            with opener.open(request, timeout=min(TIMEOUT_S, remaining)) as answer:
                answer.read(64 * 1024)
            return None
        except urllib.error.HTTPError as e:
            problem = f"HTTP {e.code}"
            e.close()
            if e.code not in (408, 425, 429) and e.code < 500:
                return problem  # the receiver refused it: asking again gets the same answer
            retry_after = _retry_after(e.headers.get("Retry-After") if e.headers else None)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            problem = f"{type(reason).__name__}: {reason}" if not isinstance(reason, str) else reason
        if attempt == ATTEMPTS:
            break
        wait = BACKOFF_S * 2 ** (attempt - 1)
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER_S:
                return f"{problem}; the receiver asks to retry after {retry_after:g}s (more than {MAX_RETRY_AFTER_S:g}s)"
            wait = max(wait, retry_after)
        if time.monotonic() + wait >= deadline:
            return f"{problem}; gave up: the {BUDGET_S:g}s notification budget is spent"
        time.sleep(wait)
    return f"{problem} after {ATTEMPTS} attempts"


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date."""
    from email.utils import parsedate_to_datetime

    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _warn(kind: str, target: Target | None, problem: str) -> None:
    """One warning line on stderr, without any part of the URL that may be a secret."""
    where = f" to {target.shown}" if target is not None else ""
    told = redact(problem, target.secrets() if target is not None else []).replace("\n", " ")
    line = f"gate: warning: notification {kind}{where} not delivered: {told} (the outcome and exit code are unchanged)"
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass  # stderr is gone: nothing more to tell
