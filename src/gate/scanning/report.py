"""Opening a report file safely: existence, size limit, digest, and cheap access to its bytes."""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gate.errors import ReportError

#: Reports larger than this are refused (override with GATE_MAX_REPORT_MB).
DEFAULT_MAX_REPORT_MB = 1024
HEAD_BYTES = 64 * 1024


def max_report_bytes() -> int:
    """The size limit for one report, from GATE_MAX_REPORT_MB."""
    raw = os.environ.get("GATE_MAX_REPORT_MB", str(DEFAULT_MAX_REPORT_MB))
    try:
        megabytes = int(raw)
    except ValueError:
        raise ReportError("GATE_MAX_REPORT_MB", f"not a whole number of megabytes: {raw!r}") from None
    return megabytes * 1024 * 1024


class Report:
    """A report file, checked and hashed once; its content is read on demand.

    ``head`` holds the first bytes for format detection. ``buffer()`` maps the file instead of
    reading it, so a parser that takes a buffer does not hold a second copy of a large report.
    """

    def __init__(self, path: Path, size: int, sha256: str, head: bytes) -> None:
        self.path = path
        self.size = size
        self.sha256 = sha256
        self.head = head

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Report:
        """Check ``path`` is a readable, non-empty file within the size limit, and hash it."""
        p = Path(path)
        try:
            st = p.stat()
        except FileNotFoundError:
            raise ReportError(p, "no such file") from None
        except OSError as e:
            raise ReportError(p, f"cannot read: {e.strerror}") from None
        if not p.is_file():
            raise ReportError(p, "not a regular file")
        limit = max_report_bytes()
        if st.st_size > limit:
            raise ReportError(
                p, f"report is {st.st_size} bytes, over the limit of {limit} (set GATE_MAX_REPORT_MB)"
            )
        if st.st_size == 0:
            raise ReportError(p, "report is empty")
        digest = hashlib.sha256()
        try:
            with p.open("rb") as f:
                head = f.read(HEAD_BYTES)
                digest.update(head)
                read = len(head)
                for chunk in iter(lambda: f.read(1024 * 1024), b""):
                    read += len(chunk)
                    if read > limit:  # still growing while read: never read without bound
                        raise ReportError(p, f"report grew past the limit of {limit} bytes while read")
                    digest.update(chunk)
        except OSError as e:
            raise ReportError(p, f"cannot read: {e.strerror}") from None
        if not head.strip():
            raise ReportError(p, "report contains only whitespace")
        return cls(p, st.st_size, digest.hexdigest(), head)

    def error(self, problem: str) -> ReportError:
        """A ``ReportError`` naming this report."""
        return ReportError(self.path, problem)

    @contextmanager
    def buffer(self) -> Iterator[mmap.mmap]:
        """The whole content as a read-only memory map (no copy on the heap)."""
        with self.path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            yield m

    @contextmanager
    def binary(self) -> Iterator[object]:
        """The content as a binary file object, for streaming parsers."""
        with self.path.open("rb") as f:
            yield f

    def lines(self) -> Iterator[tuple[int, str]]:
        """Numbered text lines (UTF-8), streamed; an undecodable line is a ``ReportError``."""
        with self.path.open("rb") as f:
            for number, raw in enumerate(f, start=1):
                try:
                    yield number, raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError:
                    raise self.error(f"line {number} is not UTF-8 text") from None

    def head_text(self) -> str:
        """The first bytes as text, for detection (undecodable bytes replaced)."""
        return self.head.decode("utf-8", errors="replace").lstrip("\ufeff")
