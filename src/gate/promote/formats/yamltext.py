"""Locate YAML values with ruamel.yaml and edit them in the original text, byte for byte.

Re-dumping a round-trip document reflows indentation, quotes and comments; instead we ask ruamel
where a value starts (``.lc``), find the end of its token in the text ourselves, and splice the new
token in with the same quoting. Every span is checked against the value ruamel loaded, so a value we
cannot locate exactly (multi-line, alias, block scalar) is refused instead of being edited blindly.
"""

from __future__ import annotations

import bisect
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from gate.errors import GitOpsError

# ruamel's reader counts these as line breaks (a lone "\r" too); str.splitlines knows more, so not that.
LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_BREAK_CHARS = "\r\n\x85\u2028\u2029"
_NULLS = ("~", "null", "Null", "NULL")
_PLAIN = re.compile(r"^[A-Za-z0-9_./+~][A-Za-z0-9_./@:+~=-]*$")


class Source:
    """The original text of one file, with line offsets matching ruamel's line/column marks."""

    def __init__(self, text: str, path: str) -> None:
        self.text = text
        self.path = path
        self.starts = [0]
        self.endings: list[str] = []
        for match in LINE_BREAK.finditer(text):
            self.endings.append(match.group())
            self.starts.append(match.end())
        # ruamel does not count a byte-order mark as a column
        self._bom = 1 if text.startswith("\ufeff") else 0
        self.newline = Counter(self.endings).most_common(1)[0][0] if self.endings else "\n"

    def offset(self, line: int, col: int) -> int:
        """The text offset of ruamel's 0-based ``(line, col)``."""
        return self.starts[line] + col + (self._bom if line == 0 else 0)

    def line_of(self, offset: int) -> int:
        """The 0-based line that holds ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1

    def line_end(self, line: int) -> int:
        """The offset just before ``line``'s line break (or the end of the text)."""
        if line < len(self.endings):
            return self.starts[line + 1] - len(self.endings[line])
        return len(self.text)

    def where(self, offset: int) -> str:
        """``path:line`` for messages."""
        return f"{self.path}:{self.line_of(offset) + 1}"


@dataclass(frozen=True)
class Splice:
    """Replace ``text[start:end]`` by ``text``; the new value token starts at ``text[value_at:]``."""

    start: int
    end: int
    text: str
    value_at: int
    old: str
    new: str


@dataclass(frozen=True)
class Span:
    """Where a scalar value's token is: ``style`` is ``"``, ``'`` or ``""`` (plain); ``empty`` for ``key:``."""

    start: int
    end: int
    style: str
    raw: str
    flow: bool
    empty: bool = False
    comment_follows: bool = False


def load_documents(src: Source) -> list[Any]:
    """Every document of the file as ruamel round-trip nodes; bad YAML is a one-line ``GitOpsError``."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        return list(YAML(typ="rt").load_all(src.text))
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = (e.problem or e.context or type(e).__name__).splitlines()[0].strip()
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise GitOpsError(f"{src.path}: not valid YAML: {problem}{at}") from e
    except YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GitOpsError(f"{src.path}: not valid YAML: {first}") from e


def is_map(node: Any) -> bool:
    """A round-trip mapping (``CommentedMap``)."""
    from ruamel.yaml.comments import CommentedMap

    return isinstance(node, CommentedMap)


def is_seq(node: Any) -> bool:
    """A round-trip sequence (``CommentedSeq``)."""
    from ruamel.yaml.comments import CommentedSeq

    return isinstance(node, CommentedSeq)


def is_flow(node: Any) -> bool:
    """Whether a collection is written in flow style (``{...}`` / ``[...]``)."""
    return bool(node.fa.flow_style())


def position(parent: Any, key: Any) -> tuple[int, int]:
    """ruamel's ``(line, col)`` of the value at ``parent[key]`` (a mapping key or a sequence index)."""
    line, col = parent.lc.item(key) if is_seq(parent) else parent.lc.value(key)
    return int(line), int(col)


def _decode(raw: str) -> str:
    """The string a quoted token stands for (YAML escapes; only called when it has a backslash)."""
    from ruamel.yaml import YAML

    return str(YAML(typ="safe", pure=True).load(raw))


def _plain_end(src: Source, pos: int, flow: bool) -> tuple[int, bool]:
    """End of a plain token starting at ``pos``, and whether a comment follows it on the line."""
    text, eol = src.text, src.line_end(src.line_of(pos))
    stop, comment = eol, False
    for i in range(pos, eol):
        ch = text[i]
        if ch == "#" and i > pos and text[i - 1] in " \t":
            stop, comment = i, True
            break
        if flow and ch in ",]}":
            stop = i
            break
    return pos + len(text[pos:stop].rstrip(" \t")), comment


