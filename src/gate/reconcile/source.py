"""The GitOps repository as the reconciler reads it: a local mirror (gate.gitrepo), fetched every cycle.

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
from gate.redact import redact_url

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
        self.url = url
        self.branch = branch
        self.shown = redact_url(url)
        key = hashlib.sha256(f"{url}\0{branch}".encode()).hexdigest()[:16]
        self.dir = (cache_dir or default_cache_dir()) / key

    def sync(self) -> Checkout:
        """Fetch the branch and check out its head; the checkout's commit and trailers."""
        from gate.gitrepo import Mirror

        mirror = Mirror(self.url, self.dir.parent, key=self.dir.name, error=ReconcileError, unreachable=SourceUnavailable)
        with mirror:
            spec = f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}"
            status, out, err = mirror.run("fetch", "--quiet", "--prune", "--no-tags", "origin", spec,
                                          what=f"fetching branch {self.branch}", network=True, check=False)
            if status != 0:
                raise SourceUnavailable(f"{self.shown}: cannot fetch branch {self.branch}: {mirror.reason(err, out)}")
            mirror.reset(f"refs/remotes/origin/{self.branch}")
            sha, subject, trailers = mirror.commit("HEAD")
        return Checkout(self.dir, sha, subject, trailers)
