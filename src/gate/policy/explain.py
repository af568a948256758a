"""Why a Rego unit test failed: its first false or undefined expression, and the values it compared.

``opa test --var-values --show-failure-line`` prints, for a failing test, the last expression that
failed (``file:line:`` and its text) with the value of each variable and call under it, read from
OPA's evaluation trace. regorus has no trace, so gate asks the engine directly, from the test's own
source (its AST, ``get_ast_as_json``, gives every statement's text and span):

1. Probe rules ``gate_probe__reached_K if { S1 … SK }``, copies of the test body's first K
   statements (``with`` modifiers included) in a second module of the test's package with the
   test file's imports, find the first statement no solution gets past: the failing expression.
2. For a comparison (``==``, ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``), a membership (``x in s``),
   ``not x`` or a plain expression, further probes evaluate each side under the statements before it
   and under the statement's own ``with`` modifiers, as the test saw them. The literal side is the
   expected one (``count(deny) == 1``: expected 1); with none or two literals, the right side is.
   A ``count(x)`` or other call on the side that came shows its arguments' values too (``where``);
   a failed ``every`` names the members its body does not hold for.

Every probe runs in its own clone of the test engine (a clone is copy-on-write: cheap), so a probe
regorus cannot compile or evaluate (an unsafe variable in a destructuring ``=``, say) loses only
that value, which is then reported as not computed; the test's result never depends on a probe.
Values are shown in Rego syntax (sets as ``{…}`` / ``set()``): ``walk`` reports which nodes are sets,
since JSON has none. Only the first definition of a test and its first body are explained.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from gate.policy.embedded import RegorusEngine, regorus_message

#: the prefix of every probe rule and variable (a test's own names do not start with it)
PROBE = "gate_probe__"
#: longest value shown in text output; JSON output carries up to JSON_VALUE_CHARS
TEXT_VALUE_CHARS = 160
JSON_VALUE_CHARS = 4000
UNDEFINED = "undefined"

#: comparison operators as regorus' AST names them, and as Rego spells them
_OPERATORS = {"Eq": "==", "Ne": "!=", "Lt": "<", "Le": "<=", "Gt": ">", "Ge": ">="}
#: the operator seen from the other side (``0 < count(x)`` is ``count(x) > 0``)
_FLIPPED = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_LITERALS = {"Number", "String", "RawString", "Bool", "Null"}
_QUOTES = {"String": b'"', "RawString": b"`"}


@dataclass(frozen=True)
class Failure:
    """The expression a failing test stopped at, and what it expected and got (Rego text, unshortened)."""

    #: the statement's source text, ``with`` modifiers included
    expression: str
    #: its file (the bundle key) and line
    path: str
    line: int
    #: what would have made it true, e.g. ``1``, ``!= 1``, ``to contain "x"``; None when not computed
    expected: str | None = None
    #: what came, e.g. ``0``, ``undefined``; None when not computed
    got: str | None = None
    #: the values of what the side that came is made of (``demo.deny`` of ``count(demo.deny)``)
    where: tuple[tuple[str, str], ...] = ()
    #: why a value could not be computed, when it could not
    note: str | None = None


@dataclass(frozen=True)
class _Statement:
    """One statement of a test body (or its assigned value), as source text and AST."""

    #: the statement as written, ``with`` modifiers included
    text: str
    #: the literal alone, without them
    literal: str
    #: ``with …`` modifiers, each as written
    withs: tuple[str, ...]
    #: the literal's kind (``Expr``, ``NotExpr``, ``SomeIn``, ``Every``, ``Value``) and its node
    kind: str
    node: dict[str, Any]
    line: int


@dataclass(frozen=True)
class _Source:
    """A test file's text as bytes: AST spans are byte offsets."""

    raw: bytes

    def text(self, node: dict[str, Any]) -> str:
        """The node's source text (see ``extent``)."""
        start, end = self.extent(node)
        return self.raw[start:end].decode("utf-8", "replace")

    def line(self, node: dict[str, Any]) -> int:
        """The line the node's text begins on."""
        return self.raw.count(b"\n", 0, self.extent(node)[0]) + 1

    def extent(self, node: dict[str, Any]) -> tuple[int, int]:
        """Where the node's text begins and ends, as byte offsets.

        regorus' spans are not all whole: a string's leaves its quotes out, an object's may begin at
        its last key. So the text runs from the first to the last offset of any span in the node, is
        widened by the quotes of a string at either edge, then by the brackets it leaves unbalanced.
        """
        spans = list(_spans(node))
        start, end = min(s["start"] for s in spans), max(s["end"] for s in spans)
        for quote, leaf in _strings(node):  # a string's span is its content: its quotes are around it
            span = _span(leaf)
            if span["start"] == start and self.raw[start - 1 : start] == quote:
                start -= 1
            if span["end"] == end and self.raw[end : end + 1] == quote:
                end += 1
        missing_open, missing_close = _unbalanced(self.raw[start:end])
        for _ in range(missing_open):
            before = len(self.raw[:start].rstrip())
            if before == 0 or self.raw[before - 1 : before] not in (b"{", b"[", b"("):
                break
            start = before - 1
        for _ in range(missing_close):
            after = len(self.raw) - len(self.raw[end:].lstrip())
            if self.raw[after : after + 1] not in (b"}", b"]", b")"):
                break
            end = after + 1
        return start, end


