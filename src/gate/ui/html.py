"""The one place the web view makes HTML: escaping, elements, attributes, URLs and links.

Every page of ``gate serve --ui`` is built from these calls, never by formatting strings with values
in them, so a value from the log — a rule message, an image name, a waiver reason, a CI context — can
only ever become text:

- ``Markup`` is HTML this module made (or a literal in the code); every other value passed to ``el``
  or ``join`` is escaped (``&<>"'``) as text, whatever its type;
- attribute values are always quoted and escaped; attribute and tag names come from the code and are
  checked against a strict grammar (a name from data is a programming error, raised, never written);
- ``url(path, params)`` builds a same-site link: path segments percent-encoded, the query through
  ``urlencode``; ``external_href`` lets through only ``http(s)://`` URLs from data (a GitOps commit, a
  CI run), with credentials redacted, and nothing else (no ``javascript:``, ``data:``, ``//host``);
- text from the log is redacted (gate.redact) before it is escaped: a token a scanner or a CI system
  put into a message is not shown to every auditor.

Pages carry no inline script or style (the Content-Security-Policy forbids both): ``el`` refuses a
``style`` attribute, an ``on*`` handler, and ``script``/``style`` elements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Union
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from gate.redact import redact

__all__ = [
    "Child",
    "Markup",
    "el",
    "escape",
    "external_href",
    "join",
    "link",
    "site_href",
    "text",
    "url",
]


class Markup(str):
    """HTML that is already safe: made by this module, or a literal written in the code."""

    __slots__ = ()

    def __add__(self, other: object) -> Markup:  # Markup + value: the value is escaped
        return Markup(str.__add__(self, escape(other)))

    def __radd__(self, other: object) -> Markup:
        return Markup(str.__add__(escape(other), self))


#: what ``el`` and ``join`` accept as content: Markup as is, None skipped, anything else escaped as text
Child = Union[Markup, str, int, float, None, Iterable["Child"]]

_NAME = re.compile(r"[a-z][a-z0-9-]*\Z")
_ATTR = re.compile(r"[a-z][a-z0-9-]*\Z")
#: void elements: no content, no end tag
_VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "col"})
#: never written: the CSP forbids inline script and style, and the pages need neither
_FORBIDDEN_TAGS = frozenset({"script", "style", "iframe", "object", "embed", "base"})
_FORBIDDEN_ATTRS = frozenset({"style", "srcdoc", "formaction"})
#: attributes whose value is a URL: must come from ``url``/``external_href`` (a Markup), never raw data
_URL_ATTRS = frozenset({"href", "src", "action", "xlink:href"})
#: SVG element and attribute names keep their camelCase (viewBox, textLength)
_SVG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*\Z")


_SPECIAL = re.compile(r"[&<>\"']")


def _escape_str(value: str) -> str:
    """html.escape(quote=True), with a fast path: most values of a page hold nothing to escape."""
    if _SPECIAL.search(value) is None:
        return value
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#x27;"))


def escape(value: object) -> Markup:
    """``value`` as HTML text: Markup unchanged, None as empty, anything else ``str()``-ed and escaped
    (``&``, ``<``, ``>``, ``"``, ``'``); safe in element content and in quoted attribute values."""
    if isinstance(value, Markup):
        return value
    if value is None:
        return Markup("")
    return Markup(_escape_str(str(value)))


@lru_cache(maxsize=8192)
def _redacted(value: str) -> str:
    return redact(value)


def text(value: object) -> Markup:
    """A value from the log shown as text: secrets redacted (gate.redact), then escaped. (Values
    repeat across a page — environments, rules, titles — so redactions are cached.)"""
    if value is None:
        return Markup("")
    string = str(value)
    return Markup(_escape_str(_redacted(string) if len(string) <= 4096 else redact(string)))


def join(children: Child, sep: Child = None) -> Markup:
    """Children (nested iterables flattened, None skipped) concatenated, each escaped unless Markup."""
    out: list[str] = []
    _render(children, out)
    if sep is None:
        return Markup("".join(out))
    return Markup(escape(sep).join(out))


def _render(children: Child, out: list[str]) -> None:
    """Append each child, escaped unless Markup, to ``out`` (iterables flattened, None skipped)."""
    if children is None:
        return
    if isinstance(children, str):
        out.append(children if isinstance(children, Markup) else _escape_str(children))
        return
    if isinstance(children, (int, float)):
        out.append(_escape_str(str(children)))
        return
    for child in children:
        if isinstance(child, Markup):
            out.append(child)
        elif child is not None:
            _render(child, out)


@lru_cache(maxsize=1024)
def _tag(tag: str, svg: bool) -> str:
    """``tag`` checked: a name from the code, never one that runs or loads (cached: a handful exist)."""
    if not (_SVG_NAME if svg else _NAME).match(tag) or tag.lower() in _FORBIDDEN_TAGS:
        raise ValueError(f"refusing element name {tag!r}")
    return tag


@lru_cache(maxsize=1024)
def _attribute(raw_name: str, svg: bool) -> tuple[str, bool]:
    """The attribute's written name, and whether it holds a URL; a name that could run script or
    restyle the page is refused (cached: attribute names come from the code)."""
    name = "xlink:href" if raw_name == "xlink_href" else raw_name.rstrip("_").replace("_", "-")
    lower = name.lower()
    valid = name == "xlink:href" or (_SVG_NAME if svg else _ATTR).match(name)
    if not valid or lower.startswith("on") or lower in _FORBIDDEN_ATTRS:
        raise ValueError(f"refusing attribute name {raw_name!r}")
    return name, lower in _URL_ATTRS


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: Child, svg: bool = False) -> Markup:
    """``<tag attrs>children</tag>``: names from the code (checked), every value escaped and quoted.

    An attribute whose value is None or False is left out; True writes the bare name (``required``).
    A trailing underscore is dropped (``class_`` → ``class``), an inner one becomes a dash
    (``aria_label`` → ``aria-label``). URL attributes (href, src, action) take only Markup from
    ``url``/``external_href``. ``svg=True`` allows SVG's camelCase names.
    """
    out = ["<", _tag(tag, svg)]
    if attrs:
        for raw_name, value in attrs.items():
            name, is_url = _attribute(raw_name, svg)
            if value is None or value is False:
                continue
            if is_url and not isinstance(value, Markup):
                raise ValueError(f"attribute {name} takes a URL from url() or external_href(), not {type(value).__name__}")
            if value is True:
                out += [" ", name]
            else:
                out += [" ", name, '="', value if isinstance(value, Markup) else _escape_str(str(value)), '"']
    out.append(">")
    if tag in _VOID:
        if children:
            raise ValueError(f"<{tag}> takes no content")
        return Markup("".join(out))
    _render(children, out)
    out += ["</", tag, ">"]
    return Markup("".join(out))


