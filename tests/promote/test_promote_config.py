"""`gate promote` with its GitOps defaults from gate.toml, on the real registry and real git: the file gives
--gitops-repo and, per --env, --gitops-path; the GitOps repository's gate-environments.yaml still checks the
path (a file in the app's repository cannot loosen the binding)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run
from tests.promote.gitrepo import KUSTOMIZATION, Remote, make_remote, trailers
from tests.promote.servers import Registry, manifest_digest, new_repo, push_image
from tests.promote.test_promote_cli import evaluate


def app_with_config(registry: Registry, tmp_path: Path, gitops_path: str) -> tuple[str, str, str, Remote]:
    """A staging image, a GitOps remote binding apps/ to prod and dev/ to dev, and a gate.toml in the cwd."""
    staging, release = new_repo("staging"), new_repo("release")
    image = push_image(registry, staging, "1.0", content=f"cfg {staging}\n".encode())
    release_name = f"{registry.host}/{release}"
    remote = make_remote(tmp_path, {
        "apps/cart/kustomization.yaml": KUSTOMIZATION.format(release=release_name),
        "dev/cart/kustomization.yaml": KUSTOMIZATION.format(release=release_name),
        "gate-environments.yaml": "paths:\n  apps: prod\n  dev: dev\n",
    })
    work = tmp_path / "app"
    (work / ".git").mkdir(parents=True)
    (work / "gate.toml").write_text(
        f'[promote]\ngitops_repo = "{remote.url}"\n\n[environments.prod]\ngitops_path = "{gitops_path}"\n'
    )
    return f"{registry.host}/{staging}:1.0@{image.digest}", release, image.digest, remote


def test_the_files_gitops_defaults_promote_and_commit(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, release, digest, remote = app_with_config(registry, tmp_path, "apps/cart/kustomization.yaml")
    decision = evaluate(gate, data, source)
    monkeypatch.chdir(tmp_path / "app")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0", "--env", "prod")
    assert run.code == 0, run.err
    assert manifest_digest(registry, release, "1.0") == digest
    assert f"Gate-Decision: {decision['decision_id']}" in trailers(remote)


def test_a_path_the_binding_gives_another_environment_is_refused(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, release, _, remote = app_with_config(registry, tmp_path, "dev/cart/kustomization.yaml")
    decision = evaluate(gate, data, source)
    head = remote.head()
    monkeypatch.chdir(tmp_path / "app")
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{registry.host}/{release}:1.0", "--env", "prod")
    assert run.code == 1, run.err
    assert "binds dev/cart/kustomization.yaml to environment dev, not prod" in run.out
    assert manifest_digest(registry, release, "1.0") is None and remote.head() == head


def test_a_file_gitops_repo_without_an_environment_is_exit_2(
    gate: Callable[..., Run], registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_with_config(registry, tmp_path, "apps/cart/kustomization.yaml")
    monkeypatch.chdir(tmp_path / "app")
    run = gate("promote", "--decision", "0193abcd", "--target", f"{registry.host}/release/x:1")
    assert run.code == 2 and run.err.count("\n") == 1
    assert "sets promote.gitops_repo: give --env" in run.err
