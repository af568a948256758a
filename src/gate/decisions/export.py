"""``gate decisions export``: records as JSON lines, or as OPA decision-log events.

Both formats are streamed one record at a time (a log of a million decisions is never held in
memory) in chain order, oldest first, so a consumer that stops part-way has a prefix of the log.

``jsonl``: each line is the full stored record (input, hash, prev_hash, signature included), so
``record_hash`` of a line equals its ``hash`` and the lines can be re-verified as a chain when no
filter was applied.

``opa``: each line is an event shaped as OPA's decision logs (what OPA sends to a decision-log
service or prints with ``decision_logs.console``), so a pipeline built for OPA ingests it::

    {"decision_id": ..., "path": "gate/promotion", "input": {the input document},
     "result": {"outcome": ..., "violations": [...], "warnings": [...], "waivers": [...]},
     "bundles": {"<layer name>": {"revision": "<.manifest revision>"}, ...},  # one per policy layer
     "timestamp": "2026-11-26T18:57:08.471657Z",
     "labels": {"id": ..., "version": "<gate version>", "app": "gate", "environment": ...,
                "policy_digest": ..., "engine": ...},
     "requested_by": "<context.actor>", "error": {"code", "message"}}

``requested_by`` is present when the CI context named an actor, ``error`` only for outcome
``error``. OPA's own ``metrics`` (evaluation timers) are not recorded by gate, and OPA omits the
field when it has none, so it is omitted here too.

Masking, as OPA's ``system.log.mask`` does before an event leaves it: the policy data lists mask
entries under ``data.gate.config.log.mask`` (the bundle) and ``data.log.mask`` (``--data`` files;
added to the bundle's, never replacing them). An entry is a JSON pointer (RFC 6901) under ``/input``
or ``/result`` to erase, or OPA's object form ``{"op": "remove" | "upsert", "path": pointer,
"value": ...}``. As in OPA, the last token must name an object key (the ones before may index
lists), an erased field's pointer is listed in the event's ``erased``, an upserted one's in
``masked``, and a pointer naming nothing in an event is ignored. ``requested_by`` repeats the
input's ``context.actor``, so masking that (or a parent of it) drops ``requested_by`` too. A
malformed entry is an error before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import msgspec

from gate.decisions.record import Decision, Outcome
from gate.errors import UsageError

#: the decision's "path" in OPA terms: the package the promotion rules live in
OPA_PATH = "gate/promotion"
#: bundle name used when a decision does not say which directory its bundle came from
DEFAULT_BUNDLE = "gate"


def jsonl(decisions: Iterable[Decision]) -> Iterator[bytes]:
    """One full record per line."""
    encoder = msgspec.json.Encoder()
    for decision in decisions:
        yield encoder.encode(decision) + b"\n"


def opa_events(decisions: Iterable[Decision], version: str, mask: LogMask | None = None) -> Iterator[bytes]:
    """One OPA decision-log event per line, masked by ``mask``; ``version`` is gate's, as OPA puts its own in labels."""
    encoder = msgspec.json.Encoder()
    for decision in decisions:
        event = opa_event(decision, version)
        yield encoder.encode(mask.apply(event) if mask else event) + b"\n"


def opa_event(decision: Decision, version: str) -> dict[str, Any]:
    """The OPA decision-log event for ``decision``."""
    policy = decision.policy
    labels = {
        # OPA's instance id; for gate the key that signed the record identifies who produced it
        "id": decision.signing_key or "unsigned",
        "version": version,
        "app": "gate",
        "environment": decision.environment,
        "policy_digest": policy.digest,
        "engine": f"{policy.engine} {policy.engine_version}",
    }
    event: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "path": OPA_PATH,
        "input": decision.input,
        "result": {  # plain JSON values, so a mask can walk into them
            "outcome": decision.outcome.value,
            "violations": msgspec.to_builtins(decision.violations),
            "warnings": msgspec.to_builtins(decision.warnings),
            "waivers": msgspec.to_builtins(decision.waivers),
        },
        "bundles": bundles(decision),
        "timestamp": decision.timestamp,
        "labels": labels,
    }
    actor = decision.context.get("actor")
    if actor:
        event["requested_by"] = str(actor)
    if decision.outcome is Outcome.ERROR:
        event["error"] = {"code": "evaluation_error", "message": decision.error or "no decision could be made"}
    return event


def bundles(decision: Decision) -> dict[str, dict[str, str]]:
    """OPA's ``bundles``: each policy layer by name with its revision (one entry for an unlayered record)."""
    if decision.policy.layers:
        return {_name(layer.source): {"revision": layer.revision or ""} for layer in decision.policy.layers}
    return {bundle_name(decision): {"revision": decision.policy.revision or ""}}


def bundle_name(decision: Decision) -> str:
    """The bundle's directory name (``policies``), as OPA names a bundle by its configured name."""
    return _name(decision.policy.bundle) if decision.policy.bundle else DEFAULT_BUNDLE


def _name(source: str) -> str:
    """A layer's name: a directory's last part, ``gate:library``, an OCI bundle's ``REPO@sha256:D``."""
    return PurePath(source.replace("\\", "/")).name or DEFAULT_BUNDLE


#: where the mask is read from in the policy data: the bundle's, then the --data files'
MASK_PATHS = (("gate", "config", "log", "mask"), ("log", "mask"))
#: the parts of an event a mask may erase (OPA's rule: only the input and the result)
MASKABLE = frozenset({"input", "result"})
#: where requested_by comes from: masking it (or a parent) masks requested_by too
ACTOR = ("input", "context", "actor")