def url(path: str, params: Mapping[str, object] | Iterable[tuple[str, object]] | None = None,
        *segments: object) -> Markup:
    """A same-site URL: ``path`` (a literal from the code, starting with ``/``) followed by ``segments``
    (values: each percent-encoded as one path segment, so ``../`` or ``?`` in a value stays inside
    it), then ``?`` and ``params`` urlencoded; empty and None parameters are left out, a list value
    repeats its key."""
    if not path.startswith("/") or path.startswith("//"):
        raise ValueError(f"url() takes a site path, not {path!r}")
    built = path.rstrip("/") if segments else path
    for segment in segments:
        built += "/" + quote(str(segment), safe="")
    pairs: list[tuple[str, str]] = []
    items = params.items() if isinstance(params, Mapping) else (params or ())
    for key, value in items:
        values = value if isinstance(value, (list, tuple)) else [value]
        pairs += [(key, str(v)) for v in values if v is not None and v != "" and v is not False]
    if pairs:
        built += "?" + urlencode(pairs)
    return escape(built)


def site_href(value: object, prefixes: tuple[str, ...] = ("/",)) -> Markup | None:
    """A same-site link a payload carries (``/api/v1/decisions.csv?env=prod``), rebuilt: the path must
    start with one of ``prefixes`` (never ``//``, no scheme, no host) and is re-encoded, the query
    re-encoded through ``urlencode``; None for anything else."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\t\0\\"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    path = parts.path
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//") \
            or not path.startswith(prefixes) or "/../" in path + "/" or "/./" in path + "/":
        return None
    built = quote(path, safe="/-._~:@!$,;=+")
    pairs = parse_qsl(parts.query, keep_blank_values=False)
    if pairs:
        built += "?" + urlencode(pairs)
    return escape(built)


def external_href(value: object) -> Markup | None:
    """``value`` as a link target if it is an absolute ``http``/``https`` URL with a host (credentials
    redacted); None for anything else, so the caller shows it as text."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\t\0 <>\"'`\\"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return escape(redact(value))


def link(href: Markup | None, content: Child, attrs: Mapping[str, object] | None = None) -> Markup:
    """``<a href>content</a>``, or just the content when there is no target."""
    if href is None:
        return join(content)
    return el("a", {"href": href, **(attrs or {})}, content)
