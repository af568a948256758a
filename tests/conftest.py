"""Shared fixtures: the test data folder, an in-process CLI runner, and schema validation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SCHEMAS = ROOT / "schemas"
DIGEST = "sha256:" + "ab" * 32


@dataclass
class Run:
    """What one ``gate`` invocation did."""

    code: int
    out: str
    err: str

    def json(self) -> Any:
        """stdout parsed as exactly one JSON document."""
        return json.loads(self.out)


@pytest.fixture(autouse=True)
def decision_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own decision log, never the user's."""
    path = tmp_path_factory.mktemp("log") / "decisions.db"
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    return path


@pytest.fixture
def data() -> Path:
    """tests/data, where the real reports (and their SOURCES.md) live."""
    return DATA


@pytest.fixture
def gate(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Run]:
    """Run ``gate`` in-process with ``main([...])`` and capture its exit code, stdout and stderr."""
    from gate.cli import main

    # CI variables of the machine running the tests must not leak into documents under test.
    for var in ("GITHUB_SHA", "GITHUB_RUN_ID", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_URL", "CI_PIPELINE_URL"):
        monkeypatch.delenv(var, raising=False)

    def run(*argv: str) -> Run:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def validate_input() -> Callable[[Any], None]:
    """Validate a document against schemas/input.schema.json (with the finding schema it refers to)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = {name: json.loads((SCHEMAS / f"{name}.schema.json").read_text()) for name in ("finding", "input")}
    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in schemas.values()
    )
    for schema in schemas.values():
        Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schemas["input"], registry=registry)

    def validate(document: Any) -> None:
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])

    return validate
