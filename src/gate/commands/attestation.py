"""``gate attestation verify|show``: the signed SLSA VSAs attached to an image, read straight from its registry."""

from __future__ import annotations

import argparse
import json
from typing import Any

from gate.commands.common import ExitCode, Parser, add_policy_argument, data_files, emit, policy_specs


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate attestation verify`` and ``gate attestation show``."""
    attestation = commands.add_parser(
        "attestation", help="the signed SLSA VSAs gate promote attaches to images (verify, show)"
    )
    sub = attestation.add_subparsers(dest="attestation_command", metavar="COMMAND", parser_class=Parser)
    verify = sub.add_parser(
        "verify",
        help="check the VSA attached to IMAGE@DIGEST for an environment (0 passed, 1 not passed, 2 error)",
        description=(
            "Read the DSSE envelopes attached to the image in its registry (OCI referrers, and cosign's "
            "sha256-<hex>.att tag), keep those signed by a trusted key whose statement is gate's SLSA VSA for this "
            "digest and repository, this verifier and exactly this environment; the newest of them decides. "
            "Exit 0 when it is PASSED and fresh, 1 when it is FAILED, stale, dated in the future or there is none, "
            "2 on errors (bad reference, undeclared environment, registry unreachable, unreadable key)."
        ),
        epilog=(
            "example:\n"
            "  gate attestation verify registry.example.com/release/cart@sha256:3f1c... --env prod --key gate-signing.pub.pem\n"
            "trusted keys: --key, else GATE_TRUSTED_KEYS (else this machine's own signing key);\n"
            "registry credentials: ~/.docker/config.json or $DOCKER_CONFIG, as for gate promote"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument("image", metavar="IMAGE@DIGEST", help="the image, pinned by digest (REGISTRY/REPO[:TAG]@sha256:D)")
    verify.add_argument("--env", required=True, metavar="ENV", help="the environment the VSA must be for (declared in the policy data)")
    verify.add_argument(
        "--key", action="append", metavar="PUB",
        help="a trusted public key (PEM, or an ssh-ed25519 line); repeatable; replaces GATE_TRUSTED_KEYS",
    )
    verify.add_argument("--max-age", default="30d", metavar="DURATION", help="a VSA verified longer ago does not pass (default 30d)")
    verify.add_argument(
        "--verifier-id", metavar="URI",
        help="the verifier id the VSA must carry (default: GATE_VSA_VERIFIER_ID, else attestation.verifier_id in "
             "gate.toml, else https://github.com/promotion-gate/gate)",
    )
    add_policy_argument(
        verify, purpose=" whose data declares the environments (--env must be declared)",
        data_help="data files declaring more environments (environments: ...), as for gate evaluate; repeatable",
    )
    verify.add_argument("--format", choices=["text", "json"], default="text")
    attach = sub.add_parser(
        "attach",
        help="attach the VSA of the newest decision for IMAGE@DIGEST in an environment (0 attached, 1 refused, 2 error)",
        description=(
            "Sign the VSA of the decision that counts for the image's digest in --env (the newest one in the "
            "decision log; its record must be intact and signed by a trusted key) and attach it to IMAGE@DIGEST, "
            "as gate promote does. A deny or error decision attaches a FAILED VSA: that is how a cluster that "
            "admits on VSAs alone learns that a released digest no longer passes (evaluate it again; attach). "
            "An allow is attached only when nothing stands against it (an expired waiver is exit 1)."
        ),
        epilog=(
            "example (a new CVE: evaluate the released digest again, then tell offline clusters):\n"
            "  gate evaluate --image registry.example.com/release/cart@sha256:3f1c... --env prod --report trivy=trivy.json\n"
            "  gate attestation attach registry.example.com/release/cart@sha256:3f1c... --env prod"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    attach.add_argument("image", metavar="IMAGE@DIGEST", help="the image, pinned by digest, in the repository to attach to")
    attach.add_argument("--env", required=True, metavar="ENV", help="the environment whose newest decision is attested")
    add_policy_argument(
        attach, purpose=" whose data declares the environments (--env must be declared)",
        data_help="data files declaring more environments (environments: ...), as for gate evaluate; repeatable",
    )
    attach.add_argument("--dry-run", action="store_true", help="say which decision's VSA would be attached; sign and attach nothing")
    attach.add_argument("--format", choices=["text", "json"], default="text")
    show = sub.add_parser(
        "show",
        help="list the DSSE envelopes attached to IMAGE@DIGEST, what each says and whether a trusted key signed it",
    )
    show.add_argument("image", metavar="IMAGE@DIGEST", help="the image, pinned by digest")
    show.add_argument("--key", action="append", metavar="PUB", help="a trusted public key; repeatable; replaces GATE_TRUSTED_KEYS")
    show.add_argument("--format", choices=["text", "json"], default="text")


def _trusted(keys: list[str] | None) -> Any:
    from pathlib import Path

    from gate.decisions.signing import key_id, load_public_key, load_trust

    if not keys:
        return load_trust().keys
    loaded = {}
    for path in keys:
        public = load_public_key(Path(path).expanduser())
        loaded[key_id(public)] = public
    return loaded


def cmd_attestation_verify(args: argparse.Namespace) -> ExitCode:
    from gate.attestation.verify import verify_image
    from gate.decisions.timefilter import parse_duration
    from gate.environments import declared_environments
    from gate.evaluation import load_policy_data
    from gate.imageref import require_digest

    require_digest(args.image, "image")  # a bad reference is exit 2 before anything is read
    max_age = parse_duration(args.max_age, "--max-age")
    declared_environments(load_policy_data(policy_specs(args), data_files(args))[1]).require(args.env, "--env")
    trusted = _trusted(args.key)
    check = verify_image(args.image, args.env, trusted, max_age=max_age,
                         verifier_id=args.verifier_id)
    if args.format == "json":
        emit(json.dumps(check.as_dict(), indent=2) + "\n", None)
    else:
        lines = [f"{'PASSED' if check.passed else 'NOT PASSED'} {check.image} for {check.environment}: {check.reason}"]
        details = [("decision", check.decision_id), ("result", check.result), ("verified", check.time_verified),
                   ("signed by", check.key_id), ("policy", check.policy_digest), ("found at", check.attestation)]
        lines += [f"  {name}: {value}" for name, value in details if value]
        lines.append(f"  envelopes attached: {check.found}")
        emit("\n".join(lines) + "\n", None)
    return ExitCode.OK if check.passed else ExitCode.DENIED


def cmd_attestation_show(args: argparse.Namespace) -> ExitCode:
    from gate import dsse, rfc3339
    from gate.attestation.oci import fetch
    from gate.attestation.vsa import AttestationError, read_statement
    from gate.imageref import require_digest

    require_digest(args.image, "image")
    trusted = _trusted(args.key)
    rows: list[dict[str, Any]] = []
    for candidate in fetch(args.image):
        row: dict[str, Any] = {"where": candidate.where, "envelope_digest": candidate.digest, "problem": candidate.problem}
        if candidate.problem is None:
            try:
                payload, row["signed_by"] = dsse.verify(candidate.envelope, trusted)
            except dsse.EnvelopeError as e:
                row["signed_by"], row["problem"] = None, str(e)
                try:
                    payload = dsse.open_envelope(candidate.envelope)[1]
                except dsse.EnvelopeError:
                    payload = b""
            try:
                facts = read_statement(payload)
                row.update(environment=facts.environment, result=facts.result, decision_id=facts.decision_id,
                           time_verified=rfc3339.format(facts.time_verified), subject=f"{facts.subject_name}@{facts.subject_digest}",
                           verifier_id=facts.verifier_id)
            except AttestationError as e:
                row["problem"] = row["problem"] or str(e)
        rows.append(row)
    if args.format == "json":
        emit(json.dumps({"image": args.image, "attestations": rows}, indent=2) + "\n", None)
        return ExitCode.OK
    if not rows:
        emit(f"no attestations are attached to {args.image}\n", None)
        return ExitCode.OK
    lines = []
    for row in rows:
        head = f"{row.get('result', '?')} {row.get('environment', '?')} {row.get('time_verified', '')} decision {row.get('decision_id', '?')}"
        trust = f"signed by {row['signed_by']}" if row.get("signed_by") else "NOT signed by a trusted key"
        lines.append(f"{head} ({trust})")
        lines.append(f"  at {row['where']}")
        if row.get("problem"):
            lines.append(f"  problem: {row['problem']}")
    emit("\n".join(lines) + "\n", None)
    return ExitCode.OK


def cmd_attestation_attach(args: argparse.Namespace) -> ExitCode:
    from datetime import UTC, datetime

    from gate import rfc3339
    from gate.attestation import oci, vsa
    from gate.decisions.record import Outcome
    from gate.decisions.signing import load_signer, load_trust
    from gate.decisions.store import open_store
    from gate.decisions.trust import decision_trust
    from gate.environments import declared_environments
    from gate.evaluation import load_policy_data
    from gate.imageref import require_digest

    ref = require_digest(args.image, "image")
    assert ref.digest is not None
    declared_environments(load_policy_data(policy_specs(args), data_files(args))[1]).require(args.env, "--env")
    now = datetime.now(UTC)
    store = open_store(create=False)
    try:
        trust = decision_trust(store, ref.digest, args.env, load_trust().keys, now)
    finally:
        store.close()
    result: dict[str, Any] = {"image": args.image, "environment": args.env, "decision_id": None, "attached": None,
                              "reasons": []}
    decision = trust.decision
    if decision is None or not trust.checks:
        result["reasons"] = list(trust.problems)
    elif trust.checks[0].record_problem:
        result["decision_id"] = decision.decision_id
        result["reasons"] = [str(trust.checks[0].record_problem)]
    elif decision.outcome is Outcome.ALLOW and trust.problems:
        result["decision_id"] = decision.decision_id
        result["reasons"] = list(trust.problems)
    else:
        result["decision_id"] = decision.decision_id
        result["result"] = vsa.PASSED if decision.outcome is Outcome.ALLOW else vsa.FAILED
        if args.dry_run:
            result["attached"] = {"dry_run": True, "operations": [
                f"sign the {result['result']} VSA of decision {decision.decision_id} and attach it to {ref.name}@{ref.digest}"]}
        else:
            signer = load_signer()
            image = f"{ref.name}@{ref.digest}"
            statement = vsa.statement(decision, time_verified=rfc3339.parse(decision.timestamp), image=image)
            attached = oci.attach(image, vsa.sign(statement, signer), environment=decision.environment,
                                  decision_id=decision.decision_id, created=now)
            result["attached"] = {**attached.as_dict(), "key_id": signer.key_id}
    if args.format == "json":
        emit(json.dumps(result, indent=2) + "\n", None)
    elif result["attached"] is None:
        emit(f"REFUSED {args.image} for {args.env}: " + "; ".join(result["reasons"]) + "\n", None)
    elif args.dry_run:
        emit(f"DRY RUN {result['attached']['operations'][0]}\n", None)
    else:
        attached_ = result["attached"]
        state = "already attached" if attached_["already_present"] else "attached"
        emit(f"{result['result']} VSA of decision {result['decision_id']} {state}: {attached_['reference']}\n", None)
    return ExitCode.DENIED if result["attached"] is None else ExitCode.OK