def _key_colon(src: Source, mapping: Any, key: Any) -> int:
    """Offset just after the ``:`` that ends ``key`` in ``mapping``."""
    text = src.text
    pos = src.offset(*mapping.lc.key(key))
    if pos < len(text) and text[pos] in "\"'":
        quote, i = text[pos], pos + 1
        while i < len(text) and not (text[i] == quote and text[i - 1] != "\\"):
            i += 1
        pos = i + 1
    eol = src.line_end(src.line_of(pos))
    while pos < eol:
        if text[pos] == ":" and (pos + 1 >= len(text) or text[pos + 1] in " \t,}]" or text[pos + 1] in _BREAK_CHARS):
            return pos + 1
        pos += 1
    raise GitOpsError(f"{src.where(pos)}: cannot find the ':' after key {key!r}")


def value_span(src: Source, parent: Any, key: Any) -> Span:
    """The token of the scalar at ``parent[key]``, verified against what ruamel loaded."""
    value = parent[key]
    flow = is_flow(parent)
    if is_map(value) or is_seq(value):
        raise GitOpsError(f"{src.where(src.offset(*position(parent, key)))}: {key!r} is not a single value")
    pos = src.offset(*position(parent, key))
    owner = src.offset(*parent.lc.key(key)) if is_map(parent) else src.offset(parent.lc.line, parent.lc.col)
    if pos < owner:  # ruamel reports an alias's value where its anchor is
        raise GitOpsError(f"{src.where(owner)}: {key!r} is an alias (*name); edit the anchored value instead")
    if value is None and is_map(parent):
        colon = _key_colon(src, parent, key)
        if not (pos >= colon and src.line_of(pos) == src.line_of(colon) and _token_at(src, pos, flow) in _NULLS):
            end, comment = _plain_end(src, colon, flow)
            if src.text[colon:end].strip():
                raise GitOpsError(f"{src.where(colon)}: cannot locate the value of {key!r}")
            region_end = src.text.find("#", colon) if comment else (end if flow else src.line_end(src.line_of(colon)))
            return Span(colon, region_end, "", src.text[colon:region_end], flow, empty=True, comment_follows=comment)
    return _scalar_at(src, pos, value, flow, key)


def _token_at(src: Source, pos: int, flow: bool) -> str:
    """The plain token starting at ``pos`` (used to recognise ``~``/``null``)."""
    end, _ = _plain_end(src, pos, flow)
    return src.text[pos:end]


def _scalar_at(src: Source, pos: int, value: Any, flow: bool, key: Any) -> Span:
    """Find the scalar token at ``pos`` (after any anchor or tag) and check it is the loaded value."""
    text = src.text
    while pos < len(text) and text[pos] in "&!":  # node properties: keep them, edit the token after
        while pos < len(text) and text[pos] not in " \t" and text[pos] not in _BREAK_CHARS:
            pos += 1
        while pos < len(text) and text[pos] in " \t":
            pos += 1
    where = src.where(pos)
    first = text[pos] if pos < len(text) else ""
    if first == "*":
        raise GitOpsError(f"{where}: {key!r} is an alias (*name); edit the anchored value instead")
    if first in ("|", ">"):
        raise GitOpsError(f"{where}: {key!r} is a block scalar; gate only edits single-line values")
    comment = False
    if first in ("'", '"'):
        i = pos + 1
        while True:
            ch = text[i] if i < len(text) else "\n"
            if ch in _BREAK_CHARS:
                raise GitOpsError(f"{where}: {key!r} spans several lines; gate only edits single-line values")
            if first == '"' and ch == "\\":
                i += 2
            elif ch == first and first == "'" and text[i + 1 : i + 2] == "'":
                i += 2
            elif ch == first:
                break
            else:
                i += 1
        end, raw = i + 1, text[pos : i + 1]
        if first == "'":
            decoded = raw[1:-1].replace("''", "'")
        else:
            decoded = _decode(raw) if "\\" in raw else raw[1:-1]
        style = first
    else:
        end, comment = _plain_end(src, pos, flow)
        raw = decoded = text[pos:end]
        style = ""
    if isinstance(value, str) and decoded != str(value):
        raise GitOpsError(f"{where}: cannot locate the value of {key!r} exactly (multi-line or unusual syntax)")
    if not comment:
        rest = text[end : src.line_end(src.line_of(end))]
        comment = rest.lstrip(" \t").startswith("#")
    return Span(pos, end, style, raw, flow, comment_follows=comment)


def current_text(span: Span) -> str:
    """The value a span holds, unquoted (``""`` for an empty value)."""
    if span.empty:
        return ""
    if span.style == "'":
        return span.raw[1:-1].replace("''", "'")
    if span.style == '"':
        return _decode(span.raw) if "\\" in span.raw else span.raw[1:-1]
    return span.raw


