"""``gate keys ...``: the signing keys of the decision log."""

from __future__ import annotations

import argparse
import sys

from gate.commands.common import ExitCode, Parser, emit


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate keys generate`` and ``gate keys public``."""
    keys = commands.add_parser("keys", help="signing keys for the decision log")
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", parser_class=Parser)
    generate = key_commands.add_parser(
        "generate", help="write a new Ed25519 key pair (private key PEM 0600, public key PEM)"
    )
    key_commands.add_parser(
        "public",
        help="print the public key of the signing key gate uses (GATE_SIGNING_KEY, or the local key), for verifiers",
    )
    generate.add_argument("--out", default=".", metavar="DIR", help="folder to write gate-signing.pem and gate-signing.pub.pem")


def cmd_keys_generate(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import generate_keypair, key_id, load_public_key

    private_path, public_path = generate_keypair(args.out)
    emit(
        f"private key: {private_path} (mode 0600: keep it secret; sign with GATE_SIGNING_KEY={private_path})\n"
        f"public key:  {public_path} (give it to verifiers: GATE_TRUSTED_KEYS)\n"
        f"key id:      {key_id(load_public_key(public_path))}\n",
        None,
    )
    return ExitCode.OK


def cmd_keys_public(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer

    signer = load_signer()
    if signer.created:
        print(f"gate: created a local signing key at {signer.path}", file=sys.stderr)
    emit(signer.public_pem(), None)
    print(f"gate: key id {signer.key_id} ({signer.path}); verifiers list this file in GATE_TRUSTED_KEYS", file=sys.stderr)
    return ExitCode.OK
