"""``gate plugins list``: which scanner plugins are installed."""

from __future__ import annotations

import argparse

from gate.commands.common import ExitCode, Parser, emit
from gate.commands.scan_evaluate import ScanFormat, scanner_registry


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate plugins list``."""
    plugins = commands.add_parser("plugins", help="inspect scanner plugins")
    plugin_commands = plugins.add_subparsers(dest="plugins_command", metavar="COMMAND", parser_class=Parser)
    listing = plugin_commands.add_parser(
        "list", help="the scanners found, the formats each reads, and which package provides it"
    )
    listing.add_argument("--format", choices=[f.value for f in ScanFormat], default=ScanFormat.TEXT.value)


def cmd_plugins_list(args: argparse.Namespace) -> ExitCode:
    rows = [
        {
            "name": info.scanner.name,
            "plugin": info.plugin,
            "version": info.version,
            "description": info.scanner.description,
            "formats": list(info.scanner.formats),
            "origin": info.origin,
        }
        for info in scanner_registry(args).infos()
    ]
    if args.format == ScanFormat.JSON:
        from gate.output import json as json_output

        emit(json_output.render({"scanners": rows}), None)
    else:
        from gate.output import text

        emit(text.render_plugins(rows), None)
    return ExitCode.OK
