"""The configuration file: the defaults people would otherwise repeat on every call.

``gate.toml`` — or a ``[tool.gate]`` table in ``pyproject.toml`` — found in the current folder or
the nearest parent that has one (the search stops at the first folder holding ``.git``, or at the
filesystem root; in one folder ``gate.toml`` wins). ``--config FILE`` or ``GATE_CONFIG=FILE`` name
the file instead of searching; a named file that is missing is an error, not "no configuration".

Precedence for every setting: command-line flag > environment variable > file > built-in default.
The CLI reads the file once per ``main()`` and makes it :func:`current`; the one reader of each
setting asks :func:`current` (``Settings.env("GATE_DECISION_STORE")``, ``Settings.policy``, ...).

What the file may hold is :data:`KEYS` (docs/configuration.md). It never holds a secret (tokens
stay in environment variables; a store password in ``PGPASSWORD`` or ``~/.pgpass``) and never
binds a GitOps path to an environment: that binding is a trust anchor kept in the GitOps
repository (``gate-environments.yaml``); a file here gives ``gate promote`` a default
``--gitops-path``, which the binding then checks like any flag.

Any problem (unknown key, wrong type, invalid TOML, a named file missing) is a ``UsageError`` naming
the file: exit 2, never a silent fallback to defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import UsageError, closest_spelling

__all__ = [
    "CONFIG_ENV", "FILE_NAME", "KEYS", "Key", "Settings", "current", "find", "load", "use",
]

#: the configuration file's name
FILE_NAME = "gate.toml"
#: the alternative: a [tool.gate] table in this file
PYPROJECT = "pyproject.toml"
#: names the file instead of searching (as --config does)
CONFIG_ENV = "GATE_CONFIG"
#: a configuration file is a few lines; anything larger is refused unread
MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Key:
    """One setting the file may hold."""

    #: dotted, as written in the file (``promote.max_age``)
    name: str
    #: "string", "list of strings" or "boolean" (stored as "true" / "false")
    kind: str
    #: the environment variable that overrides it (None: flag or file only)
    variable: str | None = None
    #: relative paths in the value are resolved against the file's folder
    paths: bool = False
    help: str = ""


#: every setting the file may hold (the one list: loading, `gate config show` and docs follow it)
KEYS: tuple[Key, ...] = (
    Key("policy", "list of strings", paths=True,
        help="policy layers, bottom first: gate:library, folders, oci://REGISTRY/REPO:TAG (--policy)"),
    Key("data", "list of strings", paths=True, help="data files merged over the policy data (--data)"),
    Key("vex", "list of strings", paths=True,
        help="OpenVEX v0.2.0 or CycloneDX VEX documents gate evaluate reads as triage (--vex)"),
    Key("vex_require_signed", "boolean", "GATE_VEX_REQUIRE_SIGNED",
        help="refuse a VEX document that is not a DSSE envelope signed by a trusted key (true/false)"),
    Key("decision_store", "string", "GATE_DECISION_STORE", paths=True,
        help="the decision log: a path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB"),
    Key("trusted_keys", "list of strings", "GATE_TRUSTED_KEYS", paths=True,
        help="public-key PEM files or folders whose signatures are trusted"),
    Key("signing_key", "string", "GATE_SIGNING_KEY", paths=True,
        help="path to the Ed25519 private key gate evaluate signs with (the path, never the key)"),
    Key("evidence", "string", "GATE_EVIDENCE",
        help="what admits an image in gate reconcile and gate serve --admission: vsa, log or both (--evidence)"),
    Key("vsa_max_age", "string", "GATE_VSA_MAX_AGE",
        help="how old an attached VSA may be when it is the evidence (--vsa-max-age)"),
    Key("promote.max_age", "string", "GATE_PROMOTE_MAX_AGE", help="gate promote --max-age"),
    Key("promote.gitops_repo", "string", help="gate promote --gitops-repo"),
    Key("promote.gitops_branch", "string", help="gate promote --gitops-branch"),
    Key("attestation.verifier_id", "string", "GATE_VSA_VERIFIER_ID",
        help="the verifier id (a URI) in the VSAs gate promote attaches, and the one gate attestation verify "
        "requires (default https://github.com/promotion-gate/gate)"),
    Key("environments.ENV.gitops_path", "string",
        help="gate promote --gitops-path when --env ENV is given (checked against gate-environments.yaml)"),
    Key("notify.webhooks", "list of strings",
        help="URLs that get a CloudEvents 1.0 JSON event per notification; env:NAME reads one from a variable"),
    Key("notify.slack", "list of strings",
        help="Slack-compatible webhook URLs (a secret: give env:NAME); they get {\"text\": ...}"),
    Key("notify.on", "list of strings",
        help="the kinds notified (default all): decision.denied, decision.error, promotion.done, "
        "promotion.refused, reconcile.blocked, waiver.expiring"),
)
_BY_NAME = {key.name: key for key in KEYS}
_BY_VARIABLE = {key.variable: key for key in KEYS if key.variable}
_TABLES = ("promote", "environments", "notify", "attestation")
#: keys people may try that the file refuses on purpose, with the reason
_REFUSED = {
    "bindings": "GitOps path bindings live in gate-environments.yaml in the GitOps repository, not here",
    "paths": "GitOps path bindings live in gate-environments.yaml in the GitOps repository, not here",
    "signing_key_pem": "give signing_key as a path: the key itself never goes into a configuration file",
    "tool": "[tool.gate] is read from a file named pyproject.toml; in any other file write its keys at the top level",
}
#: a policy spec or store URL with a scheme (oci://, gate:library, postgresql://) is not a path
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Settings:
    """The configuration file's values (already validated), and where they came from."""

    #: the file read; None when there is none
    path: Path | None = None
    #: "gate.toml" or "[tool.gate] in pyproject.toml"; how it was found ("--config", "GATE_CONFIG", "search")
    found_by: str = ""
    #: policy layers (paths absolute); () = not set
    policy: tuple[str, ...] = ()
    #: data files (paths absolute); () = not set
    data: tuple[str, ...] = ()
    #: every set key by dotted name (lists as tuples), paths resolved
    values: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)

    def value(self, name: str) -> str | tuple[str, ...] | None:
        """The file's value of the dotted key ``name``; None when the file does not set it."""
        return self.values.get(name)

    def env(self, name: str) -> str | None:
        """The environment variable ``name`` if it is set (even empty), else the file's value for it.

        A list (``trusted_keys``) comes joined with ``os.pathsep``, as the variable is written.
        """
        if name in os.environ:
            return os.environ[name]
        key = _BY_VARIABLE.get(name)
        value = self.values.get(key.name) if key is not None else None
        if isinstance(value, tuple):
            return os.pathsep.join(value)
        return value

    def source(self, name: str) -> str:
        """Where ``env(name)`` comes from, for messages: ``GATE_X``, ``signing_key in /x/gate.toml`` or ``default``."""
        if name in os.environ:
            return name
        key = _BY_VARIABLE.get(name)
        if key is not None and key.name in self.values:
            return f"{key.name} in {self.path}"
        return "default"

    def flag(self, variable: str) -> bool:
        """A boolean setting: the environment variable ``variable`` (1/true/yes/on, 0/false/no/off or
        empty), else the file's value; False when neither sets it. Anything else is a UsageError."""
        value = self.env(variable)
        if value is None:
            return False
        word = value.strip().lower()
        if word in ("1", "true", "yes", "on"):
            return True
        if word in ("0", "false", "no", "off", ""):
            return False
        raise UsageError(f"{self.source(variable)}: {value!r} is not a boolean (true or false)")

    def string(self, name: str) -> str | None:
        """The file's value of a string key (``promote.gitops_repo``)."""
        value = self.values.get(name)
        return value if isinstance(value, str) else None

    def gitops_path(self, environment: str) -> str | None:
        """``[environments.ENV] gitops_path``: the default ``--gitops-path`` of ``gate promote --env ENV``."""
        return self.string(f"environments.{environment}.gitops_path")

    def described(self) -> str:
        """One line: which file was read, or that none was."""
        if self.path is None:
            return f"none (no {FILE_NAME} or [tool.gate] in {PYPROJECT} found)"
        where = f"[tool.gate] in {self.path}" if self.path.name == PYPROJECT else str(self.path)
        return f"{where} (found by {self.found_by})"


