"""Shared fixtures: the test data folder, an in-process CLI runner, and schema validation."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator
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
    """Every test gets its own decision log, never the user's: an empty one, as ``gate`` makes it, since
    the stages that judge by the log (promote, reconcile, the webhook) refuse a missing one."""
    from gate.decisions.store import open_store

    path = tmp_path_factory.mktemp("log") / "decisions.db"
    open_store(str(path)).close()
    monkeypatch.setenv("GATE_DECISION_STORE", str(path))
    return path


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One Ed25519 key pair for the session: (gate-signing.pem, gate-signing.pub.pem)."""
    from gate.decisions.signing import generate_keypair

    return generate_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(autouse=True)
def signing_env(
    signing_key: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test signs with the session key and trusts only it; no test touches the user's state folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))
    monkeypatch.setenv("GATE_SIGNING_KEY", str(signing_key[0]))
    monkeypatch.delenv("GATE_TRUSTED_KEYS", raising=False)


@pytest.fixture(autouse=True)
def log_evidence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconcile and the webhook judge by the decision log alone (``--evidence log``, the behaviour before
    VSAs) unless a test says otherwise: most tests deploy images that have no registry, hence no VSA.
    The tests of VSA evidence and of the default (tests/reconcile/test_evidence*.py) unset or override it."""
    monkeypatch.setenv("GATE_EVIDENCE", "log")
    monkeypatch.delenv("GATE_VSA_MAX_AGE", raising=False)


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test machine's GATE_CONFIG never names the configuration file (gate.settings) of a test."""
    monkeypatch.delenv("GATE_CONFIG", raising=False)


@pytest.fixture(autouse=True)
def user_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache folder (gate.policy.cache), never the user's."""
    path = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A throwaway PostgreSQL 15 cluster for the whole session (tests/pg.py); yields its base URL
    ``postgresql://postgres@127.0.0.1:PORT`` (trust auth). Stopped at session end, also on failure.
    If it cannot start, every test that needs it fails with initdb's or the server's reason: never a skip."""
    from tests.pg import start_cluster, stop_cluster

    cluster = start_cluster()
    try:
        yield cluster.url("").rstrip("/")
    finally:
        stop_cluster(cluster)


@pytest.fixture
def pg_store_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on ``pg_server`` for this test: ``postgresql://postgres@127.0.0.1:PORT/t_<hex>``
    (dropped afterwards). Open it with ``open_store(url)`` or set GATE_DECISION_STORE to it."""
    from tests.pg import create_database, drop_database

    url = create_database(pg_server)
    yield url
    drop_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty decision log on each store in turn: ``sqlite:///<tmp_path>/decisions.db``, then a fresh
    PostgreSQL database (``pg_store_url``; the cluster starts only when a postgres case runs).
    Also sets GATE_DECISION_STORE to it, so the ``gate`` fixture's commands use this log.

    Use it to run every decision-log test (evaluate, decisions list/show/verify/export/replay/stats)
    on both stores: a test that takes ``store_url`` runs twice, ids ``[sqlite]`` and ``[postgres]``."""
    if request.param == "sqlite":
        url = f"sqlite://{tmp_path / 'decisions.db'}"
    else:
        url = request.getfixturevalue("pg_store_url")
    monkeypatch.setenv("GATE_DECISION_STORE", url)
    return url


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
        # Free the run's policy engines here: regorus engines must be dropped on the thread that made
        # them, and a later collection could run on a server thread of another fixture.
        gc.collect()
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
