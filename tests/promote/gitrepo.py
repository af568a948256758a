"""Real git for the write-back tests: bare GitOps remotes, people's commits, and a `git daemon`.

Everything here drives the git command line (the same git gate uses), so the tests check what a
reviewer would see with `git log`, not what GitPython reports.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

#: a kustomization pinning one image by tag, as a GitOps repo holds it before gate promotes ``release``
KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization

# the cart service; gate pins its image
resources:
- deployment.yaml
images:
- name: {release}
  newTag: "0.9"
"""

#: identity for commits a "person" makes in the tests (there is no global git identity here)
PERSON = {"GIT_AUTHOR_NAME": "Alice", "GIT_AUTHOR_EMAIL": "alice@example.com",
          "GIT_COMMITTER_NAME": "Alice", "GIT_COMMITTER_EMAIL": "alice@example.com"}


def git(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: str | None = None) -> str:
    """Run git; its stdout without the final newline. A failure raises with git's stderr."""
    proc = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **PERSON, **(env or {})}, input=input,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.removesuffix("\n")


@dataclass
class Remote:
    """A bare repository playing the GitOps remote."""

    bare: Path

    @property
    def url(self) -> str:
        """The file:// URL gate is given."""
        return self.bare.as_uri()

    def head(self, branch: str = "main") -> str:
        """The sha the branch points at."""
        return git("rev-parse", f"refs/heads/{branch}", cwd=self.bare)

    def branches(self) -> list[str]:
        """All branch names."""
        return git("for-each-ref", "--format=%(refname:short)", "refs/heads/", cwd=self.bare).split()

    def show(self, path: str, rev: str = "main") -> str:
        """A file's text at ``rev``."""
        return git("show", f"{rev}:{path}", cwd=self.bare)

    def log(self, fmt: str, *args: str, rev: str = "main") -> str:
        """``git log --format=fmt`` on the remote."""
        return git("log", f"--format={fmt}", *args, rev, "--", cwd=self.bare)

    def count(self, rev: str = "main") -> int:
        """Number of commits reachable from ``rev``."""
        return int(git("rev-list", "--count", rev, cwd=self.bare))


def make_remote(root: Path, files: dict[str, str], name: str = "gitops.git") -> Remote:
    """A bare remote whose ``main`` has one commit with ``files``."""
    bare = root / name
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = root / f"{name}.seed"
    git("init", "--quiet", "--initial-branch=main", str(seed))
    for rel, text in files.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    git("add", "-A", cwd=seed)
    git("commit", "--quiet", "-m", "initial layout", cwd=seed)
    git("push", "--quiet", bare.as_uri(), "HEAD:refs/heads/main", cwd=seed)
    return Remote(bare)


@contextlib.contextmanager
def person_clone(remote: Remote, root: Path, branch: str = "main") -> Iterator[Path]:
    """A fresh clone where a test acts as a person; push with ``git push origin HEAD:main``."""
    n = 0
    while (root / f"person{n}").exists():
        n += 1
    work = root / f"person{n}"
    git("clone", "--quiet", "--branch", branch, remote.url, str(work))
    yield work


def person_commit(remote: Remote, root: Path, path: str, text: str, message: str) -> str:
    """A person writes ``text`` to ``path``, commits without trailers and pushes; the new sha."""
    with person_clone(remote, root) as work:
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_text(text)
        git("add", "--", path, cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def person_revert(remote: Remote, root: Path, sha: str) -> str:
    """A person runs ``git revert`` of ``sha`` and pushes; the revert's sha."""
    with person_clone(remote, root) as work:
        git("revert", "--no-edit", sha, cwd=work)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=work)
        return git("rev-parse", "HEAD", cwd=work)


def trailers(remote: Remote, rev: str = "main") -> list[str]:
    """The commit's trailers as ``git interpret-trailers --parse`` reads its message."""
    message = git("log", "-1", "--format=%B", rev, cwd=remote.bare)
    return git("interpret-trailers", "--parse", input=message).splitlines()


def set_image(ref: str) -> Callable[[str], tuple[str, bool]]:
    """An idempotent edit, standing in for edit.py: set the first ``image:`` line to ``ref``."""
    def edit(text: str) -> tuple[str, bool]:
        """The text with the image line set, and whether that changed it."""
        new = re.sub(r"(?m)^(\s*-?\s*image: ).*$", lambda m: m.group(1) + ref, text, count=1)
        return new, new != text
    return edit


def set_line(key: str, value: str) -> Callable[[str], tuple[str, bool]]:
    """An idempotent edit of one ``key: value`` line (for many writers of one file)."""
    def edit(text: str) -> tuple[str, bool]:
        """The text with the line set, and whether that changed it."""
        new = re.sub(rf"(?m)^{re.escape(key)}: .*$", f"{key}: {value}", text, count=1)
        return new, new != text
    return edit


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def git_daemon(base: Path) -> Iterator[str]:
    """``git daemon`` serving ``base`` on a free 127.0.0.1 port with push enabled; yields git://127.0.0.1:PORT.

    Stopped (terminated, then killed) when the block ends, even on failure. If it does not listen
    within 20 s the test fails with the daemon's own output.
    """
    port = free_port()
    log = base.parent / f"git-daemon-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--listen=127.0.0.1", f"--port={port}",
                                 f"--base-path={base}", "--export-all", "--enable=receive-pack",
                                 "--informative-errors", str(base)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"git daemon exited with {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"git daemon did not listen on 127.0.0.1:{port}: {log.read_text()}")
            time.sleep(0.05)
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