_DEFAULT = Settings()
_current: Settings | None = None


def current() -> Settings:
    """The settings of this ``gate`` call (the CLI sets them); empty settings outside a call."""
    return _current if _current is not None else _DEFAULT


def use(settings: Settings | None) -> None:
    """Make ``settings`` current (None: back to empty). A module global, not a context variable:
    the server's worker threads must see what ``main()`` loaded."""
    global _current
    _current = settings


def load(config: str | None = None, cwd: Path | None = None) -> Settings:
    """The settings from ``config`` (``--config``), else ``GATE_CONFIG``, else the file found from ``cwd``."""
    if config is not None:
        return _read(_named(config, "--config", cwd), "--config")
    named = os.environ.get(CONFIG_ENV)
    if named is not None:
        return _read(_named(named, CONFIG_ENV, cwd), CONFIG_ENV)
    try:
        start = cwd or Path.cwd()
    except OSError as e:  # the current folder was deleted under us
        raise UsageError(f"cannot search for {FILE_NAME}: the current folder: {e.strerror or e}") from None
    found = find(start)
    return _read(found, "search") if found is not None else Settings()


def find(start: Path) -> Path | None:
    """The nearest ``gate.toml``, or ``pyproject.toml`` with a ``[tool.gate]`` table, from ``start`` up.

    Stops after the first folder holding ``.git`` (a repository's settings do not leak in from
    the folders around it) or at the filesystem root.
    """
    for folder in (start, *start.parents):
        candidate = folder / FILE_NAME
        if candidate.is_file():
            return candidate
        pyproject = folder / PYPROJECT
        if pyproject.is_file() and _tool_gate(_parse(pyproject)) is not None:
            return pyproject
        if (folder / ".git").exists():
            return None
    return None


