"""Rollback holds: a digest a person took out of the GitOps file is not silently promoted back.

The rule: walk the file's history on the branch's first-parent line (what the branch looked like
over time), newest first, to the latest commit that changed whether the file carries the digest.
If that commit took the digest out and is a revert (``Revert "…``, ``This reverts commit``) or
is not a gate commit (no ``Gate-Decision`` trailer: a person moved the image back), the digest is
on hold. A later commit that put the digest back — gate's, with ``Gate-Override-Hold: true``, or a
person's — ends the hold, and so does gate moving on to another digest. An unrelated edit of the
file does not change the digest's presence and is passed over.

The history comes from gate.gitrepo (the only module that talks to git).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gate.gitrepo import Mirror

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hold:
    """Why a digest must not be promoted again without ``--override-hold``."""

    #: full sha of the commit that took the digest out
    commit: str
    #: one line for a person: which commit, by whom, when, what it did
    reason: str


def is_revert(message: str) -> bool:
    """Whether a commit message is git's revert message (or says it reverts a commit)."""
    return message.startswith('Revert "') or "This reverts commit" in message


def find_hold_in(mirror: Mirror, rev: str, path: str, digest: str, *,
                 mentions: Callable[[str], bool] | None = None, max_commits: int = 500) -> Hold | None:
    """The hold on ``digest`` at ``path`` as of ``rev`` in a local mirror, or None."""
    carries = mentions or (lambda text: digest in text)
    seen: dict[str, bool] = {}

    def present(blob: str | None) -> bool:
        """Whether the file's version ``blob`` carries the digest (cached per blob)."""
        if blob is None:
            return False
        if blob not in seen:
            seen[blob] = carries(mirror.blob_text(blob))
        return seen[blob]

    for change in mirror.file_changes(rev, path, max_commits):
        after = present(change.after)
        if after == present(change.before):
            continue  # an edit that neither added nor removed the digest
        if after:
            return None  # the latest change put the digest in: no hold
        revert = is_revert(change.message)
        if not revert and change.decisions:
            return None  # gate promoted something else over it: not a rollback
        subject = change.message.strip().splitlines()[0] if change.message.strip() else ""
        if len(subject) > 100:
            subject = subject[:99] + "…"
        short = digest if len(digest) <= 19 else digest[:19] + "…"
        verb = "reverted" if revert else "removed"
        return Hold(change.sha, f"commit {change.sha[:7]} by {change.author} ({change.day}) {verb} "
                                f"{short} at {path}: '{subject}'")
    logger.debug("no change of %s at %s in the last %d commits of %s", digest, path, max_commits, rev)
    return None
