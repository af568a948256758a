"""``gate policy push|pull`` and ``gate evaluate --policy oci://…`` end to end against the real registry,
with and without htpasswd auth (credentials from the Docker config)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate.policy.bundle import load_bundle
from tests.conftest import DATA, DIGEST, ROOT, Run
from tests.policy.test_layers import org_bundle
from tests.promote.servers import Registry, new_repo

pytestmark = pytest.mark.server

REF = f"registry.example.com/shop/cart:1.4.2@{DIGEST}"
#: allowed by the shipped library
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")


def evaluate(gate: Callable[..., Run], *policy: str) -> Run:
    argv: list[Any] = ["evaluate", "--image", REF, "--env", "prod", "--format", "json"]
    for report in CLEAN:
        argv += ["--report", f"auto={DATA / report}"]
    for spec in policy:
        argv += ["--policy", spec]
    return gate(*argv)


def login(docker_config: Path, registry: Registry, password: str | None = None) -> None:
    entry = {"username": registry.user, "password": password or registry.password}
    (docker_config / "config.json").write_text(json.dumps({"auths": {registry.host: entry}}))


def test_push_prints_the_pinned_reference_and_pull_writes_the_files(
    gate: Callable[..., Run], registry: Registry, tmp_path: Path
) -> None:
    source = org_bundle(tmp_path, data={"thresholds": {"prod": {"min_line_coverage": 0.5}}})
    ref = f"oci://{registry.host}/{new_repo('policies')}:1"
    pushed = gate("policy", "push", source, ref)
    assert pushed.code == 0, pushed.err
    pinned = pushed.out.strip()
    assert pinned.startswith(ref.rsplit(":", 1)[0] + "@sha256:") and "\n" not in pinned

    cached = gate("policy", "pull", ref)
    assert cached.code == 0, cached.err
    reference, path = cached.out.splitlines()
    assert reference == pinned and load_bundle(path).digest == load_bundle(source).digest

    out = tmp_path / "out"
    pulled = gate("policy", "pull", pinned, "--output", out)
    assert pulled.code == 0 and pulled.out.splitlines() == [pinned, str(out)], pulled.err
    assert (out / "gate/promotion/org_images.rego").read_text() == (source / "gate/promotion/org_images.rego").read_text()
    assert load_bundle(out).digest == load_bundle(source).digest

    again = gate("policy", "pull", pinned, "--output", out)  # never writes over a folder's files
    assert again.code == 2 and "exists and is not an empty folder" in again.err


def test_a_wrong_password_is_exit_2_naming_the_registry_never_the_password(
    gate: Callable[..., Run], auth_registry: Registry, docker_config: Path, tmp_path: Path
) -> None:
    wrong = "wrong-Pa55-word-77"
    login(docker_config, auth_registry, wrong)
    ref = f"oci://{auth_registry.host}/{new_repo('policies')}:1"
    for run in (gate("policy", "push", org_bundle(tmp_path), ref), gate("policy", "pull", ref)):
        assert run.code == 2 and run.out == ""
        [line] = run.err.strip().splitlines()
        assert line.startswith("gate: error: policy bundle") and ref in line
        assert f"registry {auth_registry.host}" in line and "401 UNAUTHORIZED" in line
        assert wrong not in run.err and str(auth_registry.password) not in run.err


def test_evaluate_decides_with_a_bundle_pushed_to_the_registry_and_records_it_pinned(
    gate: Callable[..., Run], registry: Registry
) -> None:
    ref = f"oci://{registry.host}/policies/gate:0.2.0"
    pushed = gate("policy", "push", ROOT / "policies", ref)
    assert pushed.code == 0, pushed.err
    pinned = pushed.out.strip()

    run = evaluate(gate, ref)
    assert run.code == 0, run.err
    policy = run.json()["policy"]
    library = load_bundle(ROOT / "policies")
    assert policy["digest"] == library.digest and policy["revision"] == library.revision
    assert policy["layers"] == [{"source": pinned, "digest": library.digest, "revision": library.revision}]


def test_an_org_bundle_from_a_registry_with_auth_layers_a_deny_on_the_library(
    gate: Callable[..., Run], auth_registry: Registry, docker_config: Path, tmp_path: Path
) -> None:
    login(docker_config, auth_registry)
    ref = f"oci://{auth_registry.host}/{new_repo('org')}:7"
    pushed = gate("policy", "push", org_bundle(tmp_path), ref)
    assert pushed.code == 0, pushed.err
    pinned = pushed.out.strip()

    run = evaluate(gate, "gate:library", ref)
    assert run.code == 1, run.err
    decision = run.json()
    assert "org.images.registry" in {r["rule"] for r in decision["violations"]}
    assert [layer["source"] for layer in decision["policy"]["layers"]] == ["gate:library", pinned]

    (docker_config / "config.json").unlink()  # pinned and cached: no registry, no credentials needed
    assert evaluate(gate, "gate:library", pinned).code == 1
