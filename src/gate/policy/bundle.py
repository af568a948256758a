"""Policy bundles laid out as OPA bundles: ``.rego`` files, ``data.json``/``data.yaml``, ``.manifest``.

As in OPA, a data file's folder (relative to the bundle root) is its place in ``data``:
``gate/config/data.json`` becomes ``data.gate.config``. The digest is a sha256 over every bundle
file's path and content, independent of the order the files are found in.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate import jsonbody
from gate.decisions.record import LayerInfo
from gate.errors import PolicyError

DATA_FILES = ("data.json", "data.yaml", "data.yml")
MANIFEST = ".manifest"
#: Bounds on every data file (``--data`` and a bundle's): hostile files are refused, not expanded.
#: Size, read with a bound (``--data /dev/zero`` stops here) ...
MAX_DATA_BYTES = 64 << 20
#: ... nesting of mappings and lists ...
MAX_DATA_NESTING = jsonbody.MAX_DEPTH
#: ... and values a YAML document may expand to through its aliases (the billion-laughs bomb).
MAX_DATA_NODES = 1_000_000


@dataclass(frozen=True)
class Bundle:
    """A loaded policy bundle."""

    root: Path
    #: ``.rego`` sources by path relative to the root (tests included; see ``policies()``)
    sources: dict[str, str]
    data: dict[str, Any]
    digest: str
    revision: str | None = None
    roots: tuple[str, ...] = field(default_factory=tuple)
    #: the bundles this one is made of, bottom first (gate.policy.sources.load_layers); one for a plain bundle
    layers: tuple[LayerInfo, ...] = field(default_factory=tuple)
    #: where each source is on disk when it is not ``root / key`` (the layers of a composite bundle)
    files: dict[str, Path] = field(default_factory=dict)

    def policies(self, include_tests: bool = False) -> dict[str, str]:
        """The Rego sources to evaluate: without ``*_test.rego`` unless asked for."""
        return {p: s for p, s in self.sources.items() if include_tests or not p.endswith("_test.rego")}

    def location(self, key: str) -> Path:
        """The file a source (by its key in ``sources``) was read from: what errors name."""
        return self.files.get(key) or self.root / key

    @property
    def name(self) -> str:
        """The bundle as messages name it: its layers' sources, else its directory."""
        return ", ".join(layer.source for layer in self.layers) or str(self.root)


def bundle_files(base: Path) -> list[tuple[str, Path]]:
    """(path relative to ``base``, path) of every file that is part of the bundle, sorted: ``.rego``, data
    files and the root ``.manifest``, outside hidden folders (what is read, hashed and pushed)."""
    found: list[tuple[str, Path]] = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in Path(rel).parts[:-1]):
            continue
        if path.suffix == ".rego" or path.name in DATA_FILES or rel == MANIFEST:
            found.append((rel, path))
    return found


def load_bundle(root: str | Path) -> Bundle:
    """Read a bundle directory; any unreadable or malformed file is a ``PolicyError`` naming it."""
    base = Path(root)
    if not base.is_dir():
        raise PolicyError(f"policy bundle {base}: not a directory")
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    digest_parts: list[tuple[str, str]] = []
    manifest: dict[str, Any] = {}
    for rel, path in bundle_files(base):
        is_rego = path.suffix == ".rego"
        raw = _read_bounded(path, str(path))
        digest_parts.append((rel, hashlib.sha256(raw).hexdigest()))
        text = _text(path, raw)
        if is_rego:
            sources[rel] = text
        elif rel == MANIFEST:
            manifest = _parse(path, text)
        else:
            _place(data, Path(rel).parent.parts, _parse(path, text), path)
    if not sources:
        raise PolicyError(f"policy bundle {base}: no .rego files")
    digest = hashlib.sha256("".join(f"{rel}\0{h}\n" for rel, h in sorted(digest_parts)).encode()).hexdigest()
    revision = manifest.get("revision")
    roots = manifest.get("roots") or ()
    if revision is not None and not isinstance(revision, str):
        raise PolicyError(f"policy bundle {base}/{MANIFEST}: revision must be a string")
    return Bundle(base, sources, data, f"sha256:{digest}", revision, tuple(roots))


