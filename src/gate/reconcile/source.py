"""The GitOps repository as the reconciler reads it: a local mirror, fetched every cycle.

The clone is kept between cycles (``cache_dir``), so a cycle fetches only what is new. Each cycle
checks out the branch head detached into that clone's work tree, cleaned of anything a previous
render left, and reports the commit with its trailers (``Gate-Decision`` and friends, written by
``gate promote``), which the admission input carries. A repository that cannot be reached is a
``SourceUnavailable``: temporary, so the loop backs off and tries again, never applying anything
from a half-fetched tree.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gate.errors import ReconcileError

#: seconds a fetch or clone may take before it is abandoned
FETCH_TIMEOUT = 120.0


class SourceUnavailable(ReconcileError):
    """The GitOps repository cannot be fetched right now (network, server, auth): try again later."""


@dataclass(frozen=True)
class Checkout:
    """One commit of the GitOps repository, checked out."""

    root: Path
    commit: str
    subject: str
    #: the commit's git trailers (Gate-Decision, Gate-Image-Digest, ...), last value per key
    trailers: dict[str, str] = field(default_factory=dict)

    def as_input(self) -> dict[str, Any]:
        """``input.gate.commit`` of the admission input."""
        return {"sha": self.commit, "subject": self.subject, "trailers": dict(self.trailers)}


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/gate/reconcile`` (``~/.cache`` when unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "gate" / "reconcile"


class GitSource:
    """A branch of a repository, mirrored under ``cache_dir``."""

    def __init__(self, url: str, branch: str = "main", cache_dir: Path | None = None) -> None:
        from gate.promote.gitops import redact_url

        self.url = url
        self.branch = branch
        self.shown = redact_url(url)
        key = hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:16]
        self.dir = (cache_dir or default_cache_dir()) / key

    def sync(self) -> Checkout:
        """Fetch the branch and check out its head; the checkout's commit and trailers."""
        import git

        try:
            if (self.dir / ".git").is_dir():
                repo = git.Repo(self.dir)
            else:
                self.dir.mkdir(parents=True, exist_ok=True)
                repo = git.Repo.init(self.dir)
                # Written to the config, not passed on a command line (ps would show its credentials).
                with repo.config_writer() as config:
                    config.set_value('remote "origin"', "url", self.url)
        except (git.GitError, OSError) as e:
            raise ReconcileError(f"{self.dir}: cannot prepare the local mirror of {self.shown}: {_line(e)}") from None
        env = {"GIT_TERMINAL_PROMPT": "0"}
        try:
            repo.git.fetch(
                "--quiet", "--prune", "origin", f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}",
                env=env, kill_after_timeout=FETCH_TIMEOUT,
            )
        except git.GitCommandError as e:
            raise SourceUnavailable(f"{self.shown}: cannot fetch branch {self.branch}: {self._reason(e)}") from None
        try:
            repo.git.checkout("--quiet", "--force", "--detach", f"refs/remotes/origin/{self.branch}")
            repo.git.clean("-ffdxq")
            sha = repo.git.rev_parse("HEAD")
            subject = repo.git.log("-1", "--format=%s")
            raw = repo.git.log("-1", "--format=%(trailers:only,unfold)")
        except git.GitCommandError as e:
            raise ReconcileError(f"{self.dir}: cannot check out {self.branch} of {self.shown}: {self._reason(e)}") from None
        trailers: dict[str, str] = {}
        for line in raw.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                trailers[key.strip()] = value.strip()
        return Checkout(self.dir, sha, subject, trailers)

    def _reason(self, error: Any) -> str:
        """git's last meaningful stderr line, without credentials."""
        from gate.promote.gitops import redact_url

        stderr = str(getattr(error, "stderr", "") or error)
        lines = [ln.strip().strip("'\"") for ln in stderr.splitlines() if ln.strip().strip("'\"")]
        lines = [ln.removeprefix("stderr:").strip() for ln in lines if not ln.startswith("hint:")]
        text = lines[-1] if lines else "git failed"
        return redact_url(text.replace(self.url, self.shown))


def _line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
