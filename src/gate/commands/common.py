"""What every command module shares — exit codes, the parser class, writing results — so none imports gate.cli."""

from __future__ import annotations

import argparse
import io
import os
import re
import sys
from collections.abc import Iterable
from enum import IntEnum
from pathlib import Path
from typing import Any, NoReturn

from gate.errors import GateError, closest_spelling


class ExitCode(IntEnum):
    """What ``gate`` exits with (DESIGN.md's CLI contract)."""

    #: allowed / done / nothing wrong
    OK = 0
    #: denied by policy, or a check found a problem
    DENIED = 1
    #: no decision could be made: usage, bad input, engine, store or plugin failure (fail closed)
    ERROR = 2


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit 2 with one line, like every other error, naming the help of the
    command that was typed at (``gate decisions list --help``) and, for a mistyped command, flag or
    choice, the closest spelling (Python 3.11's argparse has no ``suggest_on_error``).

    A command group needs its command (``gate decisions`` alone is a usage error naming its commands).
    A flag the command does not know is named before any missing required one: the likelier mistake.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.ERROR, f"gate: error: {message} (see `{self.prog} --help`)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        namespace, extras = self.parse_known_args(args, namespace)
        if extras:  # only the top level's own: a command's are reported by the command (below)
            self._unrecognized(extras)
        return namespace

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # A command (no command group below it) gets exactly its own arguments from its group: any it
        # does not know are reported here, by it, so the error points to its --help, not the top level's.
        leaf = args is not None and not any(isinstance(a, argparse._SubParsersAction) for a in self._actions)
        if leaf:
            unknown = [a for a in _flags_before_separator(args) if not self._knows_flag(a)]
            if unknown:
                self._unrecognized(unknown)
        namespace, extras = super().parse_known_args(args, namespace)
        if leaf and extras:
            self._unrecognized(extras)
        group = next((a for a in self._actions if isinstance(a, argparse._SubParsersAction)), None)
        named = group is not None and group.dest not in (None, argparse.SUPPRESS)  # where the choice is kept
        if group is not None and named and group.choices and getattr(namespace, str(group.dest), None) is None:
            self.error(f"choose a command: {', '.join(group.choices)}")
        return namespace, extras

    def _knows_flag(self, arg: str) -> bool:
        """Whether argparse would take ``arg`` as one of this parser's flags (``--flag=value``, a unique
        prefix, ``-vv``); a negative number or text with a space is a value, as argparse reads it."""
        if _NEGATIVE_NUMBER.match(arg) or " " in arg:
            return True
        flags = self._option_string_actions
        name = arg.split("=", 1)[0] if arg.startswith("--") else arg[:2]
        if name in flags or arg in flags:
            return True
        return arg.startswith("--") and self.allow_abbrev and any(f.startswith(name) for f in flags)

    def _unrecognized(self, extras: list[str]) -> NoReturn:
        message = f"unrecognized arguments: {' '.join(extras)}"
        first = next((a for a in extras if a.startswith("-")), None)
        if first is not None:
            typed = first.split("=", 1)[0]
            meant = closest_spelling(typed, [f for f in self._option_string_actions if f.startswith("--")])
            if meant is not None:
                message += f" (did you mean {meant}?)"
        self.error(message)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        choices = action.choices
        if choices is not None and value not in choices:
            names = [str(c) for c in choices]
            meant = closest_spelling(str(value), names)
            hint = f", did you mean {meant!r}?" if meant is not None else ""
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {', '.join(map(repr, names))})"
            )


#: what argparse reads as a (negative) number rather than a flag
_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def _flags_before_separator(args: Iterable[str]) -> list[str]:
    """The arguments that look like flags (``-x``, ``--x``), up to ``--`` (after it, all are values)."""
    flags = []
    for arg in args:
        if arg == "--":
            break
        if arg.startswith("-") and arg != "-":
            flags.append(arg)
    return flags


class Output:
    """Where a result goes: ``-o FILE`` or standard output, opened before the result exists.

    A command that records something (``gate evaluate``) opens its output first, so an unwritable
    destination (a missing folder, a closed stdout, a pipe nobody reads) fails before anything is
    recorded. A file is written to a temporary beside it and renamed into place, so a failure leaves
    no partial file; a device or FIFO (``-o /dev/stdout``) is written in place.
    """

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._temp: Path | None = None
        self._fd: int | None = None
        if path is None:
            _check_stdout()
            return
        target = Path(path)
        try:
            if target.exists() and not target.is_file():
                self._fd = os.open(target, os.O_WRONLY)
            else:
                import tempfile

                fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".partial")
                self._fd, self._temp = fd, Path(temp)
        except OSError as e:
            raise GateError(f"cannot write --output {path}: {e.strerror}") from None

    def write(self, chunks: Iterable[bytes | str]) -> None:
        """Write the whole result and put it in place; any failure is a ``GateError`` naming the destination."""
        try:
            if self._fd is None:
                for chunk in chunks:
                    sys.stdout.buffer.write(_bytes(chunk))
                sys.stdout.flush()
                return
            with os.fdopen(self._fd, "wb") as f:
                self._fd = None
                for chunk in chunks:
                    f.write(_bytes(chunk))
            if self._temp is not None:
                mask = os.umask(0)
                os.umask(mask)
                os.chmod(self._temp, 0o666 & ~mask)  # as a plainly created file would be (mkstemp makes 0600)
                os.replace(self._temp, Path(str(self.path)))
                self._temp = None
        except OSError as e:
            if self.path is None:
                _silence_stdout()
                raise GateError(f"cannot write to standard output: {e.strerror}") from None
            raise GateError(f"cannot write --output {self.path}: {e.strerror}") from None
        finally:
            self.discard()
        if self.path is not None:
            print(f"gate: wrote {self.path}", file=sys.stderr)

    def discard(self) -> None:
        """Drop what was not put in place (the command failed before writing): no partial file remains."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._temp is not None:
            self._temp.unlink(missing_ok=True)
            self._temp = None


def _bytes(chunk: bytes | str) -> bytes:
    return chunk.encode() if isinstance(chunk, str) else chunk


def _check_stdout() -> None:
    """Refuse a standard output that is closed (``>&-``) or a pipe whose reader is gone (``| head -c0``)."""
    closed = GateError("standard output is closed: nowhere to write the result (use -o FILE)")
    if sys.stdout is None:
        raise closed
    try:
        fd = sys.stdout.fileno()
        os.fstat(fd)
    except io.UnsupportedOperation:
        return  # not a real file (an in-process capture): nothing to check
    except (OSError, ValueError):
        raise closed from None
    import select

    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        if any(events & select.POLLERR for _, events in poller.poll(0)):
            raise GateError("standard output is a pipe nobody reads: nowhere to write the result (use -o FILE)")


def _silence_stdout() -> None:
    """After a failed write, point fd 1 at /dev/null: Python's exit-time flush must not print a second error."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


