"""Commit an approved image reference into the GitOps repository, and look for rollback holds.

The YAML edit is a callable (``edit(text) -> (new_text, changed)``, see edit.py), so this module
owns only git. A push rejected because someone pushed first is not rebased: we fetch, reset to the
new head and re-apply the edit to the fresh file. The edit is idempotent, so a concurrent change to
the same file merges naturally, and a file that already carries the value becomes a noop.

Git itself is gate.gitrepo's (``Mirror``): this module only decides what to commit and where.
Credentials embedded in the repository URL never appear in a message.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from gate.errors import GitOpsError, UsageError
from gate.gitrepo import Mirror, check_branch
from gate.imageref import split
from gate.promote.edit import unified_diff
from gate.promote.history import Hold, find_hold_in

__all__ = ["CommitSpec", "Hold", "WriteBack", "build_message", "find_hold", "write_back"]

logger = logging.getLogger(__name__)

_BACKOFF_START, _BACKOFF_CAP = 0.05, 1.0

DEFAULT_TEMPLATE = (
    "promote {image} to {environment}: {old_short} -> {new_short}\n\n"
    "{image}\n  from {old}\n  to   {new}\n\n"
    "Decision: {decision_id}\nPolicy revision: {policy_revision}\n"
)
_FIELDS = ("image", "old", "new", "old_short", "new_short", "environment", "decision_id",
           "policy_revision", "digest", "path")
_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")


@dataclass(frozen=True)
class CommitSpec:
    """What the promotion commit says and who it is from (author and committer).

    ``message`` may be a callable: it is called when the commit is made, after the edit of that
    attempt, so a message that names the old value (which only the edit sees) is always right,
    also when a retry re-applied the edit to a file someone else changed.
    """

    message: str | Callable[[], str]
    author_name: str = "gate"
    author_email: str = "gate@localhost"


@dataclass(frozen=True)
class WriteBack:
    """The outcome of one write-back: ``committed``, ``noop`` (nothing to change) or ``dry-run``."""

    status: str
    #: sha of the new commit (None for noop and dry-run)
    commit: str | None
    #: the branch pushed to (mode "branch": the promotion branch; a noop on the base names the base)
    branch: str
    #: unified diff of the change ("" for noop)
    diff: str
    #: push attempts used
    attempts: int


def _short(ref: str | None) -> str:
    """The part of an image reference a person scans for: its tag, else a short digest."""
    if not ref:
        return "(none)"
    name, tag, digest = split(ref)
    return tag or (digest[:19] if digest else name)


#: the trailer naming the manifest that holds the promotion's VSA (gate.attestation): ``REPO@sha256:M`` for an
#: OCI referrer, ``REPO:sha256-<hex>.att@sha256:M`` for cosign's tag (the manifest as it was after attaching)
ATTESTATION_TRAILER = "Gate-Attestation"


def build_message(template: str | None, *, image: str, old: str | None, new: str, environment: str,
                  decision_id: str, policy_revision: str | None, digest: str, path: str,
                  extra_trailers: Mapping[str, str] | None = None) -> str:
    """The promotion commit message: the template filled in, then the ``Gate-*`` git trailers.

    Trailers are the last paragraph, one ``Key: value`` a line, as ``git interpret-trailers`` reads
    them; ``extra_trailers`` (e.g. ``Gate-Override-Hold: true``) follow the four fixed ones.
    """
    values = {"image": image, "old": old or "(none)", "new": new, "old_short": _short(old),
              "new_short": _short(new), "environment": environment, "decision_id": decision_id,
              "policy_revision": policy_revision or "(none)", "digest": digest, "path": path}
    text = DEFAULT_TEMPLATE if template is None else template
    try:
        for _, field, _, _ in string.Formatter().parse(text):
            if field is not None and field not in values:
                raise UsageError(f"commit message template: unknown field {{{field}}}; "
                                 f"known fields: {', '.join(_FIELDS)}")
        body = text.format_map(values)
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        raise UsageError(f"commit message template: {e}") from e
    trailers = {"Gate-Decision": decision_id, "Gate-Image-Digest": digest,
                "Gate-Environment": environment, "Gate-Path": path, **(extra_trailers or {})}
    for key, value in trailers.items():
        if not _TRAILER_KEY.match(key) or "\n" in value or "\r" in value or not value.strip():
            raise UsageError(f"commit trailer {key!r}: keys are letters, digits and '-', values one non-empty line")
    lines = "\n".join(f"{k}: {v}" for k, v in trailers.items())
    return f"{body.rstrip()}\n\n{lines}\n"


def _read(clone: Mirror, path: str, branch: str) -> str:
    """The file's text at the checked-out head; missing or not UTF-8 is a GitOpsError."""
    target = clone.file(path)
    if not target.is_file():
        raise GitOpsError(f"{clone.safe_url}: {path} not found on branch {branch}")
    try:
        return target.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise GitOpsError(f"{clone.safe_url}: {path} is not UTF-8 text") from None


def _push_rejected(out: str, err: str) -> bool:
    """A push lost a race (someone pushed first, or held the ref lock): worth fetching and retrying."""
    text = f"{out}\n{err}"
    return any(s in text for s in ("[rejected]", "non-fast-forward", "fetch first", "stale info",
                                   "cannot lock ref", "failed to update ref", "failed to lock"))


def _branch_name(branch: str, path: str, change_key: str) -> str:
    """The promotion branch for one change: the same change always maps to the same branch."""
    digest = hashlib.sha256(f"{branch}\0{path}\0{change_key}".encode()).hexdigest()[:12]
    return f"gate/promote-{digest}"


