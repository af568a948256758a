"""Commit an approved image reference into the GitOps repository, and look for rollback holds.

The YAML edit is a callable (``edit(text) -> (new_text, changed)``, see edit.py), so this module
owns only git. A push rejected because someone pushed first is not rebased: we fetch, reset to the
new head and re-apply the edit to the fresh file. The edit is idempotent, so a concurrent change to
the same file merges naturally, and a file that already carries the value becomes a noop.

This is the only module that imports GitPython, and only inside functions (``gate --help`` does not
pay for it). Credentials embedded in the repository URL never appear in a message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import random
import re
import string
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Self
from urllib.parse import unquote, urlsplit

from gate.errors import GitOpsError, UsageError
from gate.promote.edit import unified_diff
from gate.promote.history import Hold, find_hold_in

if TYPE_CHECKING:
    from git import Repo

__all__ = ["CommitSpec", "Hold", "WriteBack", "build_message", "find_hold", "redact_url", "write_back"]

logger = logging.getLogger(__name__)

#: seconds one network git command (ls-remote, fetch, push) may take before it is killed
NETWORK_TIMEOUT = 120.0
_BACKOFF_START, _BACKOFF_CAP = 0.05, 1.0

DEFAULT_TEMPLATE = (
    "promote {image} to {environment}: {old_short} -> {new_short}\n\n"
    "{image}\n  from {old}\n  to   {new}\n\n"
    "Decision: {decision_id}\nPolicy revision: {policy_revision}\n"
)
_FIELDS = ("image", "old", "new", "old_short", "new_short", "environment", "decision_id",
           "policy_revision", "digest", "path")
_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<![./])$")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


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
    name, _, digest = ref.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        return name[colon + 1 :]
    return digest[:19] if digest else name


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


def redact_url(url: str) -> str:
    """``url`` without its user-info (``https://user:token@host/x`` → ``https://host/x``)."""
    return _USERINFO.sub(r"\1", url)


class _Clone:
    """A local clone of one remote, in a cache folder shared between calls (locked while in use)."""

    def __init__(self, repo_url: str, workdir: Path | None) -> None:
        """Remember where; nothing is touched until the block is entered."""
        self.url = repo_url
        self.safe_url = redact_url(repo_url)
        try:
            password = urlsplit(repo_url).password if "://" in repo_url else None
        except ValueError:  # e.g. a port that is not a number; git will refuse the URL itself
            password = None
        self._secrets = [s for s in {password or "", unquote(password or "")} if len(s) >= 3]
        self._workdir = workdir
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Self:
        """Lock the cache entry for this URL and open (or start) the clone in it."""
        import git

        key = hashlib.sha256(self.safe_url.encode()).hexdigest()[:16]
        try:
            if self._workdir is None:
                root = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="gate-gitops-")))
            else:
                root = Path(self._workdir)
                root.mkdir(parents=True, exist_ok=True)
            lock = self._stack.enter_context(open(root / f"{key}.lock", "w"))
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            self.dir = root / key
            self.repo: Repo = git.Repo(self.dir) if (self.dir / ".git").is_dir() else git.Repo.init(self.dir)
            self._stack.callback(self.repo.close)
            # written to .git/config directly (not via a command line a debug log would show)
            with self.repo.config_writer() as cw:
                cw.set_value('remote "origin"', "url", self.url)
                cw.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*")
        except (git.GitError, OSError) as e:
            self._stack.close()
            where = self._workdir or "a temporary folder"
            raise GitOpsError(f"{self.safe_url}: cannot prepare the local clone in {where}: "
                              f"{type(e).__name__}: {e}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        """Close git's helper processes, unlock, and drop a temporary clone."""
        self._stack.close()

    def redact(self, text: str) -> str:
        """``text`` with URL user-info and the URL's password removed."""
        text = redact_url(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def run(self, *args: str, what: str, network: bool = False, check: bool = True,
            env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        """Run ``git args`` in the clone; a failure (when ``check``) is a one-line GitOpsError."""
        status, out, err = self.repo.git.execute(
            ["git", *args], with_extended_output=True, with_exceptions=False,
            kill_after_timeout=NETWORK_TIMEOUT if network else None,
            env={"GIT_TERMINAL_PROMPT": "0", **(env or {})})
        if check and status != 0:
            raise GitOpsError(f"{self.safe_url}: {what} failed: {self.reason(err, out)}")
        return status, out, err

    def reason(self, *outputs: str) -> str:
        """The telling part of git's output on one line, without credentials.

        A push refusal reads best as the porcelain status plus what the remote said (e.g. a hook's
        message); otherwise git's last two lines (the cause, then git's summary), without hints.
        """
        lines = [ln.strip() for text in outputs for ln in text.splitlines() if ln.strip()]
        refused = [ln.split("\t")[-1] for ln in lines if ln.startswith("!\t")]
        remote = [ln.removeprefix("remote:").strip() for ln in lines if ln.startswith("remote:")]
        said = [ln for ln in lines if not ln.startswith(("hint:", "Please make sure", "and the repository exists"))]
        parts = refused[:1] + [r for r in remote if r][-2:] or said[-2:] or ["git gave no reason"]
        return self.redact("; ".join(parts))[:300]

    def remote_heads(self, *branches: str) -> dict[str, str]:
        """The remote's branch heads (name → sha), all of them when no names are given."""
        refs = [f"refs/heads/{b}" for b in branches]
        _, out, _ = self.run("ls-remote", "--heads", "origin", *refs, what="reaching the repository",
                             network=True)
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def fetch(self, *branches: str) -> None:
        """Fetch these branches into ``origin/<branch>``."""
        specs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
        self.run("fetch", "--no-tags", "--quiet", "origin", *specs, what="fetch", network=True)

    def reset(self, ref: str) -> None:
        """Make the work tree exactly ``ref`` (detached), dropping anything a crashed run left."""
        self.run("-c", "advice.detachedHead=false", "checkout", "--force", "--detach", ref, what="checkout")
        self.run("clean", "-ffdxq", what="clean")


def _check_branch(branch: str) -> None:
    """Refuse a branch name that would be read as an option or a refspec."""
    if not _BRANCH.match(branch) or branch.endswith(".lock"):
        raise UsageError(f"GitOps branch {branch!r} is not a plain branch name")


def _file(clone: _Clone, path: str) -> Path:
    """The work-tree file for ``path``; a path leaving the repository or a symlink is refused."""
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise GitOpsError(f"{clone.safe_url}: path {path!r} must be relative and inside the repository")
    target = clone.dir
    for part in rel.parts:
        target = target / part
        if target.is_symlink():
            raise GitOpsError(f"{clone.safe_url}: {path} is (or is under) a symlink; refusing to edit through it")
    return target


def _read(clone: _Clone, path: str, branch: str) -> str:
    """The file's text at the checked-out head; missing or not UTF-8 is a GitOpsError."""
    target = _file(clone, path)
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
    _check_branch(branch)
    with _Clone(repo_url, workdir) as clone:
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


def _attempt(clone: _Clone, path: str, edit: Callable[[str], tuple[str, bool]], commit: CommitSpec,
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
    _file(clone, path).write_bytes(new.encode("utf-8"))
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
    _check_branch(branch)
    with _Clone(repo_url, workdir) as clone:
        heads = clone.remote_heads(branch)
        if branch not in heads:
            raise GitOpsError(f"{clone.safe_url} has no branch {branch!r}: cannot read the history of {path}")
        clone.fetch(branch)
        _file(clone, path)  # refuses paths outside the repository
        return find_hold_in(clone.repo, f"refs/remotes/origin/{branch}", path, digest,
                            mentions=mentions, max_commits=max_commits)