def emit(data: bytes | str, output: str | None) -> None:
    """Write a result to stdout, or to ``output`` (opened only now, so failures write nothing)."""
    Output(output).write([data])


def emit_stream(chunks: Any, output: str | None) -> None:
    """Write a result produced in chunks (bytes or str): to stdout as it comes, or to ``output``
    through a temporary file renamed into place at the end, so a failure leaves no partial file."""
    if output is not None:
        Output(output).write(chunks)
        return
    try:
        for chunk in chunks:
            sys.stdout.buffer.write(_bytes(chunk))
        sys.stdout.flush()
    except BrokenPipeError:  # the reader stopped (| head): not an error of ours
        _silence_stdout()


def add_engine_arguments(parser: argparse.ArgumentParser, *, no_push: bool = False, purpose: str = "") -> None:
    """``--engine`` and ``--opa-url`` (and, where the policies may already be on the server,
    ``--opa-no-push``): the same spelling for every command that evaluates Rego."""
    parser.add_argument(
        "--engine", choices=["embedded", "opa"], default="embedded",
        help=f"where Rego is evaluated{purpose}: embedded regorus (default) or an OPA server",
    )
    parser.add_argument("--opa-url", metavar="URL", help="OPA server for --engine opa (bearer token from GATE_OPA_TOKEN)")
    if no_push:
        parser.add_argument(
            "--opa-no-push", action="store_true",
            help="with --engine opa: expect the policies and data on the server instead of uploading them",
        )


def add_evidence_arguments(parser: argparse.ArgumentParser) -> None:
    """``--evidence`` and ``--vsa-max-age`` (gate reconcile, gate serve --admission; gate.reconcile.evidence)."""
    parser.add_argument(
        "--evidence", choices=["vsa", "log", "both"], default=None,
        help="what admits an image: log = its newest trusted allow in the decision log (replayed under today's "
        "policy); vsa = the signed SLSA VSA gate promote attached to it in its registry (valid, trusted key, "
        "this environment, PASSED, fresh), no decision log needed; both = both must pass. Default "
        "GATE_EVIDENCE, else evidence in gate.toml, else both when a decision log is configured "
        "(GATE_DECISION_STORE) or exists, else vsa; a configured log that cannot be opened is an error, never "
        "a silent step down to vsa",
    )
    parser.add_argument(
        "--vsa-max-age", metavar="AGE",
        help="with vsa or both evidence: the oldest VSA accepted, e.g. 30d or 720h (default GATE_VSA_MAX_AGE, "
        "else vsa_max_age in gate.toml, else 30d: as prod's max_decision_age, so today's policy reaches every "
        "running image within a month without the log's replay)",
    )


def add_policy_argument(
    parser: argparse.ArgumentParser,
    *,
    purpose: str = "",
    default: str = "the policy of gate.toml, else gate:library",
    data_help: str = "JSON or YAML whose top-level keys merge into data (waivers, thresholds); repeatable",
    data_default: str = "the data of gate.toml",
) -> None:
    """``--policy BUNDLE`` (repeatable: layers, bottom first) and ``--data FILE``: the same spelling for
    every command that takes a policy; read them back with ``policy_specs`` and ``data_files``."""
    parser.add_argument(
        "--policy", action="append", default=None, metavar="BUNDLE",
        help=(
            f"policy bundle{purpose}: gate:library (the library installed with gate), a bundle DIR, or "
            "oci://REGISTRY/REPO:TAG (or @sha256:D); repeatable, bottom first: a later bundle adds its own "
            f"packages and its data overrides the earlier ones' (default: {default})"
        ),
    )
    parser.add_argument(
        "--data", action="append", default=None, metavar="FILE",
        help=f"{data_help} (default: {data_default})",
    )


def given_policy_specs(args: argparse.Namespace) -> list[str]:
    """The ``--policy`` layers, else the configuration file's; ``[]`` when neither names one."""
    if args.policy:
        return list(args.policy)
    from gate import settings

    return list(settings.current().policy)


def policy_specs(args: argparse.Namespace) -> list[str]:
    """The policy layers to use: ``--policy``, else gate.toml's ``policy``, else the shipped library
    (never ``./policies`` unless named: the current directory is not trusted to hold the policy)."""
    from gate.policy.sources import SHIPPED

    return given_policy_specs(args) or [SHIPPED]


def data_files(args: argparse.Namespace) -> list[str]:
    """The ``--data`` files, else gate.toml's ``data``."""
    if args.data:
        return list(args.data)
    from gate import settings

    return list(settings.current().data)
