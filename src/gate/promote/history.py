"""Rollback holds: a digest a person took out of the GitOps file is not silently promoted back.

The rule: walk the file's history on the branch's first-parent line (what the branch looked like
over time), newest first, to the latest commit that changed whether the file carries the digest.
If that commit took the digest out and is a revert (``Revert "…``, ``This reverts commit``) or
is not a gate commit (no ``Gate-Decision`` trailer: a person moved the image back), the digest is
on hold. A later commit that put the digest back — gate's, with ``Gate-Override-Hold: true``, or a
person's — ends the hold, and so does gate moving on to another digest. An unrelated edit of the
file does not change the digest's presence and is passed over.

The repository object comes from gitops.py (the only module that imports GitPython).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from git import Commit, Repo

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    """Why a digest must not be promoted again without ``--override-hold``."""

    #: full sha of the commit that took the digest out
    commit: str
    #: one line for a person: which commit, by whom, when, what it did
    reason: str


def _trailers(repo: Repo, sha: str) -> dict[str, str]:
    """The commit's git trailers, as ``git interpret-trailers`` reads them."""
    out = repo.git.show("-s", "--format=%(trailers:only,unfold)", sha)
    pairs = (line.partition(":") for line in out.splitlines() if ":" in line)
    return {key.strip().lower(): value.strip() for key, _, value in pairs}


def is_revert(message: str) -> bool:
    """Whether a commit message is git's revert message (or says it reverts a commit)."""
    return message.startswith('Revert "') or "This reverts commit" in message


def find_hold_in(repo: Repo, rev: str, path: str, digest: str, *,
                 mentions: Callable[[str], bool] | None = None, max_commits: int = 500) -> Hold | None:
    """The hold on ``digest`` at ``path`` as of ``rev`` in a local repository, or None."""
    carries = mentions or (lambda text: digest in text)
    seen: dict[str, bool] = {}

    def present(commit: Commit | None) -> bool:
        """Whether the file at ``commit`` carries the digest (cached per blob)."""
        if commit is None:
            return False
        try:
            blob = commit.tree / path
        except KeyError:
            return False
        if blob.hexsha not in seen:
            seen[blob.hexsha] = carries(blob.data_stream.read().decode("utf-8", "replace"))
        return seen[blob.hexsha]

    for commit in repo.iter_commits(rev, paths=path, first_parent=True, max_count=max_commits):
        after = present(commit)
        before = present(commit.parents[0] if commit.parents else None)
        if after == before:
            continue  # an edit that neither added nor removed the digest
        if after:
            return None  # the latest change put the digest in: no hold
        message = str(commit.message)
        revert = is_revert(message)
        if not revert and "gate-decision" in _trailers(repo, commit.hexsha):
            return None  # gate promoted something else over it: not a rollback
        subject = message.strip().splitlines()[0] if message.strip() else ""
        if len(subject) > 100:
            subject = subject[:99] + "…"
        short = digest if len(digest) <= 19 else digest[:19] + "…"
        verb = "reverted" if revert else "removed"
        when = commit.authored_datetime.date().isoformat()
        return Hold(commit.hexsha, f"commit {commit.hexsha[:7]} by {commit.author.name} ({when}) {verb} "
                                   f"{short} at {path}: '{subject}'")
    logger.debug("no change of %s at %s in the last %d commits of %s", digest, path, max_commits, rev)
    return None