@dataclass(frozen=True)
class MaskRule:
    """One entry of the mask: erase the field at ``pointer``, or (``upsert``) set it to ``value``."""

    #: the pointer as written, listed in the event's ``erased`` or ``masked``
    pointer: str
    #: its unescaped reference tokens
    tokens: tuple[str, ...]
    upsert: bool = False
    value: Any = None


class LogMask:
    """What to erase or overwrite in every event, in the order the policy data lists it."""

    def __init__(self, rules: Iterable[MaskRule] = ()) -> None:
        self.rules: tuple[MaskRule, ...] = tuple(rules)
        self._masks_actor = any(ACTOR[: len(rule.tokens)] == rule.tokens for rule in self.rules)

    def __bool__(self) -> bool:
        return bool(self.rules)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LogMask:
        """The mask the merged policy data configures (``MASK_PATHS``); a malformed entry is a UsageError naming it."""
        rules: list[MaskRule] = []
        for path in MASK_PATHS:
            node: Any = data
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            where = "data." + ".".join(path)
            if node is None:
                continue
            if not isinstance(node, list):
                raise UsageError(f'{where}: give a list of JSON pointers such as "/input/context/actor", not {type(node).__name__}')
            rules += (parse_rule(entry, f"{where}[{i}]") for i, entry in enumerate(node))
        unique: dict[tuple[str, bool], MaskRule] = {}
        for rule in rules:  # listed twice (in the bundle and in --data): applied once, as first listed
            unique.setdefault((rule.pointer, rule.upsert), rule)
        return cls(unique.values())

    def apply(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` with the mask applied, the pointers that erased a field listed in ``erased`` and the
        upserted ones in ``masked``, as OPA does. Copies what it changes: the decision is left as it was."""
        erased: list[str] = []
        masked: list[str] = []
        for rule in self.rules:
            if rule.upsert:
                value = rule.value
                changed = _rewrite(event, rule.tokens, lambda obj, key: {**obj, key: value}, create=True)
            else:
                changed = _rewrite(event, rule.tokens, lambda obj, key: {k: v for k, v in obj.items() if k != key} if key in obj else None)
            if changed is not None:
                event = changed
                (masked if rule.upsert else erased).append(rule.pointer)
        if self._masks_actor and "requested_by" in event:  # it repeats input.context.actor
            event = {k: v for k, v in event.items() if k != "requested_by"}
        if erased:
            event = {**event, "erased": erased}
        if masked:
            event = {**event, "masked": masked}
        return event


def parse_rule(entry: Any, where: str) -> MaskRule:
    """A mask entry: a pointer (erase it), or OPA's ``{"op": "remove" | "upsert", "path", "value"}``."""
    if isinstance(entry, str):
        return MaskRule(entry, parse_pointer(entry, where))
    if not isinstance(entry, dict):
        raise UsageError(f"{where}: a mask entry is a JSON pointer string or an {{op, path, value}} object, not {type(entry).__name__}")
    op, path = entry.get("op"), entry.get("path")
    unknown = sorted(set(entry) - {"op", "path", "value"})
    if unknown:
        raise UsageError(f"{where}: unknown key {unknown[0]!r}: a mask object has op, path and value")
    if op not in ("remove", "upsert"):
        raise UsageError(f"{where}: op {op!r}: give \"remove\" or \"upsert\"")
    if op == "upsert" and "value" not in entry:
        raise UsageError(f"{where}: an upsert needs a value")
    return MaskRule(str(path), parse_pointer(path, where), upsert=op == "upsert", value=entry.get("value"))


#: ``~`` not starting ``~0`` or ``~1``: not a JSON pointer
_BAD_ESCAPE = re.compile(r"~(?![01])")


def parse_pointer(pointer: Any, where: str) -> tuple[str, ...]:
    """The reference tokens of an RFC 6901 pointer under /input or /result; anything else is a UsageError."""
    if not isinstance(pointer, str):
        raise UsageError(f"{where}: a mask entry is a JSON pointer string, not {type(pointer).__name__}")
    if not pointer.startswith("/"):
        raise UsageError(f'{where}: {pointer!r} is not a JSON pointer: start it with / ("/input/context/actor")')
    if _BAD_ESCAPE.search(pointer):
        raise UsageError(f"{where}: {pointer!r}: ~ must be written ~0 (and / inside a key ~1)")
    tokens = tuple(raw.replace("~1", "/").replace("~0", "~") for raw in pointer[1:].split("/"))
    if tokens[0] not in MASKABLE:
        raise UsageError(f"{where}: {pointer!r}: a mask may only erase fields under /input or /result")
    return tokens


def _rewrite(
    node: Any, tokens: tuple[str, ...], change: Callable[[dict[str, Any], str], dict[str, Any] | None], *, create: bool = False
) -> Any:
    """A copy of ``node`` with ``change`` applied to the object holding the last token, copying only
    along the path; None when the path is undefined (as OPA: the last token must name an object key,
    the ones before may index lists). ``create``: missing objects on the way are made."""
    key, rest = tokens[0], tokens[1:]
    if not rest:
        return change(node, key) if isinstance(node, dict) else None
    if isinstance(node, dict):
        if key not in node and not create:
            return None
        changed = _rewrite(node[key] if key in node else {}, rest, change, create=create)
        return None if changed is None else {**node, key: changed}
    if isinstance(node, (list, tuple)) and _INDEX.fullmatch(key) and int(key) < len(node):
        changed = _rewrite(node[int(key)], rest, change, create=create)
        if changed is None:
            return None
        items = list(node)
        items[int(key)] = changed
        return items
    return None


#: a list position in a pointer: a decimal without leading zeros
_INDEX = re.compile(r"0|[1-9][0-9]*")
