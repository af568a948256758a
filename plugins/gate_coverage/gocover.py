"""Go coverage profiles (``go test -coverprofile``), streamed line by line.

After a ``mode: set|count|atomic`` line, each line is a block ``file:l.c,l.c numStmts count``. Go
measures statements, not lines, so ``line_rate`` here is the statement rate (what ``go tool cover
-func`` prints as "total"), and there are no branches. With ``-coverpkg`` a block is listed once per
test binary; repeats of a block merge (covered if any run covered it), as ``go tool cover`` does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gate_coverage.totals import Counts, Coverage, CoverageBuilder

if TYPE_CHECKING:
    from gate.scanning.report import Report

MODES = ("set", "count", "atomic")
_BLOCK = re.compile(r"(?P<file>.+):(?P<pos>\d+\.\d+,\d+\.\d+) (?P<stmts>\d+) (?P<count>\d+)")


def read(report: Report) -> Coverage:
    """Statements per file, each block counted once."""
    # file -> block position -> (statements, covered)
    blocks: dict[str, dict[str, tuple[int, bool]]] = {}
    mode_seen = False
    for n, text in report.lines():
        line = text.strip()
        if not line:
            continue
        if line.startswith("mode:"):
            # profiles concatenated from several packages repeat the mode line
            if line[5:].strip() not in MODES:
                raise report.error(
                    f"line {n}: unknown coverage mode {line[5:].strip()!r} (expected set, count or atomic)"
                )
            mode_seen = True
            continue
        if not mode_seen:
            raise report.error(f"line {n}: a Go coverage profile starts with 'mode: set|count|atomic'")
        m = _BLOCK.fullmatch(line)
        if m is None:
            raise report.error(
                f"line {n}: not a coverage block 'file:line.col,line.col statements count': {line[:80]!r}"
            )
        file_blocks = blocks.setdefault(m["file"], {})
        stmts, covered = int(m["stmts"]), int(m["count"]) > 0
        if (seen := file_blocks.get(m["pos"])) is not None:
            stmts, covered = max(seen[0], stmts), seen[1] or covered
        file_blocks[m["pos"]] = (stmts, covered)
    builder = CoverageBuilder(report)
    for path, file_blocks in blocks.items():
        valid = sum(stmts for stmts, _ in file_blocks.values())
        builder.counted(path, Counts(sum(stmts for stmts, covered in file_blocks.values() if covered), valid))
    return builder.finish("no coverage blocks after the mode line")
