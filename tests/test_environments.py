"""gate.environments: declared environments from the policy data, and the GitOps path binding file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gate.environments import (
    BINDING_FILE,
    declared_environments,
    parse_bindings,
    read_bindings,
    require_environment,
)
from gate.errors import GateError, PolicyError, UsageError
from gate.policy.bundle import load_bundle, merge_data
from tests.conftest import ROOT

SHIPPED = load_bundle(ROOT / "policies").data


def test_the_shipped_library_declares_dev_staging_and_prod() -> None:
    environments = declared_environments(SHIPPED)
    assert environments.names == ["dev", "prod", "staging"]
    assert environments.declared["staging"].inherits == "dev"
    assert environments.declared["prod"].inherits is None
    assert "default" not in environments.declared  # no implicit fallback for undeclared names


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("prd", "prod"), ("Prod", "prod"), ("prod ", "prod"), ("PROD", "prod"), ("\u0440rod", "prod"),
     ("stagin", "staging"), ("Dev", "dev"), ("", None), ("prod/../dev", None), ("qa", None)],
)
def test_an_undeclared_name_is_refused_with_the_closest_match(name: str, suggestion: str | None) -> None:
    with pytest.raises(UsageError) as caught:
        require_environment(name, SHIPPED)
    message = caught.value.diagnostics()
    assert message.startswith(f"environment {json.dumps(name)} is not declared in the policy data; declared: dev, prod, staging")
    if suggestion is None:
        assert "did you mean" not in message
    else:
        assert message.endswith(f'(did you mean "{suggestion}"?)')


def test_data_declares_more_and_may_redeclare() -> None:
    data = merge_data(SHIPPED, {"environments": {"qa": {"inherits": "staging"}, "staging": {"inherits": "prod"}}})
    environments = declared_environments(data)
    assert environments.declared["staging"].inherits == "prod"
    assert require_environment("qa", data).inherits == "staging"


@pytest.mark.parametrize(
    ("declared", "problem"),
    [
        ({"qa": {"inherits": "nowhere"}}, 'environment qa inherits "nowhere", which is not declared'),
        ({"a": {"inherits": "b"}, "b": {"inherits": "a"}}, "inherits from itself"),
        ({"qa": {"inherit": "dev"}}, "environment qa: unknown key inherit"),
        ({"qa": "dev"}, "environment qa: its declaration must be a mapping"),
        ({"QA": {}}, 'environment name "QA" in the policy data'),
        ({"qa": {"inherits": 3}}, "inherits must name an environment"),
        (["qa"], "data.environments must map environment names to declarations, not be a list"),
    ],
)
def test_malformed_declarations_are_errors(declared: Any, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        declared_environments(merge_data(SHIPPED, {"environments": declared}))
    assert problem in caught.value.diagnostics()


def test_no_declaration_at_all_is_an_error() -> None:
    with pytest.raises(PolicyError, match="declares no environment"):
        declared_environments({"thresholds": {}})


# --- the binding file ---------------------------------------------------------------------------

BINDINGS = "paths:\n  clusters/prod: prod\n  clusters/prod/canary: staging\n  clusters: dev\n"


@pytest.mark.parametrize(
    ("path", "environment"),
    [("clusters/prod", "prod"), ("clusters/prod/", "prod"), ("./clusters/prod/apps/k.yaml", "prod"),
     ("clusters/prod/canary/k.yaml", "staging"), ("clusters/prod-eu/k.yaml", "dev"), ("clusters", "dev"),
     ("apps/cart", None), (".", None)],
)
def test_the_longest_bound_prefix_wins(path: str, environment: str | None) -> None:
    assert parse_bindings(BINDINGS).environment_for(path) == environment


def test_the_root_binds_everything_below_it() -> None:
    bindings = parse_bindings("paths:\n  .: dev\n  clusters/prod: prod\n")
    assert bindings.environment_for("apps/x.yaml") == "dev"
    assert bindings.disagreement("apps", "dev") is None
    # a folder synced as a whole must not hold a path bound to another environment
    assert bindings.disagreement(".", "dev") == f"{BINDING_FILE} binds clusters/prod, inside ., to environment prod, not dev"


def test_disagreements_are_named() -> None:
    bindings = parse_bindings(BINDINGS)
    assert bindings.disagreement("clusters/prod/apps", "prod") is None
    assert bindings.disagreement("clusters/prod", "prod") == (
        f"{BINDING_FILE} binds clusters/prod/canary, inside clusters/prod, to environment staging, not prod"
    )
    assert bindings.disagreement("clusters/prod", "dev") == f"{BINDING_FILE} binds clusters/prod to environment prod, not dev"
    assert bindings.disagreement("apps/cart", "prod") == f"{BINDING_FILE} binds no environment to apps/cart"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("paths:\n  a: prod\n  a: dev\n", "a is given twice"),
        ("paths:\n  a: prod\n  a/: dev\n", "path a is bound twice"),
        ("paths:\n  ../a: prod\n", "stay inside it"),
        ("paths:\n  /etc: prod\n", "stay inside it"),
        ("paths:\n  'a\\b': prod\n", "no backslash"),
        ("paths:\n  a: Prod\n", "must name an environment"),
        ("paths:\n  a: [prod]\n", "must name an environment"),
        ("paths:\n  a: &e prod\n  b: *e\n", "anchors and aliases are not allowed"),
        ("paths:\n  a: !!str prod\n", "tags are not allowed"),
        ("paths: {}\n", "at least one path"),
        ("paths:\n  a: prod\nenvironments: {}\n", "unknown key environments"),
        ("- a\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("paths: [\n", "invalid YAML"),
        ("paths:\n  1: prod\n", "must be text"),
    ],
)
def test_a_malformed_binding_file_is_refused(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_bindings(text)
    message = caught.value.diagnostics()
    assert message.startswith(f"{BINDING_FILE}: ") and problem in message


def test_a_binding_to_an_undeclared_environment_is_an_error() -> None:
    with pytest.raises(UsageError, match='binds clusters/prod to environment "prd", which is not declared'):
        parse_bindings("paths:\n  clusters/prod: prd\n").check_declared(declared_environments(SHIPPED))


def test_read_bindings_from_a_checkout(tmp_path: Path) -> None:
    assert read_bindings(tmp_path) is None
    (tmp_path / BINDING_FILE).write_text(BINDINGS)
    found = read_bindings(tmp_path)
    assert found is not None and found.environment_for("clusters/prod") == "prod"


@pytest.mark.parametrize("kind", ["misspelled", "symlink", "folder", "binary", "huge"])
def test_read_bindings_refuses_what_is_not_a_plain_binding_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / BINDING_FILE
    if kind == "misspelled":
        (tmp_path / "gate-environments.yml").write_text(BINDINGS)
    elif kind == "symlink":
        (tmp_path / "elsewhere.yaml").write_text(BINDINGS)
        target.symlink_to(tmp_path / "elsewhere.yaml")
    elif kind == "folder":
        target.mkdir()
    elif kind == "binary":
        target.write_bytes(b"paths:\n  a: \xff\n")
    else:
        target.write_text("paths:\n" + "".join(f"  p{i}: prod\n" for i in range(10000)))
    with pytest.raises(GateError) as caught:
        read_bindings(tmp_path)
    assert "gate-environments.y" in caught.value.diagnostics()
