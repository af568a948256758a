"""Answers about a policy bundle kept between runs, in the user's cache folder.

Checking a bundle's calls against the engine's builtins costs more than judging a small report,
and the answer depends only on the sources and on the engine's and gate's versions: a pass is kept
under a key over all of them, so an edited bundle or another engine is checked afresh. Only a pass
is kept (a failure is recomputed, with its message). An entry that cannot be read is a miss and a
folder that cannot be written is not used. Nothing that decides what a result means (rule
METADATA) is kept here: the folder may be restored from elsewhere (a CI cache).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gate.version import __version__


def cache_home() -> Path:
    """``$GATE_CACHE_DIR``, else ``$XDG_CACHE_HOME/gate`` (``~/.cache/gate`` when unset)."""
    if os.environ.get("GATE_CACHE_DIR"):
        return Path(os.environ["GATE_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gate"


def cache_key(kind: str, engine_version: str, sources: Iterable[tuple[str, str]]) -> str:
    """A key over what ``kind``'s answer depends on: gate's version, the engine's, and each source's
    path (messages name it) and text, in the order they were compiled."""
    digest = hashlib.sha256(f"{kind}\0{__version__}\0{engine_version}\0".encode())
    for path, text in sources:
        for part in (path, text):
            encoded = part.encode()
            digest.update(len(encoded).to_bytes(8, "big"))
            digest.update(encoded)
    return digest.hexdigest()


def _entry(kind: str, key: str) -> Path:
    try:
        return cache_home() / "policy" / kind / key
    except RuntimeError as e:  # no XDG_CACHE_HOME and no home folder: as a folder that cannot be read
        raise OSError(str(e)) from None


def recall(kind: str, key: str) -> bytes | None:
    """What was kept for ``key`` under ``kind``, or None (never kept, or unreadable)."""
    try:
        return _entry(kind, key).read_bytes()
    except OSError:
        return None


def keep(kind: str, key: str, body: bytes = b"") -> None:
    """Keep ``body`` for ``key`` under ``kind`` (best effort: a cache that cannot be written is skipped)."""
    try:
        path = _entry(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # written under another name, then renamed: a reader never sees half an entry
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)
            raise
    except OSError:
        pass