def load_data_file(path: str | Path) -> dict[str, Any]:
    """A ``--data`` file (JSON or YAML) whose top-level keys are merged into ``data``."""
    p = Path(path)
    value = _parse(p, _text(p, _read_bounded(p, f"data file {p}")))
    if not isinstance(value, dict):
        raise PolicyError(f"data file {p}: top level must be a mapping, not {type(value).__name__}")
    return value


def _read_bounded(path: Path, what: str) -> bytes:
    """The file's bytes, reading at most one byte past MAX_DATA_BYTES (a device or pipe may never end)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_DATA_BYTES + 1)
    except OSError as e:
        raise PolicyError(f"{what}: cannot read: {e.strerror}") from None
    if len(raw) > MAX_DATA_BYTES:
        raise PolicyError(f"{what}: larger than {MAX_DATA_BYTES >> 20} MiB; refused")
    return raw


def _text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None


def _parse(path: Path, text: str) -> Any:
    if not text.strip():
        return {}
    if path.suffix in (".yaml", ".yml"):
        return parse_yaml(text, str(path))
    try:
        return jsonbody.loads(text)
    except jsonbody.JSONProblem as e:
        raise PolicyError(f"{path}: data is {e}; refused") from None


def parse_yaml(text: str, where: str) -> Any:
    """YAML from a data file people write (``--data``, a bundle's data, waivers), within the data bounds.

    The event stream is checked first, in one pass and without building anything: nesting depth,
    and the number of values the document expands to once every alias is followed. Only a document
    within the bounds is constructed; unquoted timestamps become RFC 3339 text, as from JSON.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        _check_events(yaml.parse(text, Loader=loader), where)
        return _plain(yaml.load(text, Loader=loader))
    except PolicyError:
        raise
    except Exception as e:  # yaml.YAMLError and friends
        raise PolicyError(f"{where}: invalid YAML: {_first_line(e)}") from None


def _check_events(events: Any, where: str) -> None:
    """Refuse a YAML event stream that nests too deeply or expands, through aliases, past MAX_DATA_NODES.

    Each open collection counts the values under it; a finished anchored node remembers its count, and
    an alias adds that count again: the expanded size, known without expanding anything.
    """
    import yaml

    total = 0  # values so far, every alias expanded
    inner: list[int] = [0]  # values inside each open collection (the first: the whole stream)
    anchors: list[str | None] = [None]
    sizes: dict[str, int] = {}  # anchor -> values its node stands for (itself included)
    for event in events:
        if isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise PolicyError(f"{where}: alias *{event.anchor} refers to itself or to nothing; refused")
            inner[-1] += sizes[event.anchor]
            total += sizes[event.anchor]
        elif isinstance(event, yaml.ScalarEvent):
            inner[-1] += 1
            total += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(inner) > MAX_DATA_NESTING:
                raise PolicyError(f"{where}: data is nested deeper than {MAX_DATA_NESTING} levels; refused")
            inner.append(0)
            anchors.append(event.anchor)
            total += 1
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            size, anchor = inner.pop() + 1, anchors.pop()
            inner[-1] += size
            if anchor is not None:
                sizes[anchor] = size
        if total > MAX_DATA_NODES:
            raise PolicyError(f"{where}: YAML expands to more than {MAX_DATA_NODES} values (aliases); refused")


def _plain(value: Any) -> Any:
    """YAML reads unquoted timestamps as datetimes; policies get RFC 3339 text, as from JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")
    return value


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _place(data: dict[str, Any], parts: tuple[str, ...], value: Any, path: Path) -> None:
    target = data
    for part in parts:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise PolicyError(f"{path}: conflicts with data already at {'.'.join(parts)}")
    if not isinstance(value, dict):
        if parts:
            raise PolicyError(f"{path}: a nested data file must hold a mapping")
    for key, item in (value or {}).items():
        if key in target:
            raise PolicyError(f"{path}: data key {'.'.join((*parts, key))} is defined twice in the bundle")
        target[key] = item


def merge_data(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra``'s top-level keys merged in, as OPA merges ``--data`` files."""
    merged = dict(base)
    for key, value in extra.items():
        if key in merged and isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _deep_merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = _deep_merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out