def _named(value: str, what: str, cwd: Path | None) -> Path:
    if not value.strip():
        raise UsageError(f"{what} is empty: name a {FILE_NAME} or pyproject.toml (or leave it unset to search for one)")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    if not path.is_file():
        problem = "is a folder, not a file" if path.is_dir() else "no such file"
        raise UsageError(f"{what} {value}: {problem}")
    return path


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise UsageError(f"{path}: cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_BYTES:
        raise UsageError(f"{path}: larger than {MAX_BYTES // 1024} KiB; a configuration file is a few lines")
    import tomllib  # only when there is a file to read

    try:
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:  # its message ends "(at line L, column C)"
        raise UsageError(f"{path}: invalid TOML: {e}") from None


def _tool_gate(document: Mapping[str, Any]) -> Any:
    tool = document.get("tool")
    return tool.get("gate") if isinstance(tool, Mapping) else None


def _read(path: Path, found_by: str) -> Settings:
    document: Mapping[str, Any] = _parse(path)
    where = str(path)
    if path.name == PYPROJECT:
        table = _tool_gate(document)
        if table is None:
            raise UsageError(f"{path}: has no [tool.gate] table")
        if not isinstance(table, Mapping):
            raise UsageError(f"{path}: tool.gate must be a table")
        document, where = table, f"{path} [tool.gate]"
    values = _validate(document, where, path.parent.resolve())
    policy, data = values.get("policy", ()), values.get("data", ())
    return Settings(
        path=path.resolve(), found_by=found_by,
        policy=policy if isinstance(policy, tuple) else (), data=data if isinstance(data, tuple) else (),
        values=values,
    )


def _validate(document: Mapping[str, Any], where: str, base: Path) -> dict[str, str | tuple[str, ...]]:
    values: dict[str, str | tuple[str, ...]] = {}
    for name, value in document.items():
        if name in _TABLES:
            if not isinstance(value, Mapping):
                raise UsageError(f"{where}: {name} must be a table ([{name}]), not {_type(value)}")
            if name == "environments":
                for environment, table in value.items():
                    _environment(environment, table, where, base, values)
            else:
                for inner, item in value.items():
                    _set(f"{name}.{inner}", item, where, base, values)
        else:
            _set(name, value, where, base, values)
    return values


def _environment(name: str, table: Any, where: str, base: Path, values: dict[str, str | tuple[str, ...]]) -> None:
    from gate.environments import NAME as ENVIRONMENT_NAME

    if not ENVIRONMENT_NAME.match(name):
        raise UsageError(f"{where}: environments.{name}: an environment name is lowercase letters, digits, '-', '_', '.'")
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: environments.{name} must be a table ([environments.{name}]), not {_type(table)}")
    for inner, item in table.items():
        _set(f"environments.{name}.{inner}", item, where, base, values, f"environments.ENV.{inner}")


def _set(
    name: str, value: Any, where: str, base: Path, values: dict[str, str | tuple[str, ...]], generic: str | None = None,
) -> None:
    key = _BY_NAME.get(generic or name)
    if key is None:
        last = name.rsplit(".", 1)[-1]
        if last in _REFUSED:
            raise UsageError(f"{where}: {name}: {_REFUSED[last]}")
        known = [k.name for k in KEYS if k.name.count(".") == (generic or name).count(".")]
        close = closest_spelling(generic or name, known)
        hint = f" (did you mean {close.replace('ENV', name.split('.')[1]) if generic else close}?)" if close else ""
        raise UsageError(f"{where}: unknown key {name}{hint}; known keys: {', '.join(k.name for k in KEYS)}")
    if key.kind == "boolean":
        if not isinstance(value, bool):
            raise UsageError(f"{where}: {name} must be true or false, not {_type(value)}")
        values[name] = "true" if value else "false"
        return
    if key.kind == "string":
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{where}: {name} must be a non-empty string, not {_type(value)}")
        values[name] = _resolve(value, base) if key.paths else value
        return
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item.strip() for item in value):
        raise UsageError(f"{where}: {name} must be a list of non-empty strings, not {_type(value)}")
    values[name] = tuple(_resolve(item, base) if key.paths else item for item in value)


def _resolve(value: str, base: Path) -> str:
    """A relative path as seen from the file's folder; a value with a scheme (oci://, gate:library,
    postgresql://, sqlite:///abs) unchanged, except sqlite://RELATIVE, resolved likewise."""
    if value.startswith("sqlite://") and not value.startswith("sqlite:///"):
        return "sqlite://" + str(base / Path(value.removeprefix("sqlite://")).expanduser())
    if _SCHEME.match(value):
        return value
    return str(base / Path(value).expanduser())


def _type(value: Any) -> str:
    names = {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    if isinstance(value, str) and not value.strip():
        return "an empty string"
    if isinstance(value, list):
        return "a list holding something other than non-empty strings" if value else "an empty list"
    return names.get(type(value), type(value).__name__)
