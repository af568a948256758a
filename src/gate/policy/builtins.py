"""Which functions a bundle calls, and whether the embedded engine has them.

regorus treats two kinds of call differently from OPA, and both let a deny rule silently never fire:

- ``http.send`` exists only as a stub that is always undefined: a rule built on it is never true.
- a builtin regorus lacks (``crypto.x509.parse_certificates``, ``io.jwt.*``, ...) is an error only
  when an evaluation reaches the call; OPA refuses the module when it compiles.

So after compiling, the embedded engine walks the parsed modules (regorus' AST as JSON) for every
call and refuses the bundle, naming the file, line and function, when a call is to neither a
function of the bundle nor a builtin the engine has. This module reads the AST only; the list of
builtins comes from the engine (``opa.runtime().builtins``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Builtins regorus registers but does not implement (always undefined), with what to do instead.
STUBS = {"http.send": "it is always undefined there, so a rule built on it never fires"}
#: Functions regorus evaluates without listing them among its builtins.
UNLISTED = frozenset({"print"})
#: Names the check's remembered passes (gate.policy.cache) by: change it with the rules above or the
#: walk below, so a bundle that passed an older check is checked again.
CHECK = "builtins-v1-" + ",".join(sorted(STUBS)) + "-" + ",".join(sorted(UNLISTED))


@dataclass(frozen=True)
class UnsupportedCall:
    """A call the embedded engine cannot evaluate as OPA would."""

    file: str
    line: int
    function: str

    def message(self) -> str:
        """One line naming the file, line and function, and what to do."""
        if self.function in STUBS:
            why = f"which the embedded engine does not support ({STUBS[self.function]})"
        else:
            why = "which the embedded engine does not have"
        return f"{self.file}:{self.line}: calls {self.function}, {why}; use --engine opa or remove the call"


def unsupported_calls(ast_json: str, builtins: frozenset[str]) -> list[UnsupportedCall]:
    """Every call in the modules of ``ast_json`` (regorus' ``get_ast_as_json``) to a function that is
    neither defined by the modules nor among ``builtins`` (stubs count as missing), in source order."""
    modules = json.loads(ast_json)
    defined: dict[str, set[str]] = {}  # package -> names of its rules and functions (relative)
    for module in modules:
        package = _dotted(module["ast"]["package"]["refr"]) or ""
        names = defined.setdefault(package, set())
        for rule in module["ast"].get("rules", []):
            head = _rule_head(rule)
            if head is not None and (name := _dotted(head)) is not None:
                names.add(name)
    problems = []
    for module in modules:
        source = module["source"]
        package = _dotted(module["ast"]["package"]["refr"]) or ""
        aliases = _import_aliases(module["ast"].get("imports", []), source["contents"])
        for name, line in _calls(module["ast"].get("rules", [])):
            first = name.split(".", 1)[0]
            if first == "data" or first in aliases or name in defined.get(package, ()):
                continue  # a function of the bundle
            if name in STUBS or (name not in builtins and name not in UNLISTED):
                problems.append(UnsupportedCall(source["file"], line, name))
    return sorted(problems, key=lambda p: (p.file, p.line, p.function))


def _dotted(ref: Any) -> str | None:
    """``a.b.c`` for a reference made of a variable and fields (``a.b["c"]`` too); None otherwise."""
    parts: list[str] = []
    while True:
        if not isinstance(ref, dict) or len(ref) != 1:
            return None
        kind, node = next(iter(ref.items()))
        if kind == "Var":
            parts.append(node["value"])
            return ".".join(reversed(parts))
        if kind == "RefDot":
            parts.append(node["field"][1])
        elif kind == "RefBrack" and isinstance(node.get("index"), dict) and "String" in node["index"]:
            parts.append(node["index"]["String"]["value"])
        else:
            return None
        ref = node["refr"]


def _rule_head(rule: Any) -> Any:
    """The reference a rule (or default rule, or function) defines."""
    if not isinstance(rule, dict) or len(rule) != 1:
        return None
    kind, node = next(iter(rule.items()))
    if kind == "Spec":
        head = node.get("head")
        if isinstance(head, dict) and len(head) == 1:
            return next(iter(head.values())).get("refr")
        return None
    return node.get("refr")  # Default


def _import_aliases(imports: list[Any], contents: str) -> set[str]:
    """The names ``import data.x.y [as z]`` brings into scope (``y`` or ``z``)."""
    raw = contents.encode()
    names = set()
    for imp in imports:
        path = _dotted(imp.get("refr"))
        if path is None or not path.startswith("data."):
            continue
        alias = imp.get("as")
        if isinstance(alias, dict):  # a span: the alias text is in the source
            names.add(raw[alias["start"] : alias["end"]].decode())
        else:
            names.add(path.rsplit(".", 1)[-1])
    return names


def _calls(tree: Any) -> Iterator[tuple[str, int]]:
    """(function, line) of every call in ``tree`` whose function is a plain dotted name."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            call = node.get("Call")
            if isinstance(call, dict) and "fcn" in call:
                name = _dotted(call["fcn"])
                if name is not None:
                    yield name, int(call.get("span", {}).get("line", 0))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
