"""gate.gitrepo: the one module that talks to git, for promote and reconcile (issue 10, git).

Real repositories: a bare repository over file:// as the remote, commits made with the git binary.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from gate.errors import GitOpsError, ReconcileError
from gate.gitrepo import Mirror, log_head_anchors
from gate.reconcile.source import GitSource, SourceUnavailable
from tests.conftest import ROOT
from tests.promote.gitrepo import Remote, make_remote, person_commit

PATH = "apps/web/kustomization.yaml"


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return make_remote(tmp_path, {PATH: "images:\n  - name: web\n    newTag: '1.0'\n"})


def test_only_the_git_module_imports_git() -> None:
    """GitPython (and so the git binary) is reached through gate.gitrepo alone."""
    importers = []
    for folder in (ROOT / "src", ROOT / "plugins"):
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
                if any(n == "git" or n.startswith("git.") for n in names):
                    importers.append(str(path.relative_to(ROOT)))
    assert sorted(set(importers)) == ["src/gate/gitrepo.py"]


def test_promote_and_reconcile_share_one_mirror_and_its_history(remote: Remote, tmp_path: Path) -> None:
    sha = person_commit(remote, tmp_path, PATH, "images:\n  - name: web\n    newTag: '1.1'\n",
                        "promote web\n\nGate-Decision: d-1\nGate-Log-Head: sha256:" + "1" * 64)
    checkout = GitSource(remote.url, "main", tmp_path / "cache").sync()
    assert checkout.commit == sha and checkout.subject == "promote web"
    assert checkout.trailers == {"Gate-Decision": "d-1", "Gate-Log-Head": "sha256:" + "1" * 64}
    assert (checkout.root / PATH).read_text().endswith("newTag: '1.1'\n")
    assert log_head_anchors(remote.url) == [(sha, "sha256:" + "1" * 64)]
    with Mirror(remote.url, tmp_path / "promote") as mirror:
        mirror.fetch("main")
        [latest, first] = list(mirror.file_changes("refs/remotes/origin/main", PATH, 10))
    assert latest.sha == sha and latest.decisions == ("d-1",) and latest.before and latest.after
    assert first.before is None and first.after is not None  # the file was added


def test_the_remote_url_is_never_on_gits_command_line(remote: Remote, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It lives in .git/config: a process list or a debug log of the commands would show its password."""
    import git

    argv: list[list[str]] = []
    original = git.cmd.Git.execute

    def spy(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        argv.append([str(c) for c in command])
        return original(self, command, *args, **kwargs)

    monkeypatch.setattr(git.cmd.Git, "execute", spy)
    GitSource(remote.url, "main", tmp_path / "cache").sync()
    with Mirror(remote.url, tmp_path / "promote") as mirror:
        mirror.remote_heads("main")
    assert argv and not any(remote.url in part for command in argv for part in command)
    config = next((tmp_path / "promote").glob("*/.git/config")).read_text()
    assert remote.url in config


def test_failures_name_the_stage_with_its_own_error(tmp_path: Path) -> None:
    """Promotion failures are GitOpsErrors; a reconciler that cannot fetch may retry (SourceUnavailable)."""
    missing = (tmp_path / "nope.git").as_uri()
    with pytest.raises(SourceUnavailable, match="cannot fetch branch main"):
        GitSource(missing, "main", tmp_path / "cache").sync()
    assert issubclass(SourceUnavailable, ReconcileError)
    with pytest.raises(GitOpsError, match="reaching the repository failed"), Mirror(missing, None) as mirror:
        mirror.remote_heads()
