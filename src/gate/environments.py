"""What an environment is: the names the policy data declares, and the GitOps paths bound to them.

The one home, in Python, of two questions every stage asks:

* **Is this environment declared?** The shipped library declares ``dev``, ``staging`` and ``prod``
  in ``data.gate.config.environments``; an organization adds or changes declarations with
  ``--data`` (``environments:``), merged over the shipped ones key by key. A declaration may name
  the environment it ``inherits`` its settings from. An undeclared ``--env`` (a typo, another case,
  a trailing space) is refused before anything is decided, naming the declared ones and the closest
  match: it never falls back to permissive settings.
* **Which environment does this GitOps path deploy?** A GitOps repository declares it once, in
  ``gate-environments.yaml`` at its root (``paths: {clusters/prod: prod, ...}``; the longest
  path prefix wins). Promote and reconcile compare it with the environment they act for.

Pure: no git, no engine; callers hand in the merged policy data or the binding file's text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from gate.errors import PolicyError, UsageError, closest_spelling

#: where the shipped library declares its environments (data.gate.config.environments)
SHIPPED_PATH = ("gate", "config", "environments")
#: where ``--data`` declares more (data.environments)
DATA_KEY = "environments"
#: what a declaration may hold
DECLARATION_KEYS = frozenset({"inherits", "description"})
#: an environment name: what decisions, trailers and file names carry safely
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")

#: the binding file at the root of a GitOps repository
BINDING_FILE = "gate-environments.yaml"
#: names people may give it by mistake: found, they are an error rather than "no binding"
BINDING_FILE_MISSPELLINGS = ("gate-environments.yml", ".gate-environments.yaml")
#: the binding file is a few lines; anything larger is refused unread
MAX_BINDING_BYTES = 64 * 1024


def quoted(name: str) -> str:
    """``name`` in double quotes, with spaces visible and look-alike characters escaped (``\\u0440``)."""
    return json.dumps(name)


@dataclass(frozen=True)
class Environment:
    """One declared environment."""

    name: str
    #: the environment it inherits settings from, or None
    inherits: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Environments:
    """The environments the policy data declares."""

    declared: Mapping[str, Environment]

    @property
    def names(self) -> list[str]:
        """The declared names, sorted."""
        return sorted(self.declared)

    def require(self, name: str, what: str = "environment") -> Environment:
        """The declaration of ``name``; a ``UsageError`` naming the declared ones (and the closest) otherwise."""
        found = self.declared.get(name) if isinstance(name, str) else None
        if found is not None:
            return found
        message = f"{what} {quoted(str(name))} is not declared in the policy data; declared: {', '.join(self.names)}"
        closest = self.closest(str(name))
        if closest is not None:
            message += f" (did you mean {quoted(closest)}?)"
        raise UsageError(message)

    def closest(self, name: str) -> str | None:
        """The declared name ``name`` most likely meant: by case, spacing and look-alike letters, then spelling."""
        return closest_spelling(_fold(name), self.names)


def _fold(name: str) -> str:
    """Lower case, no surrounding space, compatibility forms folded, Cyrillic/Greek look-alikes as Latin."""
    text = unicodedata.normalize("NFKC", name).strip().casefold()
    return text.translate(_LOOKALIKES)


#: letters that look like Latin ones (Cyrillic and Greek), for suggestions only: never for matching
_LOOKALIKES = str.maketrans({
    "а": "a", "с": "c", "е": "e", "һ": "h", "і": "i", "ј": "j", "о": "o", "р": "p", "ѕ": "s", "х": "x",
    "у": "y", "ԁ": "d", "ɡ": "g", "α": "a", "ε": "e", "ι": "i", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
    "ν": "v", "κ": "k",
})


def declared_environments(data: Mapping[str, Any]) -> Environments:
    """The environments declared in ``data`` (the bundle's data with every ``--data`` file merged in).

    ``data.gate.config.environments`` (shipped) with ``data.environments`` (``--data``) merged over
    it key by key. A malformed declaration — not a mapping, an unknown key, a bad name, ``inherits``
    naming an undeclared environment, an inheritance cycle — is a ``PolicyError`` (exit 2): an
    environment that cannot be read is never guessed. No declaration at all is an error too.
    """
    shipped: Any = data
    for key in SHIPPED_PATH:
        shipped = shipped.get(key) if isinstance(shipped, Mapping) else None
    extra = data.get(DATA_KEY)
    merged: dict[str, Any] = {}
    for where, source in (("data.gate.config.environments", shipped), ("data.environments", extra)):
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise PolicyError(f"{where} must map environment names to declarations, not be a {_type(source)}")
        for name, declaration in source.items():
            if isinstance(declaration, Mapping) and isinstance(merged.get(name), Mapping):
                merged[name] = {**merged[name], **declaration}
            else:
                merged[name] = declaration
    if not merged:
        raise PolicyError(
            "the policy data declares no environment: declare them in data.gate.config.environments "
            "(the bundle) or with --data (environments: {prod: {}, ...})"
        )
    declared = {name: _declaration(name, value) for name, value in merged.items()}
    for env in declared.values():
        if env.inherits is not None and env.inherits not in declared:
            raise PolicyError(
                f"environment {env.name} inherits {quoted(env.inherits)}, which is not declared "
                f"(declared: {', '.join(sorted(declared))})"
            )
    for env in declared.values():
        seen = [env.name]
        parent = env.inherits
        while parent is not None:
            if parent in seen:
                raise PolicyError(f"environment {env.name} inherits from itself: {' -> '.join([*seen, parent])}")
            seen.append(parent)
            parent = declared[parent].inherits
    return Environments(declared)


def _declaration(name: Any, value: Any) -> Environment:
    if not isinstance(name, str) or not NAME.match(name):
        raise PolicyError(
            f"environment name {quoted(str(name))} in the policy data: use lowercase letters, digits, '-', '_' or '.'"
        )
    if not isinstance(value, Mapping):
        raise PolicyError(f"environment {name}: its declaration must be a mapping such as {{inherits: dev}}, not a {_type(value)}")
    unknown = sorted(set(value) - DECLARATION_KEYS)
    if unknown:
        raise PolicyError(f"environment {name}: unknown key {unknown[0]} (known: {', '.join(sorted(DECLARATION_KEYS))})")
    inherits, description = value.get("inherits"), value.get("description")
    if inherits is not None and not isinstance(inherits, str):
        raise PolicyError(f"environment {name}: inherits must name an environment, not be a {_type(inherits)}")
    if description is not None and not isinstance(description, str):
        raise PolicyError(f"environment {name}: description must be text")
    return Environment(name, inherits, description)


def require_environment(name: str, data: Mapping[str, Any]) -> Environment:
    """The declaration of ``name`` in ``data``; exit 2 (``UsageError``/``PolicyError``) when there is none."""
    return declared_environments(data).require(name)


def _type(value: Any) -> str:
    names = {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


# --- GitOps path bindings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PathBindings:
    """``gate-environments.yaml``: which path of the GitOps repository deploys which environment."""

    #: normalized path prefix ("." for the whole repository) -> environment
    paths: Mapping[str, str]
    source: str = BINDING_FILE

    def environment_for(self, path: str) -> str | None:
        """The environment of the longest bound prefix of ``path`` (None when no prefix is bound)."""
        target = _path(path, f"path {path!r}")
        best: tuple[int, str] | None = None
        for prefix, environment in self.paths.items():
            if _under(target, prefix) and (best is None or _depth(prefix) > best[0]):
                best = (_depth(prefix), environment)
        return best[1] if best else None

    def bound_below(self, path: str) -> dict[str, str]:
        """Bindings strictly inside ``path`` (a folder synced as a whole may span them)."""
        target = _path(path, f"path {path!r}")
        return {p: e for p, e in self.paths.items() if p != target and _under(p, target)}

    def check_declared(self, environments: Environments) -> None:
        """Every bound environment must be declared: a binding to a typo is an error, not a refusal."""
        for prefix, environment in sorted(self.paths.items()):
            if environment not in environments.declared:
                raise UsageError(
                    f"{self.source} binds {prefix} to environment {quoted(environment)}, which is not declared "
                    f"in the policy data (declared: {', '.join(environments.names)})"
                )

    def disagreement(self, path: str, environment: str) -> str | None:
        """Why ``environment`` may not act on ``path`` under these bindings; None when it may.

        ``path`` must be bound (its longest bound prefix) to ``environment``, and no binding inside
        it may name another environment.
        """
        shown = _path(path, f"path {path!r}")
        bound = self.environment_for(path)
        if bound is None:
            return f"{self.source} binds no environment to {shown}"
        if bound != environment:
            return f"{self.source} binds {shown} to environment {bound}, not {environment}"
        others = {p: e for p, e in self.bound_below(path).items() if e != environment}
        if others:
            inner, env = sorted(others.items())[0]
            return f"{self.source} binds {inner}, inside {shown}, to environment {env}, not {environment}"
        return None


def parse_bindings(text: str, source: str = BINDING_FILE) -> PathBindings:
    """Parse and validate the binding file strictly; any problem is a ``UsageError`` naming ``source``.

    The file is ``paths:`` and nothing else, mapping relative paths (no ``..``, not absolute; ``.``
    is the whole repository) to environment names. Duplicate keys (also after normalization, as
    ``clusters/prod`` and ``clusters/prod/``), YAML aliases and tags are refused.
    """
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BINDING_BYTES:
        raise UsageError(f"{source}: larger than {MAX_BINDING_BYTES // 1024} KiB; it binds paths to environments")
    document = _strict_yaml(text, source)
    if not isinstance(document, dict):
        raise UsageError(f"{source}: must be a mapping with one key, paths (path: environment)")
    unknown = sorted(str(k) for k in document if k != "paths")
    if unknown:
        raise UsageError(f"{source}: unknown key {unknown[0]} (the file holds only paths)")
    paths = document.get("paths")
    if not isinstance(paths, dict) or not paths:
        raise UsageError(f"{source}: paths must map at least one path to an environment (e.g. clusters/prod: prod)")
    bound: dict[str, str] = {}
    for key, environment in paths.items():
        if not isinstance(key, str):
            raise UsageError(f"{source}: path {key!r} must be text")
        prefix = _path(key, f"{source}: path {key!r}")
        if not isinstance(environment, str) or not NAME.match(environment):
            raise UsageError(f"{source}: {key} must name an environment (lowercase letters, digits, '-', '_', '.'), "
                             f"not {environment!r}")
        if prefix in bound:
            raise UsageError(f"{source}: path {prefix} is bound twice")
        # on a case-insensitive checkout (macOS, Windows) both would be one folder, bound twice
        twin = next((p for p in bound if p.casefold() == prefix.casefold()), None)
        if twin is not None:
            raise UsageError(f"{source}: paths {twin} and {prefix} differ only in case: bind each folder once")
        bound[prefix] = environment
    return PathBindings(bound, source)


def read_bindings(root: Path) -> PathBindings | None:
    """The binding file at the root of a checked-out GitOps repository; None when there is none."""
    for wrong in BINDING_FILE_MISSPELLINGS:
        if (root / wrong).exists() or (root / wrong).is_symlink():
            raise UsageError(f"{wrong} found at the repository root: the binding file is named {BINDING_FILE}")
    path = root / BINDING_FILE
    if path.is_symlink():
        raise UsageError(f"{BINDING_FILE}: is a symlink; the binding file must be a plain file")
    if not path.exists():
        return None
    if not path.is_file():
        raise UsageError(f"{BINDING_FILE}: not a file")
    if path.stat().st_size > MAX_BINDING_BYTES:
        raise UsageError(f"{BINDING_FILE}: larger than {MAX_BINDING_BYTES // 1024} KiB; it binds paths to environments")
    return parse_bindings(decode_bindings(path.read_bytes()))


def decode_bindings(raw: bytes, source: str = BINDING_FILE) -> str:
    """The binding file's bytes as text (UTF-8); anything else is a ``UsageError``."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{source}: not UTF-8 text") from None


def unbound_warning(path: str) -> str:
    """The one-line warning when the GitOps repository has no binding file."""
    return (f"GitOps path {path} is not bound to an environment: the repository has no {BINDING_FILE} at its root "
            "(docs/audit.md), so nothing checks that this path deploys this environment")


def _strict_yaml(text: str, source: str) -> Any:
    """YAML without aliases, tags or duplicate keys (safe, and what a person wrote is what is read)."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise UsageError(f"{source}: line {_line(key_node.start_mark)}: a key must be plain text")
            if key in result:
                raise UsageError(f"{source}: line {_line(key_node.start_mark)}: {key} is given twice")
            result[key] = loader.construct_object(value_node)
        return result

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise UsageError(f"{source}: line {_line(event.start_mark)}: YAML anchors and aliases are not allowed")
            if getattr(event, "tag", None) is not None:
                raise UsageError(f"{source}: line {_line(event.start_mark)}: YAML tags are not allowed")
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as e:
        raise UsageError(f"{source}: invalid YAML: {' '.join(str(e).split())}") from None


def _line(mark: Any) -> str:
    """The 1-based line of a YAML mark ("?" when the parser gave none)."""
    return str(mark.line + 1) if mark is not None else "?"


def _path(text: str, what: str) -> str:
    """A repository-relative path, normalized (``./a/b/`` → ``a/b``; the root is ``.``)."""
    if "\\" in text or "\0" in text or text != text.strip():
        raise UsageError(f"{what}: use a plain relative path with '/' (no backslash, no surrounding spaces)")
    path = PurePosixPath(text)
    if path.is_absolute() or ".." in path.parts:
        raise UsageError(f"{what}: must be relative to the repository root and stay inside it")
    return path.as_posix() if path.parts else "."


def _under(path: str, prefix: str) -> bool:
    return prefix == "." or path == prefix or path.startswith(prefix + "/")


def _depth(prefix: str) -> int:
    return 0 if prefix == "." else len(PurePosixPath(prefix).parts)
