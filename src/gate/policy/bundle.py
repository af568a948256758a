"""Policy bundles laid out as OPA bundles: ``.rego`` files, ``data.json``/``data.yaml``, ``.manifest``.

As in OPA, a data file's folder (relative to the bundle root) is its place in ``data``:
``gate/config/data.json`` becomes ``data.gate.config``. The digest is a sha256 over every bundle
file's path and content, independent of the order the files are found in.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import PolicyError

DATA_FILES = ("data.json", "data.yaml", "data.yml")
MANIFEST = ".manifest"


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

    def policies(self, include_tests: bool = False) -> dict[str, str]:
        """The Rego sources to evaluate: without ``*_test.rego`` unless asked for."""
        return {p: s for p, s in self.sources.items() if include_tests or not p.endswith("_test.rego")}


def load_bundle(root: str | Path) -> Bundle:
    """Read a bundle directory; any unreadable or malformed file is a ``PolicyError`` naming it."""
    base = Path(root)
    if not base.is_dir():
        raise PolicyError(f"policy bundle {base}: not a directory")
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    digest_parts: list[tuple[str, str]] = []
    manifest: dict[str, Any] = {}
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base).as_posix()
        if not path.is_file() or any(part.startswith(".") for part in Path(rel).parts[:-1]):
            continue
        is_rego = path.suffix == ".rego"
        if not (is_rego or path.name in DATA_FILES or rel == MANIFEST):
            continue
        raw = path.read_bytes()
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
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise PolicyError(f"data file {p}: cannot read: {e.strerror}") from None
    value = _parse(p, _text(p, raw))
    if not isinstance(value, dict):
        raise PolicyError(f"data file {p}: top level must be a mapping, not {type(value).__name__}")
    return value


def _text(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8 text") from None


def _parse(path: Path, text: str) -> Any:
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return _plain(yaml.safe_load(text)) if text.strip() else {}
        return json.loads(text) if text.strip() else {}
    except (ValueError, ImportError) as e:
        raise PolicyError(f"{path}: {_first_line(e)}") from None
    except Exception as e:  # yaml.YAMLError and friends
        raise PolicyError(f"{path}: invalid YAML: {_first_line(e)}") from None


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
    return " ".join(str(error).split())


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