@lru_cache(maxsize=512)
def plain_ok(value: str, flow: bool) -> bool:
    """Whether ``value`` written plain reads back as that same string (YAML 1.2 and 1.1 resolvers)."""
    import yaml  # type: ignore[import-untyped,unused-ignore]
    from ruamel.yaml import YAML

    if not _PLAIN.match(value):
        return False
    doc = f"[{value}]" if flow else f"k: {value}"
    want: Any = [value] if flow else {"k": value}
    try:
        return bool(YAML(typ="safe", pure=True).load(doc) == want and yaml.safe_load(doc) == want)
    except Exception:  # any parse failure just means "quote it"
        return False


def render(value: str, style: str, flow: bool) -> str:
    """``value`` as a token in ``style``; plain falls back to double quotes when plain would change it."""
    if style == "'" and "\n" not in value:
        return "'" + value.replace("'", "''") + "'"
    if style == "" and plain_ok(value, flow):
        return value
    return json.dumps(value)


def replace(src: Source, span: Span, new: str) -> Splice | None:
    """A splice that writes ``new`` into ``span`` in the same style, or None if the text is already that."""
    if not span.empty and current_text(span) == new and (span.style or plain_ok(new, span.flow)):
        return None  # already that value (perhaps spelled with escapes): leave the bytes alone
    token = render(new, span.style, span.flow)
    if span.empty:
        tail = span.raw[1:] if len(span.raw) > 1 else (" " if span.comment_follows else "")
        return Splice(span.start, span.end, " " + token + tail, 1, "", new)
    if token == span.raw:
        return None
    return Splice(span.start, span.end, token, 0, current_text(span), new)


def value_end(src: Source, parent: Any, key: Any) -> int:
    """The offset where the value at ``parent[key]`` ends (recursing into block collections)."""
    value = parent[key]
    if is_map(value) or is_seq(value):
        start = src.offset(*position(parent, key))
        if is_flow(value):
            return flow_end(src, start)
        last = list(value.keys())[-1] if is_map(value) else len(value) - 1
        return value_end(src, value, last)
    return value_span(src, parent, key).end


def flow_end(src: Source, start: int) -> int:
    """The offset after the bracket that closes the flow collection opening at ``start``."""
    text, depth, i = src.text, 0, start
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i += 1
            while i < len(text) and text[i] != ch:
                i += 2 if (ch == '"' and text[i] == "\\") else 1
        elif ch == "#" and text[i - 1] in " \t" and depth:
            i = src.line_end(src.line_of(i)) - 1
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise GitOpsError(f"{src.where(start)}: unclosed flow collection")


def insert_line_after(src: Source, offset: int, content: str, value_at: int, new: str) -> Splice:
    """A new line ``content`` right after the line holding ``offset`` (same line-ending style)."""
    line = src.line_of(offset)
    if line < len(src.endings):
        return Splice(src.starts[line + 1], src.starts[line + 1], content + src.endings[line], value_at, "", new)
    return Splice(len(src.text), len(src.text), src.newline + content, len(src.newline) + value_at, "", new)


def key_indent(src: Source, mapping: Any) -> int:
    """The column of a block mapping's keys (the indentation a new key needs)."""
    first = next(iter(mapping))
    return int(mapping.lc.key(first)[1])


def set_keys(src: Source, mapping: Any, updates: list[tuple[str, str | None]], *, at_end: bool) -> list[Splice]:
    """Write each ``(key, value)`` into ``mapping`` (``None`` = leave alone, just an anchor).

    A missing key is inserted after the previous key of ``updates`` that is present (``at_end``: after
    the mapping's last key), as a new line with the mapping's indentation, or as ``, key: value`` in a
    flow mapping. Inserted values take the quoting style of the key they follow.
    """
    splices: list[Splice] = []
    flow = is_flow(mapping)
    anchor: str | None = None
    anchor_style = ""
    inserted: list[tuple[str, str]] = []
    for key, value in updates:
        if key in mapping:
            if not inserted:
                if mapping[key] is not None and not (is_map(mapping[key]) or is_seq(mapping[key])):
                    anchor_style = value_span(src, mapping, key).style
                anchor = key
            if value is not None:
                change = replace(src, value_span(src, mapping, key), value)
                if change is not None:
                    splices.append(change)
        elif value is not None:
            inserted.append((key, value))
    if not inserted:
        return splices
    if anchor is None or at_end:
        anchor = list(mapping.keys())[-1] if len(mapping) else None
        if (
            anchor is not None
            and mapping[anchor] is not None
            and not (is_map(mapping[anchor]) or is_seq(mapping[anchor]))
        ):
            anchor_style = value_span(src, mapping, anchor).style
    if anchor is None:
        raise GitOpsError(f"{src.path}: cannot add {inserted[0][0]!r} to an empty mapping")
    end = value_end(src, mapping, anchor)
    for key, value in inserted:
        token = render(value, anchor_style, flow)
        if flow:
            splices.append(Splice(end, end, f", {key}: {token}", len(key) + 4, "", value))
        else:
            prefix = " " * key_indent(src, mapping) + f"{key}: "
            splices.append(insert_line_after(src, end, prefix + token, len(prefix), value))
    return splices
