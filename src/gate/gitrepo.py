"""Git for promote and reconcile: one local mirror of a remote, the only code that talks to git.

``Mirror`` is a clone of one remote in a cache folder, kept between runs so a run fetches only what
is new, and locked while in use (several promotions or reconcilers may share the folder). Every git
command goes through ``Mirror.run``: no prompt for credentials, a time limit on network commands,
and a failure reported as one line without credentials. The remote URL is written to the clone's
``.git/config``, never passed on a command line (``ps`` and a debug log would show its password).

This is the only module that imports GitPython (inside functions: ``gate --help`` does not pay
for it) or runs the git binary. Promotion write-back (gate.promote.gitops), rollback holds
(gate.promote.history) and the reconciler's source (gate.reconcile.source) build on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Self, TypeVar

from gate.errors import GateError, GitOpsError, UsageError
from gate.redact import redact, redact_url, url_secrets

if TYPE_CHECKING:
    from git import Repo

__all__ = ["LOG_HEAD_TRAILER", "NETWORK_TIMEOUT", "FileChange", "Mirror", "check_branch", "log_head_anchors",
           "read_at_head"]

T = TypeVar("T")

#: seconds one network git command (ls-remote, fetch, push) may take before it is killed
NETWORK_TIMEOUT = 120.0
#: the trailer of every promotion commit holding the decision log's head at promotion time: a copy of
#: the head outside the log, which ``gate decisions verify --gitops-repo`` checks is still in the chain
LOG_HEAD_TRAILER = "Gate-Log-Head"
_BRANCH = re.compile(r"^(?!-)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]+(?<![./])$")
_NO_BLOB = "0" * 40


def check_branch(branch: str) -> None:
    """Refuse a branch name that would be read as an option or a refspec."""
    if not _BRANCH.match(branch) or branch.endswith(".lock"):
        raise UsageError(f"GitOps branch {branch!r} is not a plain branch name")


@dataclass(frozen=True)
class FileChange:
    """One commit that changed a file, as seen from its first parent."""

    sha: str
    author: str
    #: the author date, YYYY-MM-DD
    day: str
    message: str
    #: values of the commit's Gate-Decision trailers
    decisions: tuple[str, ...]
    #: blob ids of the file before (in the first parent) and after; None where it did not exist
    before: str | None
    after: str | None


class Mirror:
    """A local clone of ``url`` under ``root`` (a temporary folder when None), locked while entered.

    ``error`` is the GateError raised when a git command fails; ``unreachable`` (default ``error``)
    when a network command (ls-remote, fetch, push) does: the reconciler retries those later.
    """

    def __init__(self, url: str, root: Path | None, *, key: str | None = None,
                 error: type[GateError] = GitOpsError, unreachable: type[GateError] | None = None) -> None:
        """Remember where; nothing is touched until the block is entered."""
        self.url = url
        self.safe_url = redact_url(url)
        self._secrets = url_secrets(url)
        self._root = root
        self._key = key or hashlib.sha256(self.safe_url.encode()).hexdigest()[:16]
        self._error = error
        self._unreachable = unreachable or error
        self._stack = contextlib.ExitStack()
        self.dir = (root / self._key) if root is not None else Path()

    def __enter__(self) -> Self:
        """Lock the cache entry and open (or start) the clone in it, its remote set in its config."""
        import git

        try:
            if self._root is None:
                root = Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="gate-git-")))
            else:
                root = self._root
                root.mkdir(parents=True, exist_ok=True)
            lock = self._stack.enter_context(open(root / f"{self._key}.lock", "w"))
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            self.dir = root / self._key
            self.repo: Repo = git.Repo(self.dir) if (self.dir / ".git").is_dir() else git.Repo.init(self.dir)
            self._stack.callback(self.repo.close)
            # written to .git/config directly: never on a command line a process list or debug log shows
            with self.repo.config_writer() as cw:
                cw.set_value('remote "origin"', "url", self.url)
                cw.set_value('remote "origin"', "fetch", "+refs/heads/*:refs/remotes/origin/*")
        except (git.GitError, OSError) as e:
            self._stack.close()
            where = self._root or "a temporary folder"
            raise self._error(f"{self.safe_url}: cannot prepare the local clone in {where}: "
                              f"{type(e).__name__}: {self.redact(str(e))}") from None
        return self

    def __exit__(self, *exc: object) -> None:
        """Close git's helper processes, unlock, and drop a temporary clone."""
        self._stack.close()

    # --- running git ------------------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` without credentials, the URL's password included (as written or decoded)."""
        return redact(text, self._secrets)

    def run(self, *args: str, what: str, network: bool = False, check: bool = True,
            env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
        """Run ``git args`` in the clone; a failure (when ``check``) is a one-line error naming ``what``."""
        status, out, err = self.repo.git.execute(
            ["git", *args], with_extended_output=True, with_exceptions=False,
            kill_after_timeout=NETWORK_TIMEOUT if network else None,
            env={"GIT_TERMINAL_PROMPT": "0", **(env or {})})
        if check and status != 0:
            error = self._unreachable if network else self._error
            raise error(f"{self.safe_url}: {what} failed: {self.reason(err, out)}")
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

    # --- the remote -------------------------------------------------------------------------------

    def remote_heads(self, *branches: str) -> dict[str, str]:
        """The remote's branch heads (name → sha), all of them when no names are given."""
        refs = [f"refs/heads/{b}" for b in branches]
        _, out, _ = self.run("ls-remote", "--heads", "origin", *refs, what="reaching the repository", network=True)
        heads = {}
        for line in out.splitlines():
            sha, _, ref = line.partition("\t")
            heads[ref.removeprefix("refs/heads/")] = sha
        return heads

    def fetch(self, *branches: str) -> None:
        """Fetch these branches into ``origin/<branch>``."""
        specs = [f"+refs/heads/{b}:refs/remotes/origin/{b}" for b in branches]
        self.run("fetch", "--no-tags", "--quiet", "origin", *specs, what="fetch", network=True)

    def fetch_existing(self, branch: str, what: str) -> None:
        """Fetch ``branch``; a remote without it is an error saying it cannot do ``what``."""
        if branch not in self.remote_heads(branch):
            raise self._error(f"{self.safe_url} has no branch {branch!r}: cannot {what}")
        self.fetch(branch)

    # --- the work tree and history ----------------------------------------------------------------

    def reset(self, ref: str) -> None:
        """Make the work tree exactly ``ref`` (detached), dropping anything a crashed run left."""
        self.run("-c", "advice.detachedHead=false", "checkout", "--force", "--detach", ref, what="checkout")
        self.run("clean", "-ffdxq", what="clean")

    def file(self, path: str) -> Path:
        """The work-tree file for ``path``; a path leaving the repository or a symlink is refused."""
        rel = PurePosixPath(path)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise self._error(f"{self.safe_url}: path {path!r} must be relative and inside the repository")
        target = self.dir
        for part in rel.parts:
            target = target / part
            if target.is_symlink():
                raise self._error(f"{self.safe_url}: {path} is (or is under) a symlink; refusing to edit through it")
        return target

    def commit(self, rev: str = "HEAD") -> tuple[str, str, dict[str, str]]:
        """``rev``'s sha, subject and git trailers (last value per key)."""
        _, out, _ = self.run("log", "-1", "--format=%H%x00%s%x00%(trailers:only,unfold)", rev, "--",
                             what=f"reading commit {rev}")
        sha, subject, raw = (out.split("\x00", 2) + ["", ""])[:3]
        trailers: dict[str, str] = {}
        for line in raw.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip():
                trailers[key.strip()] = value.strip()
        return sha.strip(), subject, trailers

    def trailer_values(self, rev: str, key: str) -> list[tuple[str, str]]:
        """``(commit sha, value)`` for every ``key`` trailer of every commit reachable from ``rev``, newest first."""
        fmt = f"--format=%H%x09%(trailers:key={key},valueonly,unfold,separator=%x09)"
        _, out, _ = self.run("log", fmt, rev, "--", what="reading the history")
        found = []
        for line in out.splitlines():
            sha, *values = line.split("\t")
            found += [(sha, value.strip()) for value in values if value.strip()]
        return found

    def file_changes(self, rev: str, path: str, max_count: int) -> Iterator[FileChange]:
        """The commits that changed ``path`` on ``rev``'s first-parent line, newest first."""
        fmt = "--format=%x1e%H%x00%an%x00%as%x00%(trailers:key=Gate-Decision,valueonly,separator=%x01)%x00%B%x00"
        _, out, _ = self.run("log", "--first-parent", "--no-renames", "--raw", "--no-abbrev", f"--max-count={max_count}",
                             fmt, rev, "--", path, what=f"reading the history of {path}")
        for record in out.split("\x1e")[1:]:
            sha, author, day, decisions, message, raw = record.split("\x00", 5)
            before = after = None
            for line in raw.splitlines():
                fields = line.split("\t", 1)[0].split()
                if line.startswith(":") and len(fields) >= 4:  # :mode mode old-blob new-blob status
                    before = None if fields[2] == _NO_BLOB else fields[2]
                    after = None if fields[3] == _NO_BLOB else fields[3]
            yield FileChange(sha, author, day, message, tuple(d for d in decisions.split("\x01") if d.strip()),
                             before, after)

    def blob_text(self, blob: str) -> str:
        """A blob's content as text (undecodable bytes replaced)."""
        status, out, err = self.repo.git.execute(["git", "cat-file", "blob", blob], with_extended_output=True,
                                                 with_exceptions=False, stdout_as_string=False)
        if status != 0:
            raise self._error(f"{self.safe_url}: reading blob {blob[:12]} failed: {self.reason(_text(err))}")
        return _text(out)


def _text(output: str | bytes) -> str:
    return output.decode("utf-8", "replace") if isinstance(output, bytes) else output


def read_at_head(repo_url: str, read: Callable[[Path], T], *, branch: str = "main", workdir: Path | None = None) -> T:
    """``read(root)`` on the work tree of ``branch``'s head, fetched now (e.g. the repository's
    gate-environments.yaml: gate.environments.read_bindings)."""
    check_branch(branch)
    with Mirror(repo_url, workdir) as mirror:
        mirror.fetch_existing(branch, "read it")
        mirror.reset(f"origin/{branch}")
        return read(mirror.dir)


def log_head_anchors(repo_url: str, *, branch: str = "main", workdir: Path | None = None) -> list[tuple[str, str]]:
    """``(commit sha, log head)`` for every ``Gate-Log-Head`` trailer in ``branch``'s history, newest first.

    Every commit reachable from the branch counts (merged promotion branches too), not only the
    first-parent line: each one's anchored head must still be a record of the decision log.
    """
    check_branch(branch)
    with Mirror(repo_url, workdir) as mirror:
        mirror.fetch_existing(branch, f"read its {LOG_HEAD_TRAILER} trailers")
        return mirror.trailer_values(f"refs/remotes/origin/{branch}", LOG_HEAD_TRAILER)
