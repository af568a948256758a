"""``gate config show``: the effective value of every setting and where it came from, secrets redacted."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gate.commands.common import ExitCode, emit

if TYPE_CHECKING:
    from gate import settings

#: settings only environment variables give (gate.toml never holds them): name -> (default, secret)
_ENVIRONMENT_ONLY: tuple[tuple[str, str, bool], ...] = (
    ("GATE_OPA_TOKEN", "none", True),
    ("GATE_SERVE_TOKEN", "none (the server asks for no token)", True),
    ("GATE_EXPORT_AUTHORIZATION", "none", True),
    ("GATE_LOGLEVEL", "WARNING", False),
    ("GATE_DISABLE_PLUGINS", "none", False),
    ("GATE_MAX_REPORT_MB", "", False),
    ("GATE_POLICY_TIMEOUT", "", False),
    ("GATE_CONTEXT_COMMIT", "from the CI's variables", False),
    ("GATE_CONTEXT_PIPELINE_URL", "from the CI's variables", False),
    ("GATE_CONTEXT_ACTOR", "from the CI's variables", False),
)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate config show``."""
    config = commands.add_parser(
        "config", help="the configuration file (gate.toml or [tool.gate] in pyproject.toml)",
        description="gate.toml (or [tool.gate] in pyproject.toml) holds the defaults repeated on every call; "
        "see docs/configuration.md. Precedence: flag > environment variable > file > default.",
    )
    sub = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    show = sub.add_parser(
        "show",
        help="print the effective value of every setting and where it came from (secrets redacted)",
        description="Print which configuration file was read (or that none was) and, for every setting, its "
        "effective value and source: environment (the variable), file (its path) or default. Flags are per "
        "command and override all of these. Passwords and tokens are never printed.",
    )
    show.add_argument("--format", choices=["text", "json"], default="text")


@dataclass(frozen=True)
class Row:
    """One setting as shown."""

    name: str
    value: str | list[str] | None
    #: "environment", "file" or "default"
    source: str
    #: the variable or file it came from ("" for a default)
    where: str = ""
    variable: str | None = None


def cmd_config_show(args: argparse.Namespace) -> ExitCode:
    from gate import settings

    rows = effective_settings(settings.current())
    configured = settings.current()
    if args.format == "json":
        document = {
            "file": str(configured.path) if configured.path else None,
            "found_by": configured.found_by or None,
            "settings": [
                {k: v for k, v in vars(row).items() if k in ("name", "value", "source") or v} for row in rows
            ],
        }
        emit(json.dumps(document, indent=2) + "\n", None)
        return ExitCode.OK
    width = max(len(row.name) for row in rows)
    lines = [f"configuration file: {configured.described()}", ""]
    for row in rows:
        value = ", ".join(row.value) if isinstance(row.value, list) else (row.value if row.value is not None else "none")
        origin = f"{row.source} {row.where}".rstrip()
        lines.append(f"{row.name.ljust(width)}  {value}  ({origin})")
    emit("\n".join(lines) + "\n", None)
    return ExitCode.OK


def effective_settings(configured: settings.Settings) -> list[Row]:
    """Every setting: its value (redacted) and where it comes from, in the order docs/configuration.md gives."""
    from gate import settings

    from gate.attestation.vsa import DEFAULT_VERIFIER_ID
    from gate.decisions.signing import local_key_path
    from gate.decisions.store import default_store_path
    from gate.policy.embedded import DEFAULT_TIMEOUT
    from gate.promote.preconditions import DEFAULT_MAX_AGE
    from gate.reconcile.evidence import DEFAULT_VSA_MAX_AGE_TEXT
    from gate.scanning.report import DEFAULT_MAX_REPORT_MB

    defaults: dict[str, str | None] = {
        "policy": "gate:library (the library installed with gate)",
        "data": None,
        "vex": None,
        "vex_require_signed": "false",
        "decision_store": str(default_store_path()),
        "trusted_keys": "only this machine's signing key",
        "signing_key": f"{local_key_path()} (created on first use)",
        "evidence": "both when a decision log is configured or exists, else vsa",
        "vsa_max_age": DEFAULT_VSA_MAX_AGE_TEXT,
        "promote.max_age": DEFAULT_MAX_AGE,
        "promote.gitops_repo": None,
        "promote.gitops_branch": "main",
        "attestation.verifier_id": DEFAULT_VERIFIER_ID,
        "notify.webhooks": None,
        "notify.slack": None,
        "notify.on": "every kind",
    }
    file = str(configured.path)
    rows: list[Row] = []
    for key in settings.KEYS:
        if key.name.startswith("environments."):
            continue
        if key.variable and key.variable in os.environ:
            rows.append(Row(key.name, _shown(os.environ[key.variable], key.kind), "environment", key.variable, key.variable))
            continue
        value = configured.value(key.name)
        if value is not None and key.name in ("notify.webhooks", "notify.slack"):
            rows.append(Row(key.name, _shown_targets(value), "file", file, key.variable))
        elif value is not None:
            rows.append(Row(key.name, _shown(value, key.kind), "file", file, key.variable))
        else:
            rows.append(Row(key.name, defaults[key.name], "default", "", key.variable))
    for name, value in sorted(configured.values.items()):
        if name.startswith("environments."):
            rows.append(Row(name, _shown(value, "string"), "file", file))
    runtime_defaults = {"GATE_MAX_REPORT_MB": str(DEFAULT_MAX_REPORT_MB), "GATE_POLICY_TIMEOUT": f"{DEFAULT_TIMEOUT:g}"}
    for variable, default, secret in _ENVIRONMENT_ONLY:
        if variable in os.environ:
            shown: str | list[str] = _MASK_SET if secret else _shown(os.environ[variable], "string")
            rows.append(Row(variable, shown, "environment", variable, variable))
        else:
            rows.append(Row(variable, runtime_defaults.get(variable, default), "default", "", variable))
    return rows


_MASK_SET = "*** (set; never shown)"


def _shown_targets(value: Any) -> list[str]:
    """Notification URLs as scheme and host only: a webhook's path or query is often its secret."""
    from gate.notify import ENV_PREFIX, Target

    items = (value,) if isinstance(value, str) else tuple(value)
    return [item if item.startswith(ENV_PREFIX) else Target(item, "cloudevents").shown for item in items]


def _shown(value: Any, kind: str) -> str | list[str]:
    """A value as it may be printed: a store URL's password and any token shape removed."""
    from gate.redact import redact_url

    if isinstance(value, tuple):
        return [redact_url(item) for item in value]
    if kind == "list of strings" and isinstance(value, str):  # GATE_TRUSTED_KEYS: one string, os.pathsep-separated
        return [redact_url(item) for item in value.split(os.pathsep) if item]
    return redact_url(str(value))