def _spans(node: Any) -> Iterator[dict[str, Any]]:
    """Every span in ``node`` (an object's fields carry bare ones)."""
    if isinstance(node, dict):
        if isinstance(node.get("start"), int) and isinstance(node.get("end"), int):
            yield node
        for value in node.values():
            yield from _spans(value)
    elif isinstance(node, list):
        for item in node:
            yield from _spans(item)


def _strings(node: Any) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """Every string literal node under ``node`` (itself included), with the quote it is written in."""
    if isinstance(node, dict):
        for kind, inner in node.items():
            if kind in _QUOTES and isinstance(inner, dict) and "span" in inner:
                yield _QUOTES[kind], inner
            else:
                yield from _strings(inner)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _unbalanced(text: bytes) -> tuple[int, int]:
    """(closing brackets without an opening one, opening brackets left open), outside string literals."""
    missing_open = depth = 0
    quote: int | None = None
    escaped = False
    for byte in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif byte == 0x5C and quote == 0x22:  # a backslash in a "string"
                escaped = True
            elif byte == quote:
                quote = None
        elif byte in (0x22, 0x60):  # " or `
            quote = byte
        elif byte in b"{[(":
            depth += 1
        elif byte in b"}])":
            if depth == 0:
                missing_open += 1
            else:
                depth -= 1
    return missing_open, depth


def explain(engine: RegorusEngine, ast: list[dict[str, Any]], package: str, name: str, path: str) -> Failure | None:
    """Why ``data.<package>.<name>`` (defined in ``path``) is not true, or None when it cannot be told.

    ``engine`` is the test engine, every policy and data loaded; it is cloned, never changed.
    """
    module = next((m for m in ast if m.get("source", {}).get("file") == path), None)
    if module is None:
        return None
    source = _Source(module["source"]["contents"].encode())
    statements = _statements(module["ast"], name, source)
    if not statements:
        return None
    header = _header(module["ast"], source)
    with _quiet_stderr():  # regorus prints scheduling complaints about a probe it cannot order to stderr
        failing = _first_failing(engine, header, package, path, statements)
        if failing is None:
            return None
        before, statement = statements[:failing], statements[failing]
        return _describe(_Prober(engine, header, package, path, before, statement), statement, source, path)


def _statements(module: dict[str, Any], name: str, source: _Source) -> list[_Statement]:
    """The first definition of the test ``name``: its first body's statements, then its assigned value."""
    for rule in module.get("rules", []):
        spec = rule.get("Spec")
        head = (spec or {}).get("head", {}).get("Compr")
        if head is None or _var(head.get("refr")) != name:
            continue
        statements: list[_Statement] = []
        bodies = [b for b in spec.get("bodies", []) if not b.get("is_else")]
        if bodies:
            for stmt in bodies[0]["query"]["stmts"]:
                kind, node = next(iter(stmt["literal"].items()))
                withs = tuple(source.text(w) for w in stmt.get("with_mods") or [])
                line = source.line(stmt)
                statements.append(_Statement(source.text(stmt), source.text(node), withs, kind, node, line))
        assign = head.get("assign")
        if assign is not None and assign.get("value") is not None:
            value = assign["value"]
            text = source.text(value)
            statements.append(_Statement(text, text, (), "Value", value, source.line(value)))
        return statements
    return []


