"""What every command module shares — exit codes, the parser class, writing results — so none imports gate.cli."""

from __future__ import annotations

import argparse
import os
import sys
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from gate.errors import GateError


class ExitCode(IntEnum):
    """What ``gate`` exits with (DESIGN.md's CLI contract)."""

    #: allowed / done / nothing wrong
    OK = 0
    #: denied by policy, or a check found a problem
    DENIED = 1
    #: no decision could be made: usage, bad input, engine, store or plugin failure (fail closed)
    ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line, like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.ERROR, f"gate: error: {message} (see `{self.prog} --help`)\n")


def emit(data: bytes | str, output: str | None) -> None:
    """Write a result to stdout, or to ``output`` (opened only now, so failures write nothing)."""
    payload = data.encode() if isinstance(data, str) else data
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
        return
    try:
        Path(output).write_bytes(payload)
    except OSError as e:
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    print(f"gate: wrote {output}", file=sys.stderr)


def emit_stream(chunks: Any, output: str | None) -> None:
    """Write a result produced in chunks (bytes or str): to stdout as it comes, or to ``output``
    through a temporary file renamed into place at the end, so a failure leaves no partial file."""
    if output is None:
        try:
            for chunk in chunks:
                sys.stdout.buffer.write(chunk.encode() if isinstance(chunk, str) else chunk)
            sys.stdout.flush()
        except BrokenPipeError:  # the reader stopped (| head): not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return
    import tempfile

    target = Path(output)
    try:
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
    except OSError as e:
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk.encode() if isinstance(chunk, str) else chunk)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)  # as a plainly created file would be (mkstemp makes 0600)
        os.replace(temp, target)
    except OSError as e:
        Path(temp).unlink(missing_ok=True)
        raise GateError(f"cannot write --output {output}: {e.strerror}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    print(f"gate: wrote {output}", file=sys.stderr)
