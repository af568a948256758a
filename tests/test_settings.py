"""gate.toml / [tool.gate]: found from the current folder up to the repository root, validated strictly,
overridden by environment variables and flags, shown with secrets redacted by `gate config show`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from gate import settings
from tests.conftest import DIGEST, Run

IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
#: allowed in prod by the shipped library (coverage above 80%, no critical or high finding)
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def evaluate(gate: Callable[..., Run], data: Path, *extra: str) -> Run:
    reports = [a for name in CLEAN for a in ("--report", f"auto={data / name}")]
    return gate("evaluate", *reports, "--image", REF, "--env", "prod", "--format", "json", *extra)


def recorded(store: Path) -> list[str]:
    """The decision ids in a SQLite log (read directly: what gate wrote, not what gate says)."""
    with sqlite3.connect(store) as db:
        return [row[0] for row in db.execute("SELECT decision_id FROM decisions")]


def project(tmp_path: Path, toml: str, name: str = "gate.toml") -> Path:
    """A project folder (a git repository) holding the configuration file and a strict-coverage data file."""
    root = tmp_path / "project"
    (root / ".git").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "config" / "strict.json").write_text(json.dumps({"thresholds": {"prod": {"min_line_coverage": 0.999}}}))
    (root / name).write_text(toml)
    return root


# --- finding the file -------------------------------------------------------------------------------


def test_gate_toml_in_a_parent_folder_is_found_and_paths_are_relative_to_it(tmp_path: Path) -> None:
    root = project(tmp_path, 'policy = ["gate:library", "org", "oci://reg.example.com/p:1"]\ndata = ["config/strict.json"]\n')
    deep = root / "services" / "cart"
    deep.mkdir(parents=True)
    found = settings.load(cwd=deep)
    assert found.path == root / "gate.toml" and found.found_by == "search"
    assert found.policy == ("gate:library", str(root / "org"), "oci://reg.example.com/p:1")
    assert found.data == (str(root / "config" / "strict.json"),)


def test_the_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    (tmp_path / "gate.toml").write_text('data = ["outside.json"]\n')  # above the repository: not its settings
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "sub").mkdir()
    assert settings.load(cwd=repo / "sub") == settings.Settings()
    assert settings.load(cwd=tmp_path).path == tmp_path / "gate.toml"


def test_tool_gate_in_pyproject_is_read_and_a_pyproject_without_it_is_skipped(tmp_path: Path) -> None:
    root = project(tmp_path, '[project]\nname = "cart"\n\n[tool.gate]\ndata = ["config/strict.json"]\n', "pyproject.toml")
    (root / "svc").mkdir()
    (root / "svc" / "pyproject.toml").write_text('[project]\nname = "svc"\n')  # no [tool.gate]: keep looking
    found = settings.load(cwd=root / "svc")
    assert found.path == root / "pyproject.toml"
    assert found.data == (str(root / "config" / "strict.json"),)
    (root / "gate.toml").write_text('data = ["other.json"]\n')  # in one folder, gate.toml wins
    assert settings.load(cwd=root / "svc").data == (str(root / "other.json"),)


def test_an_environment_variable_beats_the_file_and_lists_come_as_the_variable_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATE_TRUSTED_KEYS", raising=False)
    monkeypatch.delenv("GATE_DECISION_STORE", raising=False)
    root = project(tmp_path, 'decision_store = "log/d.db"\ntrusted_keys = ["keys/a.pem", "/etc/gate/b.pem"]\n')
    found = settings.load(cwd=root)
    assert found.env("GATE_DECISION_STORE") == str(root / "log" / "d.db")
    assert found.source("GATE_DECISION_STORE") == f"decision_store in {root / 'gate.toml'}"
    assert found.env("GATE_TRUSTED_KEYS") == f"{root / 'keys' / 'a.pem'}:/etc/gate/b.pem"
    monkeypatch.setenv("GATE_DECISION_STORE", "postgresql://db.example.com/gate")
    assert found.env("GATE_DECISION_STORE") == "postgresql://db.example.com/gate"
    assert found.source("GATE_DECISION_STORE") == "GATE_DECISION_STORE"


# --- the CLI, end to end -------------------------------------------------------------------------


def test_evaluate_follows_the_files_data_and_records_in_its_store(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    baseline = evaluate(gate, data)
    assert baseline.code == 0, baseline.err  # the shipped library alone allows it
    root = project(tmp_path, 'data = ["config/strict.json"]\ndecision_store = "log/decisions.db"\n')
    monkeypatch.delenv("GATE_DECISION_STORE")
    monkeypatch.chdir(root)
    run = evaluate(gate, data)
    assert run.code == 1, run.err
    decision = run.json()
    assert decision["outcome"] == "deny"
    assert any(v["rule"].startswith("coverage") for v in decision["violations"]), decision["violations"]
    assert recorded(root / "log" / "decisions.db") == [decision["decision_id"]]


def test_a_flag_beats_the_file(gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, 'data = ["config/strict.json"]\n')
    lenient = tmp_path / "lenient.json"
    lenient.write_text(json.dumps({"thresholds": {"prod": {"min_line_coverage": 0.5}}}))
    monkeypatch.chdir(root)
    assert evaluate(gate, data).code == 1
    run = evaluate(gate, data, "--data", str(lenient))
    assert run.code == 0, run.err


def test_an_environment_variable_beats_the_file_store(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, decision_store: Path
) -> None:
    root = project(tmp_path, 'decision_store = "log/decisions.db"\n')
    monkeypatch.chdir(root)  # GATE_DECISION_STORE (the conftest's log) stays set
    run = evaluate(gate, data)
    assert run.code == 0, run.err
    assert recorded(decision_store) == [run.json()["decision_id"]]
    assert not (root / "log").exists()


def test_tool_gate_in_pyproject_works_end_to_end(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, '[tool.gate]\ndata = ["config/strict.json"]\n', "pyproject.toml")
    monkeypatch.chdir(root)
    assert evaluate(gate, data).code == 1


def test_config_flag_and_gate_config_name_the_file(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, 'data = ["config/strict.json"]\n', "ci.toml")
    assert evaluate(gate, data).code == 0  # not found by the search: its name is not gate.toml
    assert gate("--config", root / "ci.toml", *evaluate_args(data)).code == 1
    monkeypatch.setenv("GATE_CONFIG", str(root / "ci.toml"))
    assert evaluate(gate, data).code == 1


def evaluate_args(data: Path) -> list[str]:
    reports = [a for name in CLEAN for a in ("--report", f"auto={data / name}")]
    return ["evaluate", *reports, "--image", REF, "--env", "prod", "--format", "json"]


@pytest.mark.parametrize("how", ["flag", "variable"])
def test_a_named_file_that_is_missing_is_exit_2(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    missing = tmp_path / "nope.toml"
    if how == "flag":
        run = gate("--config", missing, *evaluate_args(data))
    else:
        monkeypatch.setenv("GATE_CONFIG", str(missing))
        run = gate(*evaluate_args(data))
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and f"{missing}: no such file" in run.err


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('polcy = ["gate:library"]\n', "unknown key polcy (did you mean policy?)"),
        ('[promote]\nmax_aeg = "3d"\n', "unknown key promote.max_aeg (did you mean promote.max_age?)"),
        ('[environments.prod]\ngitops_pth = "a"\n', "did you mean environments.prod.gitops_path?"),
        ('policy = "gate:library"\n', "policy must be a list of non-empty strings, not a string"),
        ("decision_store = 5\n", "decision_store must be a non-empty string, not a number"),
        ('data = ["a.json"\nsigning_key = "k.pem"\n', "invalid TOML: "),
        ('[environments.prod]\nbindings = "apps"\n', "gate-environments.yaml in the GitOps repository"),
        ('vex_require_signed = "yes"\n', "vex_require_signed must be true or false, not a string"),
        ('vex = "cart.openvex.json"\n', "vex must be a list of non-empty strings, not a string"),
    ],
)
def test_a_bad_file_is_exit_2_with_one_line_naming_it(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, expected: str
) -> None:
    root = project(tmp_path, toml)
    monkeypatch.chdir(root)
    run = evaluate(gate, data)
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and run.err.startswith(f"gate: error: {root / 'gate.toml'}: "), run.err
    assert expected in run.err
    if expected.startswith("invalid TOML"):
        assert "line 2" in run.err


def test_settings_do_not_leak_from_one_call_to_the_next(
    gate: Callable[..., Run], data: Path, tmp_path: Path
) -> None:
    root = project(tmp_path, 'data = ["config/strict.json"]\n', "ci.toml")
    assert gate("--config", root / "ci.toml", *evaluate_args(data)).code == 1
    assert settings.current() == settings.Settings()
    assert evaluate(gate, data).code == 0


def test_config_show_names_the_file_and_sources_and_redacts_secrets(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(
        tmp_path,
        'decision_store = "postgresql://gate:Hunter2-db-pw@db.example.com:5432/gate"\n'
        'trusted_keys = ["keys"]\n[promote]\nmax_age = "3d"\n',
    )
    monkeypatch.chdir(root)
    monkeypatch.delenv("GATE_DECISION_STORE")
    monkeypatch.setenv("GATE_OPA_TOKEN", "opa-Token-s3cret")
    monkeypatch.setenv("GATE_PROMOTE_MAX_AGE", "2d")
    run = gate("config", "show")
    assert run.code == 0, run.err
    assert "Hunter2-db-pw" not in run.out and "opa-Token-s3cret" not in run.out
    assert f"configuration file: {root / 'gate.toml'}" in run.out
    lines = {line.split()[0]: line for line in run.out.splitlines()[2:]}
    assert "postgresql://db.example.com:5432/gate" in lines["decision_store"]
    assert f"(file {root / 'gate.toml'})" in lines["decision_store"]
    assert "2d" in lines["promote.max_age"] and "(environment GATE_PROMOTE_MAX_AGE)" in lines["promote.max_age"]
    assert "(default)" in lines["policy"] and "gate:library" in lines["policy"]
    assert "***" in lines["GATE_OPA_TOKEN"]

    shown = gate("config", "show", "--format", "json")
    assert shown.code == 0 and "Hunter2-db-pw" not in shown.out and "opa-Token-s3cret" not in shown.out
    document = shown.json()
    assert document["file"] == str(root / "gate.toml")
    rows = {row["name"]: row for row in document["settings"]}
    assert rows["trusted_keys"] == {
        "name": "trusted_keys", "value": [str(root / "keys")], "source": "file", "where": str(root / "gate.toml"),
        "variable": "GATE_TRUSTED_KEYS",
    }
    assert rows["GATE_SERVE_TOKEN"]["source"] == "default"


def test_config_show_says_when_no_file_was_read(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".git").mkdir()
    monkeypatch.chdir(tmp_path)
    run = gate("config", "show", "--format", "json")
    assert run.code == 0 and run.json()["file"] is None
    text = gate("config", "show")
    assert text.out.startswith("configuration file: none (no gate.toml or [tool.gate] in pyproject.toml found)")


def test_the_files_signing_key_signs_and_its_trusted_keys_verify(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate.decisions.signing import generate_keypair, key_id, load_public_key

    root = project(tmp_path, 'signing_key = "keys/gate-signing.pem"\ntrusted_keys = ["keys/gate-signing.pub.pem"]\n')
    _, public = generate_keypair(root / "keys")
    other = generate_keypair(tmp_path / "other")[1]
    monkeypatch.delenv("GATE_SIGNING_KEY")
    monkeypatch.chdir(root)
    run = evaluate(gate, data)
    assert run.code == 0, run.err
    assert run.json()["signing_key"] == key_id(load_public_key(public))
    assert gate("decisions", "verify").code == 0
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(other))  # the variable beats the file: now nothing it signed is trusted
    untrusted = gate("decisions", "verify")
    assert untrusted.code == 1 and "not a trusted key" in untrusted.out + untrusted.err


def test_a_misspelled_store_scheme_in_the_file_is_exit_2_naming_the_key_and_never_the_password(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, 'decision_store = "postgress://gate:Hunter2-db-pw@db.example.com/gate"\n')
    monkeypatch.delenv("GATE_DECISION_STORE")
    monkeypatch.chdir(root)
    run = evaluate(gate, data)
    assert run.code == 2 and run.err.count("\n") == 1
    assert f"decision_store in {root / 'gate.toml'}: unsupported scheme 'postgress'" in run.err
    assert "Hunter2" not in run.err and not list(root.glob("postgress*"))


def test_the_documented_example_is_valid_and_every_key_is_documented(tmp_path: Path) -> None:
    import re

    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "configuration.md").read_text()
    example = re.search(r"```toml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    (tmp_path / ".git").mkdir()
    (tmp_path / "gate.toml").write_text(example.group(1))
    loaded = settings.load(cwd=tmp_path)
    assert loaded.policy[0] == "gate:library" and loaded.policy[1] == str(tmp_path / "policies" / "org")
    assert loaded.gitops_path("prod") == "apps/cart/overlays/prod/kustomization.yaml"
    for key in settings.KEYS:
        assert f"`{key.name}" in doc, key.name


@pytest.mark.parametrize(
    ("toml", "variable", "expected"),
    [
        ("", None, False),
        ("vex_require_signed = true\n", None, True),
        ("vex_require_signed = false\n", None, False),
        ("vex_require_signed = true\n", "0", False),  # the variable wins over the file
        ("", "yes", True),
        ("", "", False),
    ],
)
def test_boolean_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, variable: str | None, expected: bool) -> None:
    root = project(tmp_path, toml)
    if variable is None:
        monkeypatch.delenv("GATE_VEX_REQUIRE_SIGNED", raising=False)
    else:
        monkeypatch.setenv("GATE_VEX_REQUIRE_SIGNED", variable)
    assert settings.load(cwd=root).flag("GATE_VEX_REQUIRE_SIGNED") is expected