def _header(module: dict[str, Any], source: _Source) -> str:
    """The file's lines up to its last import: the package and imports a probe module needs."""
    spans = [_span(module["package"])] + [_span(i) for i in module.get("imports", [])]
    end = max(s["end"] for s in spans)
    newline = source.raw.find(b"\n", end)
    return source.raw[: len(source.raw) if newline < 0 else newline].decode("utf-8", "replace")


def _first_failing(
    engine: RegorusEngine, header: str, package: str, path: str, statements: list[_Statement]
) -> int | None:
    """The index of the first statement no solution of the ones before it gets past."""
    body = [s for s in statements if s.kind != "Value"]
    rules = [_rule(f"{PROBE}reached_{k}", [s.text for s in body[: k + 1]]) for k in range(len(body))]
    if statements[-1].kind == "Value":  # ``test_x := EXPR``: passes only when EXPR is true
        value = statements[-1]
        rules.append(_rule(f"{PROBE}reached_{len(body)}", [*(s.text for s in body), f"true == ({value.text})"]))
    probe = _clone_with(engine, header, path, "\n".join(rules))
    for k in range(len(statements)):
        values = _values(probe, f"data.{package}.{PROBE}reached_{k}")
        if values is None:  # the probe itself failed: nothing can be told
            return None
        if not values:
            return k
    return None


def _rule(name: str, body: list[str]) -> str:
    return f"{name} if {{\n" + "".join(f"\t{line}\n" for line in body) + "}\n"


class _Prober:
    """Evaluates expressions as the failing statement saw them: after the statements before it,
    under its ``with`` modifiers; each in its own clone of the engine."""

    def __init__(
        self, engine: RegorusEngine, header: str, package: str, path: str, before: list[_Statement], at: _Statement
    ) -> None:
        self._engine, self._header, self._package, self._path = engine, header, package, path
        self._before = [s.text for s in before if s.kind != "Value"]
        self._withs = "".join(f" {w}" for w in at.withs)
        self.problems: list[str] = []

    def value(self, expression: str) -> list[str] | None:
        """The Rego text of every value ``expression`` takes (none: undefined), or None when not computed."""
        return self._values_of(f"({expression}){self._withs}", [])

    def failing_members(self, key: str | None, var: str, domain: str, body: str) -> list[str] | None:
        """The members of ``every [key,] var in domain body`` for which the body does not hold."""
        d, k, m = f"{PROBE}domain", f"{PROBE}k", f"{PROBE}m"
        names = f"{key}, {var}" if key else var
        lines = [
            f"{d} := ({domain}){self._withs}",
            f"some {k}, {m} in {d}",
            f"[true | every {names} in {{{k}: {m}}} {body}] == []{self._withs}",  # one member at a time
        ]
        return self._values_of(m, lines)

    def _values_of(self, expression: str, lines: list[str]) -> list[str] | None:
        v, p, x, out = f"{PROBE}v", f"{PROBE}p", f"{PROBE}x", f"{PROBE}out"
        rule = (
            f"{PROBE}value contains {out} if {{\n"
            + "".join(f"\t{line}\n" for line in [*self._before, *lines])
            + f"\t{v} := {expression}\n"
            + f"\t{out} := [{v}, [{p} | walk({v}, [{p}, {x}]); is_set({x})]]\n"
            + "}\n"
        )
        probe = _clone_with(self._engine, self._header, self._path, rule)
        values = _values(probe, f"data.{self._package}.{PROBE}value", self.problems)
        if values is None:
            return None
        pairs = [pair for found in values for pair in found] if values else []
        try:
            return [_rego(value, {_key(path) for path in set_paths}) for value, set_paths in pairs]
        except (TypeError, ValueError) as e:
            self.problems.append(f"unexpected value shape: {e}")
            return None


