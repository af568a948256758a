"""Redaction: the one scrubber for everything gate prints, logs or stores.

Secrets (passwords, tokens, keys) must never reach a terminal, a log line or a signed event, not
even inside another tool's error message. ``redact(text)`` removes what can be recognised by
shape, wherever it occurs in the text:

- URL user-info: ``https://user:pw@host/x`` → ``https://host/x`` (the user too: it is often the token);
  also without a scheme when it precedes a host (``user:pw@registry.example.com/app``);
- secret query or keyword values: ``?token=…``, ``access_token=…``, ``X-Amz-Signature=…``,
  ``sig=…``, ``password=…`` (libpq connection strings, quoted or not), ``api_key=…`` → ``=***``;
- ``Authorization``/``Bearer``/``Basic`` credentials → ``Bearer ***``;
- PEM private key blocks → ``-----BEGIN PRIVATE KEY-----***-----END PRIVATE KEY-----``.

A secret known to the caller (a password read from a URL or a credentials file) is removed too, as
written, percent-decoded and percent-encoded (git and libpq print either): pass it as ``secrets``,
or get a URL's with ``url_secrets``. A leaf module: stdlib only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, unquote

__all__ = ["MASK", "RedactingFilter", "redact", "redact_url", "redact_value", "url_secrets"]

MASK = "***"

#: a known secret shorter than this is not searched for: it would blank unrelated text
_MIN_SECRET = 3

_PEM = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY)-----.*?(?:-----END \1-----|\Z)", re.DOTALL
)
# the user-info runs to the last "@" before the path: a password may hold an unencoded "@"
_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s'\"<>]*@")
# user:password@host without a scheme (image references, docker logins); not name:tag@sha256:…
_BARE_USERINFO = re.compile(
    r"(?<![\w.:/@-])[^\s/@:'\"<>]+:[^\s/@'\"<>]+@(?!sha\d+:)(?=[A-Za-z0-9][A-Za-z0-9.-]*[:/])"
)
_SECRET_WORDS = (
    r"password|passwd|pwd|secret|token|api_key|apikey|api-key|private_key|credentials?|authorization"
)
_QUERY_SECRETS = r"sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
# name=value in query strings, connection strings and command lines (db_password=, --token=,
# access_token=); a quoted value may hold spaces
_KEYWORD = re.compile(
    rf"(?<![\w.])((?:[\w-]*?(?:{_SECRET_WORDS})|{_QUERY_SECRETS})\s*=\s*)"
    r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s&;,'\"<>)]+)",
    re.IGNORECASE,
)
_AUTH_HEADER = re.compile(r"(\bauthorization\s*[:=]\s*)(?:(bearer|basic|token|digest)\s+)?[^\s,;'\"]+", re.IGNORECASE)
# a credential after Bearer/Basic; not a plain word ("basic authentication")
_SCHEME_TOKEN = re.compile(r"\b(bearer|basic)(\s+)(?-i:(?![A-Za-z][a-z]*\b))[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)
#: mapping keys whose values are secrets wherever they appear in a structure (events, details)
_SECRET_KEY = re.compile(rf"^[\w-]*?(?:{_SECRET_WORDS})$", re.IGNORECASE)


def url_secrets(url: str) -> list[str]:
    """The secrets written into ``url``: its user-info password (or a lone user-info token), or a
    libpq ``password=`` keyword value."""
    found: list[str] = []
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s]*)@", url)
    if match:
        user, sep, password = match.group(1).partition(":")
        if sep:
            found.append(password)
        elif url.lower().startswith(("https://", "http://")) and len(user) >= 16:
            found.append(user)  # https://TOKEN@host: a long lone user is the token (ssh://git@ is not)
    for _, value in _KEYWORD.findall(url):
        found.append(value[1:-1] if value[:1] in "'\"" and len(value) > 1 else value)
    return [s for s in found if s]


def _variants(secrets: Iterable[str]) -> list[str]:
    """Each secret as written, percent-decoded and percent-encoded, longest first."""
    out: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        decoded = unquote(secret)
        out.update((secret, decoded, quote(decoded, safe=""), quote(decoded, safe="@:")))
    return sorted((s for s in out if len(s) >= _MIN_SECRET), key=len, reverse=True)


#: what every shape above needs somewhere in the text (PEM: -----BEGIN; user-info: @; keywords: =;
#: headers and schemes: their word): a text with none of it is returned without running them
_TRIGGER = re.compile(r"[@=]|-----BEGIN|authorization|bearer|basic", re.IGNORECASE)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credentials: those recognised by shape, and every one of ``secrets``."""
    if not text:
        return text
    for secret in _variants(secrets) if secrets else ():
        text = text.replace(secret, MASK)
    if not _TRIGGER.search(text):
        return text  # the common case (a finding's title, a path): one cheap scan instead of six
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}-----{MASK}-----END {m.group(1)}-----", text)
    text = _USERINFO.sub(r"\1", text)
    text = _BARE_USERINFO.sub("", text)
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + (f"{m.group(2)} " if m.group(2) else "") + MASK, text)
    text = _SCHEME_TOKEN.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return _KEYWORD.sub(lambda m: m.group(1) + MASK, text)


def redact_url(url: str) -> str:
    """``url`` as it may be shown: no user-info, no secret query values."""
    return redact(url, url_secrets(url))


def redact_value(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A JSON-like structure with every string redacted and the value of every secret-named key
    masked (``{"password": "x"}`` → ``{"password": "***"}``); other values unchanged."""
    known = tuple(secrets)
    if isinstance(value, str):
        return redact(value, known)
    if isinstance(value, dict):
        return {
            key: (MASK if isinstance(key, str) and _SECRET_KEY.match(key) and item not in (None, "") else redact_value(item, known))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item, known) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """Redacts every record passing a handler: the message with its arguments, and any traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
