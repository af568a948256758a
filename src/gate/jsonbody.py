"""JSON from a network client, read with limits: the one reader for ``gate serve``'s Data API and webhook.

``json.loads`` alone lets a client hurt the server: a body nested 100 000 levels deep raises
``RecursionError`` (a traceback, not an answer), and one nested a few hundred levels parses but
breaks whatever recurses over it later (copying, encoding, the engine, whose own parser stops at
128 levels). ``NaN`` and lone surrogates (``"\\ud800"``) parse in Python but are not JSON any other
component accepts. Each is refused here with a one-line reason, before anything else sees the document.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deepest nesting accepted. Kubernetes objects are about 15 levels deep (a CronJob's containers),
#: policy inputs and data a few more; the engine's JSON parser refuses documents beyond 128.
MAX_DEPTH = 100

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class JSONProblem(ValueError):
    """Why a body is refused, as a predicate: ``f"body is {problem}"`` reads as a sentence."""


def loads(data: bytes | str) -> Any:
    """The JSON document in ``data`` (UTF-8 when bytes); ``JSONProblem`` when it is not one gate accepts."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JSONProblem(f"not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start})") from None
    else:
        text = data
    try:
        document = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise JSONProblem(f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # JSONDecodeError, NaN, an integer of more digits than Python converts
        raise JSONProblem(f"not JSON: {e}") from None
    # a lone surrogate can only come from a \u escape: the strings are checked only when there is one
    check(document, strings=_SURROGATE_ESCAPE.search(text) is not None)
    return document


def check(document: Any, strings: bool = True) -> None:
    """``JSONProblem`` when ``document`` nests deeper than ``MAX_DEPTH`` or (with ``strings``) holds a
    string that is not valid Unicode; walked without recursion, so depth cannot exhaust the stack here."""
    if strings and isinstance(document, str):
        _check_text(document)
    stack: list[tuple[Any, int]] = [(document, 1)] if isinstance(document, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise JSONProblem(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            if strings:
                for key in node:
                    _check_text(key)
            values: Any = node.values()
        else:
            values = node
        for value in values:
            if isinstance(value, dict | list):
                stack.append((value, depth + 1))
            elif strings and isinstance(value, str):
                _check_text(value)


def _check_text(text: str) -> None:
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise JSONProblem(f"not valid Unicode: a string holds a lone surrogate (\\u{ord(text[e.start]):04x})") from None


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")