def _describe(prober: _Prober, at: _Statement, texts: _Source, path: str) -> Failure:
    """The failure at ``at``: what was expected of it, and what came."""
    # the expression itself: an Expr literal wraps it; a test's assigned value is one
    kind, inner = next(iter(at.node["expr"].items())) if at.kind == "Expr" else (at.kind, at.node)
    if at.kind == "Value":
        kind, inner = next(iter(at.node.items()))
    expected: str | None
    got: list[str] | None
    where: list[tuple[str, str]] = []
    if kind in ("BoolExpr", "AssignExpr") and inner.get("op") in (*_OPERATORS, "ColEq"):
        expected, got, where = _comparison(prober, texts, kind, inner)
    elif kind == "Membership" or at.kind == "SomeIn":
        expected, got = _membership(prober, texts, inner, declares=at.kind == "SomeIn")
    elif at.kind == "NotExpr":
        expected, got = "undefined or false", prober.value(texts.text(inner["expr"]))
        where = _where(prober, texts, inner["expr"])
    elif at.kind == "Every":
        expected, got = "every member to satisfy the body", _every(prober, texts, inner)
    elif at.kind == "Value":
        expected, got = "true", prober.value(at.literal)
    elif at.kind == "Expr":
        expected, got = "defined and not false", prober.value(at.literal)
        where = _where(prober, texts, at.node["expr"])
    else:  # ``some x`` declarations cannot fail: nothing more to tell
        expected, got = None, None
    problems = "; ".join(dict.fromkeys(prober.problems))
    return Failure(
        expression=at.text,
        path=path,
        line=at.line,
        expected=expected,
        got=None if got is None else _one(got),
        where=tuple(where),
        note=f"a value could not be computed: {problems}" if problems else None,
    )


def _comparison(
    prober: _Prober, texts: _Source, kind: str, node: dict[str, Any]
) -> tuple[str | None, list[str] | None, list[tuple[str, str]]]:
    """``a == b``, ``a = b``, ``a != b``, ``a < b`` …: the literal side is expected, else the right one."""
    lhs, rhs = node["lhs"], node["rhs"]
    if kind == "AssignExpr" and node["op"] == "ColEq":  # ``x := value`` fails only when value does
        got = prober.value(texts.text(rhs))
        return f"a value for {texts.text(lhs)}", got, _where(prober, texts, rhs)
    op = _OPERATORS[node["op"]]
    got_side, expected_side = lhs, rhs
    if _is_literal(lhs) and not _is_literal(rhs):
        got_side, expected_side, op = rhs, lhs, _FLIPPED[op]
    got = prober.value(texts.text(got_side))
    wanted = prober.value(texts.text(expected_side))
    expected = None if wanted is None else ("" if op == "==" else f"{op} ") + _one(wanted)
    return expected, got, _where(prober, texts, got_side)


def _every(prober: _Prober, texts: _Source, node: dict[str, Any]) -> list[str] | None:
    """The members an ``every`` stopped at, as one text."""
    key = node.get("key")
    body = "{\n" + "".join(f"\t\t{texts.text(stmt)}\n" for stmt in node["query"]["stmts"]) + "\t}"
    members = prober.failing_members(
        texts.raw[key["start"] : key["end"]].decode() if key else None,
        texts.raw[node["value"]["start"] : node["value"]["end"]].decode(),
        texts.text(node["domain"]),
        body,
    )
    if members is None:
        return None
    if len(members) == 1:
        return [f"{members[0]} (a member for which the body does not hold)"]
    return [", ".join(members) + " (members for which the body does not hold)"] if members else []


def _membership(
    prober: _Prober, texts: _Source, node: dict[str, Any], declares: bool
) -> tuple[str | None, list[str] | None]:
    """``x in s`` / ``k, v in s``: the collection came; ``some x in s`` only needs it not empty."""
    got = prober.value(texts.text(node["collection"]))
    if declares:
        return "a collection with members", got
    member = texts.text(node["value"])
    if node.get("key") is not None:
        return f"to contain {texts.text(node['key'])}, {member}", got
    wanted = prober.value(member)
    return f"to contain {member if wanted is None else _one(wanted)}", got


