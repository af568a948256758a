"""Bypass suite, declared environments (issue 10, item 3): a typo in an environment never decides.

Before: ``gate evaluate --env prd`` was judged under the permissive ``default`` thresholds and
allowed, and that allow could be promoted into the prod GitOps path. Now every command that takes
``--env`` refuses a name the policy data does not declare (exit 2, naming the declared ones and the
closest match), and a GitOps repository binds its paths to environments in
``gate-environments.yaml``: promote refuses a decision of another environment for a bound path,
reconcile an ``--env`` that disagrees with the binding.

Real components: the shipped policy library, a real git remote (file://), the CNCF registry for the
promotions that go through, and the reconciler's ``--plan`` (no cluster needed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DATA, DIGEST, ROOT, Run
from tests.promote.conftest import docker_config, registry  # noqa: F401  (fixtures for the promotions)
from tests.promote.gitrepo import KUSTOMIZATION, Remote, make_remote
from tests.promote.servers import Registry, manifest_digest, new_repo, push_image
from tests.promote.test_promote_cli import events as promotion_events

POLICIES = ROOT / "policies"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
IMAGE = f"registry.example.com/shop/cart:1.0@{DIGEST}"
RELEASE = "registry.example.com/release/cart"
BINDINGS = "# which path deploys which environment\npaths:\n  clusters/prod: prod\n  clusters/dev: dev\n"
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\n  namespace: shop\ndata:\n  mode: x\n"

#: names that are not declared: a typo, other cases, a trailing space, empty, a path, a Cyrillic "р"
UNDECLARED = {
    "typo": "prd",
    "capitalized": "Prod",
    "trailing-space": "prod ",
    "upper": "PROD",
    "empty": "",
    "path": "prod/../dev",
    "lookalike": "\u0440rod",
}
SUGGESTED = {"typo": "prod", "capitalized": "prod", "trailing-space": "prod", "upper": "prod", "lookalike": "prod"}


def expected_message(name: str) -> str:
    return f"environment {json.dumps(name)} is not declared in the policy data; declared: dev, prod, staging"


def evaluate(gate: Callable[..., Run], env: str, image: str = IMAGE, *extra: Any) -> Run:
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", image, "--env", env, "--format", "json"]
    for report in CLEAN:
        argv += ["--report", f"auto={DATA / report}"]
    return gate(*argv, *extra)


def allow(gate: Callable[..., Run], env: str, image: str = IMAGE) -> dict[str, Any]:
    run = evaluate(gate, env, image)
    assert run.code == 0, run.err
    decision = run.json()
    assert decision["outcome"] == "allow" and decision["environment"] == env
    return decision


def gitops(tmp_path: Path, bindings: str | None = BINDINGS, release: str = RELEASE) -> Remote:
    files = {
        "clusters/prod/kustomization.yaml": KUSTOMIZATION.format(release=release),
        "clusters/dev/kustomization.yaml": KUSTOMIZATION.format(release=release),
        "apps/cart/kustomization.yaml": KUSTOMIZATION.format(release=release),
        "clusters/prod/config/configmap.yaml": CONFIGMAP,
    }
    if bindings is not None:
        files["gate-environments.yaml"] = bindings
    return make_remote(tmp_path, files)


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reconciler's repository mirror goes to the test's folder, never the user's cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


# --- undeclared environments × every command that takes --env -------------------------------------


@pytest.mark.parametrize("name", UNDECLARED.values(), ids=UNDECLARED.keys())
def test_evaluate_refuses_an_undeclared_environment(gate: Callable[..., Run], name: str) -> None:
    run = evaluate(gate, name)
    assert run.code == 2, run.err
    assert expected_message(name) in run.err
    assert run.out == "" and "Traceback" not in run.err
    assert gate("decisions", "list", "--format", "json").json() == {"decisions": []}  # nothing decided


@pytest.mark.parametrize("key", SUGGESTED)
def test_the_closest_declared_name_is_suggested(gate: Callable[..., Run], key: str) -> None:
    run = evaluate(gate, UNDECLARED[key])
    assert run.code == 2
    assert f'(did you mean "{SUGGESTED[key]}"?)' in run.err


@pytest.mark.parametrize("name", UNDECLARED.values(), ids=UNDECLARED.keys())
def test_promote_refuses_an_undeclared_environment(gate: Callable[..., Run], tmp_path: Path, name: str) -> None:
    decision = allow(gate, "prod")
    remote = gitops(tmp_path)
    head = remote.head()
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0", "--env", name,
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 2, run.err
    assert expected_message(name) in run.err
    assert remote.head() == head


@pytest.mark.parametrize("name", UNDECLARED.values(), ids=UNDECLARED.keys())
def test_reconcile_refuses_an_undeclared_environment(gate: Callable[..., Run], tmp_path: Path, name: str) -> None:
    remote = gitops(tmp_path)
    run = gate("reconcile", "--repo", remote.url, "--path", "clusters/prod", "--env", name, "--once", "--plan")
    assert run.code == 2, run.err
    assert expected_message(name) in run.err


@pytest.mark.parametrize("name", UNDECLARED.values(), ids=UNDECLARED.keys())
def test_serve_admission_refuses_an_undeclared_environment(gate: Callable[..., Run], name: str) -> None:
    run = gate("serve", "--admission", "--env", name, "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2, run.err
    assert expected_message(name) in run.err


def test_decisions_replay_refuses_an_undeclared_environment(gate: Callable[..., Run]) -> None:
    run = gate("decisions", "replay", "--policy", POLICIES, "--env", "prd")
    assert run.code == 2
    assert expected_message("prd") in run.err


def test_an_organization_declares_more_environments_with_data(gate: Callable[..., Run], tmp_path: Path) -> None:
    extra = tmp_path / "environments.yaml"
    extra.write_text("environments:\n  qa:\n    inherits: staging\n")
    run = evaluate(gate, "qa", IMAGE, "--data", extra)
    assert run.code == 0, run.err
    decision = run.json()
    assert decision["environment"] == "qa" and decision["outcome"] == "allow"
    # without the declaration, the same name is refused
    assert evaluate(gate, "qa").code == 2


def test_promote_refuses_a_decision_made_for_an_environment_it_does_not_declare(
    gate: Callable[..., Run], tmp_path: Path
) -> None:
    extra = tmp_path / "environments.yaml"
    extra.write_text("environments:\n  prd: {inherits: dev}\n")
    run = evaluate(gate, "prd", IMAGE, "--data", extra)
    assert run.code == 0, run.err  # "prd" was declared for that evaluation, with dev's settings
    decision = run.json()
    remote = gitops(tmp_path, bindings=None)
    promoted = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0",
                    "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert promoted.code == 1, promoted.err
    assert (f'decision {decision["decision_id"]} is for environment "prd", which is not declared in the policy '
            "data (declared: dev, prod, staging)") in promoted.out
    assert promotion_events(decision["decision_id"]) == ["refused"]


# --- GitOps path binding (gate-environments.yaml) ------------------------------------------------


def test_a_dev_allow_is_refused_for_the_prod_path(gate: Callable[..., Run], tmp_path: Path) -> None:
    decision = allow(gate, "dev")
    remote = gitops(tmp_path)
    head = remote.head()
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 1, run.err
    assert (f"decision {decision['decision_id']} is for environment dev, but gate-environments.yaml binds "
            "clusters/prod/kustomization.yaml to environment prod") in run.out
    assert remote.head() == head
    assert promotion_events(decision["decision_id"]) == ["refused"]


def test_a_path_the_binding_file_does_not_bind_is_refused(gate: Callable[..., Run], tmp_path: Path) -> None:
    decision = allow(gate, "prod")
    remote = gitops(tmp_path)
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "apps/cart/kustomization.yaml")
    assert run.code == 1, run.err
    assert "gate-environments.yaml binds no environment to apps/cart/kustomization.yaml" in run.out
    assert promotion_events(decision["decision_id"]) == ["refused"]


def test_a_malformed_binding_file_is_an_error(gate: Callable[..., Run], tmp_path: Path) -> None:
    decision = allow(gate, "prod")
    remote = gitops(tmp_path, bindings="paths:\n  clusters/prod: prod\n  clusters/prod: dev\n")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 2
    assert "gate-environments.yaml" in run.err and "clusters/prod" in run.err


def test_a_binding_to_an_undeclared_environment_is_an_error(gate: Callable[..., Run], tmp_path: Path) -> None:
    decision = allow(gate, "prod")
    remote = gitops(tmp_path, bindings="paths:\n  clusters/prod: prd\n")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{RELEASE}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 2
    assert 'binds clusters/prod to environment "prd", which is not declared' in run.err


@pytest.mark.server
def test_a_prod_allow_goes_to_the_prod_path(gate: Callable[..., Run], tmp_path: Path, registry: Registry) -> None:  # noqa: F811
    staging, release = new_repo("staging"), new_repo("release")
    image = push_image(registry, staging, "1.0", content=b"bound\n")
    decision = allow(gate, "prod", f"{registry.host}/{staging}:1.0@{image.digest}")
    remote = gitops(tmp_path, release=f"{registry.host}/{release}")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 0, run.out + run.err
    assert "not bound" not in run.err
    assert manifest_digest(registry, release, "1.0") == image.digest


@pytest.mark.server
def test_without_a_binding_file_promote_goes_on_with_a_warning(
    gate: Callable[..., Run], tmp_path: Path, registry: Registry  # noqa: F811
) -> None:
    staging, release = new_repo("staging"), new_repo("release")
    image = push_image(registry, staging, "1.0", content=b"unbound\n")
    decision = allow(gate, "dev", f"{registry.host}/{staging}:1.0@{image.digest}")
    remote = gitops(tmp_path, bindings=None, release=f"{registry.host}/{release}")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "clusters/prod/kustomization.yaml")
    assert run.code == 0, run.out + run.err
    warnings = [line for line in run.err.splitlines() if "not bound" in line]
    assert len(warnings) == 1 and "gate-environments.yaml" in warnings[0]


def test_reconcile_refuses_an_env_the_binding_disagrees_with(gate: Callable[..., Run], tmp_path: Path) -> None:
    remote = gitops(tmp_path)
    run = gate("reconcile", "--repo", remote.url, "--path", "clusters/prod", "--env", "dev", "--once", "--plan")
    assert run.code == 2
    assert "gate-environments.yaml binds clusters/prod to environment prod, not dev" in run.err
    assert run.out == ""


def test_reconcile_refuses_a_path_the_binding_file_does_not_bind(gate: Callable[..., Run], tmp_path: Path) -> None:
    remote = gitops(tmp_path)
    run = gate("reconcile", "--repo", remote.url, "--path", "apps/cart", "--env", "prod", "--once", "--plan")
    assert run.code == 2
    assert "gate-environments.yaml binds no environment to apps/cart" in run.err


def test_reconcile_of_a_bound_path_in_its_environment_goes_on(gate: Callable[..., Run], tmp_path: Path) -> None:
    remote = gitops(tmp_path)
    run = gate("reconcile", "--repo", remote.url, "--path", "clusters/prod/config", "--env", "prod", "--once",
               "--plan", "--format", "json")
    assert run.code == 0, run.err
    assert run.json()["outcome"] == "synced"
    assert "not bound" not in run.err


def test_reconcile_without_a_binding_file_warns(gate: Callable[..., Run], tmp_path: Path) -> None:
    remote = gitops(tmp_path, bindings=None)
    run = gate("reconcile", "--repo", remote.url, "--path", "clusters/prod/config", "--env", "dev", "--once",
               "--plan", "--format", "json")
    assert run.code == 0, run.err
    warnings = [line for line in run.err.splitlines() if "not bound" in line]
    assert len(warnings) == 1 and "gate-environments.yaml" in warnings[0]