def write_back(repo_url: str, path: str, edit: Callable[[str], tuple[str, bool]], commit: CommitSpec, *,
               branch: str = "main", mode: str = "push", change_key: str | None = None,
               workdir: Path | None = None, dry_run: bool = False, max_attempts: int = 40,
               sign: bool | None = None, git_config: Mapping[str, str] | None = None) -> WriteBack:
    """Apply ``edit`` to ``path`` on ``branch`` of ``repo_url``, commit it and push.

    ``mode="push"`` pushes to ``branch``; ``mode="branch"`` pushes to ``gate/promote-<hash>``, a name
    derived from ``branch``, ``path`` and ``change_key`` (default: the edited content), so the same
    change never opens two branches. ``sign`` True forces ``-S``, False ``--no-gpg-sign``, None
    follows ``commit.gpgsign``; ``git_config`` is set in the clone's own config (e.g. signing keys).
    Each round of racing pushers lets at least one through, so ``max_attempts`` should cover the
    pipelines that may promote into one repository at once (10 processes at once measured: up to 16).
    """
    if mode not in ("push", "branch"):
        raise UsageError(f"write-back mode must be 'push' or 'branch', not {mode!r}")
    if max_attempts < 1:
        raise UsageError("write-back needs at least one push attempt")
    check_branch(branch)
    with Mirror(repo_url, workdir) as clone:
        for key, value in (git_config or {}).items():
            clone.run("config", "--local", key, value, what=f"setting git config {key}")
        delay = _BACKOFF_START
        for attempt in range(1, max_attempts + 1):
            result = _attempt(clone, path, edit, commit, branch, mode, change_key, dry_run, sign, attempt)
            if result is not None:
                return result
            logger.info("push to %s lost a race (attempt %d of %d); re-applying the edit", clone.safe_url,
                        attempt, max_attempts)
            time.sleep(random.uniform(0, delay))  # full jitter: racers spread out
            delay = min(_BACKOFF_CAP, delay * 2)
        raise GitOpsError(f"{clone.safe_url}: push of {path} still rejected after {max_attempts} attempts "
                          "(the branch keeps moving); try again")


def _attempt(clone: Mirror, path: str, edit: Callable[[str], tuple[str, bool]], commit: CommitSpec,
             branch: str, mode: str, change_key: str | None, dry_run: bool, sign: bool | None,
             attempt: int) -> WriteBack | None:
    """One fetch → edit → commit → push round; None when the push lost a race."""
    used = attempt - 1  # push attempts before this one
    # which branches exist: needed once in push mode, and each time in branch mode (it may appear)
    heads = clone.remote_heads() if attempt == 1 or mode == "branch" else {branch: ""}
    if branch not in heads:
        what = "is empty" if not heads else f"has no branch {branch!r}"
        raise GitOpsError(f"{clone.safe_url} {what}: cannot edit {path}")
    clone.fetch(branch)
    clone.reset(f"origin/{branch}")
    old = _read(clone, path, branch)
    new, changed = edit(old)
    target = branch
    if mode == "branch":
        target = _branch_name(branch, path, change_key or hashlib.sha256(new.encode()).hexdigest())
        if target in heads:  # the promotion branch exists: build on it (no change there → noop)
            clone.fetch(target)
            clone.reset(f"origin/{target}")
            old = _read(clone, path, target)
            new, changed = edit(old)
        elif not changed:
            return WriteBack("noop", None, branch, "", used)
    if not changed or new == old:
        return WriteBack("noop", None, target, "", used)
    diff = unified_diff(path, old, new)
    if dry_run:
        return WriteBack("dry-run", None, target, diff, used)
    clone.file(path).write_bytes(new.encode("utf-8"))
    clone.run("add", "--", path, what=f"staging {path}")
    env = {"GIT_AUTHOR_NAME": commit.author_name, "GIT_AUTHOR_EMAIL": commit.author_email,
           "GIT_COMMITTER_NAME": commit.author_name, "GIT_COMMITTER_EMAIL": commit.author_email}
    signing = [] if sign is None else ["-S"] if sign else ["--no-gpg-sign"]
    message = commit.message() if callable(commit.message) else commit.message
    clone.run("commit", "--quiet", "--no-edit", "--cleanup=whitespace", *signing, "-m", message,
              what=f"committing {path}", env=env)
    _, sha, _ = clone.run("rev-parse", "HEAD", what="reading the new commit")
    status, out, err = clone.run("push", "--porcelain", "origin", f"HEAD:refs/heads/{target}",
                                 what=f"push to {target}", network=True, check=False)
    if status == 0:
        logger.info("pushed %s to %s %s", sha[:12], clone.safe_url, target)
        return WriteBack("committed", sha.strip(), target, diff, attempt)
    if _push_rejected(out, err):
        return None
    raise GitOpsError(f"{clone.safe_url}: push to {target} failed: {clone.reason(err, out)}")


def find_hold(repo_url: str, path: str, digest: str, *, branch: str = "main", workdir: Path | None = None,
              mentions: Callable[[str], bool] | None = None, max_commits: int = 500) -> Hold | None:
    """A rollback hold on ``digest`` at ``path``: did a person last take it out of the file?

    See gate.promote.history for the rule. ``mentions(text)`` says whether a version of the file
    carries the digest (default: the digest string occurs in it).
    """
    check_branch(branch)
    with Mirror(repo_url, workdir) as clone:
        clone.fetch_existing(branch, f"read the history of {path}")
        clone.file(path)  # refuses paths outside the repository
        return find_hold_in(clone, f"refs/remotes/origin/{branch}", path, digest,
                            mentions=mentions, max_commits=max_commits)