def _where(prober: _Prober, texts: _Source, node: dict[str, Any]) -> list[tuple[str, str]]:
    """For a call (``count(deny)``): each argument that is not a literal, with its value."""
    kind, inner = next(iter(node.items()))
    if kind != "Call":
        return []
    shown = []
    for param in inner.get("params", [])[:3]:
        if _is_literal(param):
            continue
        text = texts.text(param)
        values = prober.value(text)
        if values is not None:
            shown.append((text, _one(values)))
    return shown


def _one(values: list[str]) -> str:
    """One value, ``undefined``, or the several values an iterating test body gave."""
    if not values:
        return UNDEFINED
    if len(values) == 1:
        return values[0]
    return f"one of {len(values)} values: " + " | ".join(values)


def _is_literal(node: dict[str, Any]) -> bool:
    """A constant written in the test (``1``, ``{"a"}``, ``[1, {"b": 2}]``): the expected side."""
    kind, inner = next(iter(node.items()))
    if kind in _LITERALS:
        return True
    if kind in ("Array", "Set"):
        return all(_is_literal(item) for item in inner.get("items", []))
    if kind == "Object":
        return all(_is_literal(k) and _is_literal(v) for _, k, v in inner.get("fields", []))
    return False


def _clone_with(engine: RegorusEngine, header: str, path: str, rules: str) -> RegorusEngine | None:
    """A clone of ``engine`` with a probe module in the test's package; None when it does not compile."""
    probe = engine.clone()
    probe.set_enable_coverage(False)  # probes must not count as coverage
    try:
        probe.add_policy(f"{path}#{PROBE}", f"{header}\n\n{rules}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - an engine error or panic loses this probe only
        return None
    return probe


def _values(engine: RegorusEngine | None, query: str, problems: list[str] | None = None) -> list[Any] | None:
    """The values ``query`` takes ([] when undefined), or None when it cannot be evaluated."""
    if engine is None:
        if problems is not None:
            problems.append("the probe does not compile")
        return None
    try:
        answer = json.loads(engine.eval_query_as_json(query))
        engine.take_prints()  # a probe's print() output is not the test's
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as e:  # noqa: BLE001 - an engine error or panic loses this value only
        if problems is not None:  # where in the probe module it failed means nothing to the reader
            problems.append(re.sub(rf"^\S*#{PROBE}:\d+:\d+: ", "", regorus_message(e)))
        return None
    results = answer.get("result") or [] if isinstance(answer, dict) else []
    values = [e.get("value") for r in results for e in r.get("expressions", [])]
    return [v for v in values if v is not False]


def _rego(value: Any, sets: set[str], path: tuple[Any, ...] = ()) -> str:
    """``value`` in Rego syntax; ``sets``: the (canonical) paths of the nodes that are sets."""
    if isinstance(value, list):
        if _key(list(path)) in sets:
            items = [_rego(item, sets, (*path, item)) for item in value]
            return "{" + ", ".join(items) + "}" if items else "set()"
        return "[" + ", ".join(_rego(item, sets, (*path, i)) for i, item in enumerate(value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_rego(v, sets, (*path, k))}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _key(path: list[Any]) -> str:
    return json.dumps(path, sort_keys=True, separators=(",", ":"))


def _span(node: dict[str, Any]) -> dict[str, Any]:
    """A node's span: its own, or (for ``{"Kind": {...}}``) its inner node's."""
    if "span" in node:
        span: dict[str, Any] = node["span"]
        return span
    inner = next(iter(node.values()))
    return _span(inner)


def _var(node: dict[str, Any] | None) -> str | None:
    if not node or "Var" not in node:
        return None
    value = node["Var"].get("value")
    return value if isinstance(value, str) else None


def shorten(text: str, limit: int = TEXT_VALUE_CHARS) -> str:
    """``text``, cut to ``limit`` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 points at /dev/null meanwhile (regorus writes there directly, not through Python)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
