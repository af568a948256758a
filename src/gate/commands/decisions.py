"""``gate decisions ...``: query, verify, export, replay and count the decision log."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gate import __version__
from gate.commands.common import (
    ExitCode, Parser, add_policy_argument, data_files, emit, emit_stream, given_policy_specs, policy_specs,
)
from gate.commands.notifications import add_notify_argument
from gate.errors import GateError
from gate.output.formats import DecisionFormat


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate decisions`` and its subcommands."""
    from gate.decisions.events import OUTCOMES as EVENT_OUTCOMES

    decisions = commands.add_parser(
        "decisions",
        help="query, verify, export and replay the decision log",
        description="The decision log (GATE_DECISION_STORE: a path, sqlite:///PATH or postgresql://...).",
    )
    decision_commands = decisions.add_subparsers(dest="decisions_command", metavar="COMMAND", parser_class=Parser)

    def add_filters(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--digest", metavar="sha256:D", help="only decisions about this image digest")
        sub.add_argument("--image", metavar="REPO", help="only this image repository (any tag or digest)")
        sub.add_argument("--env", metavar="ENV", help="only this environment")
        sub.add_argument("--outcome", choices=["allow", "deny", "error"])
        sub.add_argument(
            "--rule", metavar="RULE", help="a policy rule id or a finding rule (CVE id) a deny reason names (any case)"
        )
        sub.add_argument(
            "--finding", metavar="ID",
            help="a CVE, rule or check id (or finding id) anywhere in the input: waived, below threshold, warned or denied (any case)",
        )
        sub.add_argument("--waiver", metavar="ID", help="only decisions that applied this waiver")
        sub.add_argument(
            "--triaged-by", metavar="ID",
            help="only decisions whose triage applied ID: a waiver id, a VEX statement id (DOC12/STATEMENT), "
            "or a VEX document digest sha256:… (12 or more hex digits are enough)",
        )
        sub.add_argument("--since", metavar="TIME", help="RFC 3339 time or date, or a duration ago: 30d, 12h")
        sub.add_argument("--until", metavar="TIME", help="RFC 3339 time or date, or a duration ago (exclusive)")
        sub.add_argument("--policy-digest", metavar="sha256:D", help="only decisions made under this policy bundle")

    def add_waiver_expired(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--waived", action="store_true", help="only decisions that applied at least one waiver")
        sub.add_argument(
            "--waiver-expired", action="store_true",
            help="only decisions that applied a waiver which has expired since (with --waiver: that waiver)",
        )

    listing_d = decision_commands.add_parser(
        "list",
        help="decisions matching the filters, newest first",
        description=(
            "Decisions matching every filter given, newest first. --format json prints one document, "
            '{"decisions": [...]}, each record without its input (gate decisions show ID --format json has it); '
            "--format csv has one row per decision with fixed columns. Auditors' questions: docs/audit.md."
        ),
    )
    add_filters(listing_d)
    add_waiver_expired(listing_d)
    listing_d.add_argument("--limit", type=int, metavar="N", help="at most N decisions")
    listing_d.add_argument("--format", choices=["text", "json", "csv"], default="text")

    show = decision_commands.add_parser("show", help="one decision: the whole record, its input, violations, waivers")
    show.add_argument("decision_id", metavar="ID")
    show.add_argument(
        "--format", choices=[f.value for f in DecisionFormat], default="text",
        help="text: the whole record with its events; the others: the decision rendered as gate evaluate "
        "writes it (--output FORMAT=FILE), byte for byte",
    )

    verify = decision_commands.add_parser(
        "verify",
        help="re-hash every record and check the chain and every signature (exit 0 intact, 1 tampered)",
        description=(
            "Recompute every record's input digest and hash, check each prev_hash links to the record "
            "before it, and check every signature against GATE_TRUSTED_KEYS; then the same for the chain of "
            "events (promotions, syncs). Exit 1 naming the first bad record on any edit, reordering or deletion. "
            "A cut tail (the newest records deleted and the sequence counter lowered) leaves a perfect chain: "
            "anchor the head kept elsewhere with --expect-head, or check the Gate-Log-Head trailer of every "
            "promotion commit with --gitops-repo. A missing log is exit 2 (verify never creates one). "
            "A large log is walked by one process per CPU. --checkpoint stores a checkpoint signed with "
            "GATE_SIGNING_KEY after a fully successful verify; later verifies still re-hash and re-link every "
            "record but skip the Ed25519 check of each signature up to the newest checkpoint signed by a trusted "
            "key (all the keys it covers still trusted, its hash still the chain's); see docs/audit.md."
        ),
    )
    verify.add_argument(
        "--checkpoint", action="store_true",
        help="after a fully successful verify, store a checkpoint of the chain head signed with GATE_SIGNING_KEY (a trusted key)",
    )
    verify.add_argument(
        "--full", action="store_true",
        help="check every record's signature, trusting no checkpoint (checkpoints are still checked against the chain)",
    )
    verify.add_argument(
        "--since-head", metavar="sha256:H",
        help="verify only the records after the record with hash H (a head printed by an earlier verify): exit 1 unless H is in the chain",
    )
    verify.add_argument(
        "--processes", type=int, metavar="N",
        help="processes that walk the log (default: one per CPU from 20,000 records, else one)",
    )
    verify.add_argument(
        "--expect-head", action="append", default=[], metavar="sha256:H",
        help="a chain head seen earlier (--format json prints it as head): exit 1 unless it is still a record of the chain; repeatable",
    )
    verify.add_argument(
        "--gitops-repo", metavar="URL",
        help="check the Gate-Log-Head trailer of every commit on the GitOps branch: each anchored head must be in the chain",
    )
    verify.add_argument("--gitops-branch", default="main", metavar="BRANCH", help="the branch whose history is read (default main)")
    verify.add_argument("--format", choices=["text", "json"], default="text")

    events = decision_commands.add_parser(
        "events",
        help="what happened after decisions: promotions (done, refused, no-op) and reconciler syncs, newest first",
        description=(
            "Events matching every filter given, newest first. --format json prints one document, "
            '{"events": [...]}; --format csv one row per event with fixed columns. Auditors\' questions: docs/audit.md.'
        ),
    )
    events.add_argument("--decision", metavar="ID", help="only events about this decision")
    events.add_argument("--kind", "--type", dest="kind", choices=["promotion", "sync"], help="only promotions or only syncs")
    events.add_argument(
        "--outcome", choices=sorted({o for outcomes in EVENT_OUTCOMES.values() for o in outcomes}),
        help="promotions: done, noop, refused, error; syncs: synced, blocked, error",
    )
    events.add_argument("--env", metavar="ENV", help="only this environment")
    events.add_argument("--digest", metavar="sha256:D", help="only events about this image digest")
    events.add_argument(
        "--waived", action="store_true", help="only events about a decision that applied at least one waiver"
    )
    events.add_argument("--since", metavar="TIME", help="RFC 3339 time or date, or a duration ago: 30d, 12h")
    events.add_argument("--until", metavar="TIME", help="RFC 3339 time or date, or a duration ago (exclusive)")
    events.add_argument("--limit", type=int, metavar="N", help="at most N events")
    events.add_argument("--format", choices=["text", "json", "csv"], default="text")

    export = decision_commands.add_parser(
        "export",
        help="write records as JSON lines, or as OPA decision-log events; --follow / --url ship them to a SIEM",
        description=(
            "Write the matching records oldest first: --format jsonl, each full record (re-verifiable), or "
            "--format opa, each as an OPA decision-log event, with the fields the policy data masks erased when "
            "a policy is given (--policy or gate.toml; data.gate.config.log.mask in the bundle, data.log.mask in "
            "--data: JSON pointers under /input or /result). Shipping (--follow, --url, --state or --since-seq) "
            "sends OPA events only, always masked (the policy defaults to gate:library there): the log is read in "
            "append order in batches of --batch-size sequence numbers; each batch goes to stdout as JSON lines "
            "or is POSTed to --url gzip-compressed (a JSON array, as OPA's decision-log plugin sends), with "
            "Authorization from $GATE_EXPORT_AUTHORIZATION if set. Connection errors, 408, 429 and 5xx are "
            "retried with exponential backoff for --retry-for seconds; giving up (or any other answer) exits 2 "
            "naming the batch, and --state still holds the last delivered seq, so a restart resends from there "
            "(a batch whose answer was lost may arrive twice: de-duplicate on decision_id). --follow polls every "
            "--interval seconds, retries a log that is briefly unavailable, and on SIGTERM/SIGINT delivers the "
            "batch in hand and exits 0. Details: docs/audit.md."
        ),
    )
    add_filters(export)
    add_waiver_expired(export)
    export.add_argument("--format", choices=["jsonl", "opa"], help="jsonl (default) or opa (the default when shipping)")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout (not when shipping)")
    add_policy_argument(
        export, purpose=" whose data.gate.config.log.mask masks OPA events",
        default="the policy of gate.toml, else no mask; shipping: gate:library",
        data_help="data files whose data.log.mask adds pointers to the bundle's; repeatable",
    )
    export.add_argument("--follow", action="store_true", help="keep shipping records as they are appended, until SIGTERM/SIGINT")
    export.add_argument("--url", metavar="URL", help="POST batches of OPA events to this decision-log endpoint instead of stdout")
    export.add_argument(
        "--state", metavar="FILE",
        help="keep the last shipped seq here and resume after it (created on the first delivered batch)",
    )
    export.add_argument(
        "--since-seq", type=int, metavar="N",
        help="ship the records after seq N (default: from the state file; else the newest with --follow, else all)",
    )
    export.add_argument("--interval", type=float, default=5.0, metavar="SECONDS", help="--follow: poll the log this often (default 5)")
    export.add_argument("--batch-size", type=int, default=100, metavar="N", help="sequence numbers per batch (default 100)")
    export.add_argument(
        "--retry-for", type=float, default=300.0, metavar="SECONDS",
        help="--url: retry a batch this long before giving up (default 300)",
    )

    replay = decision_commands.add_parser(
        "replay",
        help="re-decide stored inputs under another policy bundle and show what would flip (records nothing)",
        description=(
            "Evaluate the stored input of every matching decision under the policy (--policy layers, default "
            "gate.toml's policy, else gate:library), each as at "
            "its own decision time (waiver expiry, effective_on), and list the decisions that would flip "
            "allow→deny or deny→allow with the violations that appear or go. Nothing is recorded. Exit 0; "
            "2 when the bundle does not compile or no matching decision could be replayed."
        ),
    )
    add_filters(replay)
    # not gate.toml's data: by default a replay judges each record with the data it was decided with
    add_policy_argument(
        replay, purpose=" to replay under",
        data_help="data files (waivers, thresholds) to judge every record with; repeatable",
        data_default="each record's own recorded --data",
    )
    replay.add_argument("--format", choices=["text", "json"], default="text")

    stats = decision_commands.add_parser(
        "stats", help="counts by outcome, top blocking rules and CVEs, waivers used and expiring"
    )
    add_filters(stats)
    add_waiver_expired(stats)
    stats.add_argument("--top", type=int, default=10, metavar="N", help="rules and findings listed (default 10)")
    stats.add_argument("--format", choices=["text", "json"], default="text")

    waivers = decision_commands.add_parser(
        "waivers",
        help="the waivers of the policy data that expire within a window (default: data.waiver_warning_days)",
        description=(
            "List the waivers the policy defines — its layers' data and every --data file, as gate evaluate would "
            "merge them (gate.toml's policy and data by default) — that are active now and expire within --expiring, "
            "soonest first: the waivers someone must renew or let lapse. Expired ones are not listed (gate decisions "
            "list --waiver-expired finds the decisions that relied on them). Exit 0 whatever is listed; with --notify "
            "(or [notify] in gate.toml) one waiver.expiring notification lists them."
        ),
    )
    add_policy_argument(waivers, purpose=" whose data holds the waivers")
    waivers.add_argument(
        "--expiring", metavar="DURATION",
        help="the window from now: 14d, 2w, 36h (default: data.waiver_warning_days of the policy, else 14d)",
    )
    waivers.add_argument("--env", metavar="ENV", help="only the waivers that apply in ENV (theirs, or no environment set)")
    waivers.add_argument("--format", choices=["text", "json"], default="text")
    add_notify_argument(waivers, what="with the waivers listed (waiver.expiring; none when nothing expires)")


def cmd_decisions_replay(args: argparse.Namespace) -> ExitCode:
    from gate.replay import replay
    from gate.decisions.store import open_store

    query = _decision_query(args)
    policy = policy_specs(args)
    policy_data = None
    if args.env is not None:  # replaying under a bundle that does not declare the environment decides nothing
        from gate.environments import require_environment
        from gate.evaluation import load_policy_data

        policy_data = load_policy_data(policy, args.data or [])  # read once: replay compiles it
        require_environment(args.env, policy_data[1])
    store = open_store(create=False)
    try:
        report = replay(store, query, policy, args.data or [], policy_data=policy_data)
    finally:
        store.close()
    if args.format == "json":
        from gate.output import json as json_output

        emit(json_output.render(report.as_dict()), None)
    else:
        from gate.output import replay_text

        emit(replay_text.render(report), None)
    if report.replayed and not report.decided:
        print(f"gate: error: none of the {report.replayed} decision(s) could be replayed", file=sys.stderr)
        return ExitCode.ERROR
    return ExitCode.OK


def _decision_query(args: argparse.Namespace, **overrides: Any) -> Any:
    """The filter flags of a ``gate decisions`` command as a DecisionQuery (times as the log stores them)."""
    from dataclasses import replace
    from datetime import UTC, datetime

    from gate import rfc3339
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.timefilter import time_range
    from gate.errors import UsageError

    now = datetime.now(UTC)
    since, until = time_range(args.since, args.until, now)
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit {limit}: give 0 or more")
    query = DecisionQuery(
        digest=args.digest,
        image=args.image,
        environment=args.env,
        outcome=args.outcome,
        rule=args.rule,
        finding=args.finding,
        waiver=args.waiver,
        triaged_by=getattr(args, "triaged_by", None),
        since=since,
        until=until,
        policy_digest=args.policy_digest,
        waived=getattr(args, "waived", False),
        waiver_expired_before=rfc3339.format(now) if getattr(args, "waiver_expired", False) else None,
        limit=limit,
    )
    return replace(query, **overrides)


@contextlib.contextmanager
def _queried(query: Any, left_out: list[Any]) -> Iterator[Any]:
    """The decisions ``query`` selects, streamed from the store; closed before the store is. A record
    that cannot be decoded is skipped and added to ``left_out`` (see _report_left_out)."""
    from gate.decisions.store import open_store

    store = open_store(create=False)
    try:
        decisions = store.query(query, on_undecodable=left_out.append)
        try:
            yield decisions
        finally:
            close = getattr(decisions, "close", None)
            if close is not None:  # a reader that stopped early: release the cursor while the store is open
                close()
    finally:
        store.close()


def _report_left_out(left_out: list[Any]) -> ExitCode:
    """OK, or — once the rest was written — exit 2 naming the records that could not be decoded:
    one damaged record does not hide the log, and is not silently missing from it either."""
    if not left_out:
        return ExitCode.OK
    first = left_out[0]
    more = f" and {len(left_out) - 1} more" if len(left_out) > 1 else ""
    were = "were" if more else "was"
    raise GateError(
        f"decision log {first.location}: {first.describe()}{more} cannot be decoded and {were} left out;"
        " run `gate decisions verify`"
    )


def cmd_decisions_list(args: argparse.Namespace) -> ExitCode:
    left_out: list[Any] = []
    # a listing prints no input: records are read in stored form, without their documents
    with _queried(_decision_query(args, with_input=False), left_out) as decisions:
        if args.format == "json":
            from gate.output import decisions_json

            emit_stream(decisions_json.render_list(decisions), None)
        elif args.format == "csv":
            from gate.output import decisions_csv

            emit_stream(decisions_csv.render_list(decisions), None)
        else:
            from gate.output import decisions_text

            emit_stream([decisions_text.render_list(decisions)], None)
    return _report_left_out(left_out)


def cmd_decisions_show(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.store import open_store

    from gate.decisions.events import EventQuery

    store = open_store(create=False)
    try:
        decision = store.get(args.decision_id)
        location = store.location
        events = list(store.events(EventQuery(decision_id=args.decision_id, oldest_first=True))) if decision else []
    finally:
        store.close()
    if decision is None:
        raise GateError(f"no decision {args.decision_id!r} in the decision log {location}")
    if args.format == "text":
        from gate.output import decisions_text, events_text

        emit(decisions_text.render_show(decision) + "\nEvents:\n" + events_text.render_list(events), None)
    else:
        from gate.output.formats import render_decision

        # json is the record itself (`decisions events --decision ID` has the rest); every format is
        # rendered by the function gate evaluate used, so a stored decision re-renders as it was written.
        emit(render_decision(decision, DecisionFormat(args.format)), None)
    return ExitCode.OK


def cmd_decisions_events(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.events import OUTCOMES, EventQuery
    from gate.decisions.store import open_store
    from gate.decisions.timefilter import time_range
    from gate.errors import UsageError

    if args.limit is not None and args.limit < 0:
        raise UsageError(f"--limit {args.limit}: give 0 or more")
    if args.kind is not None and args.outcome is not None and args.outcome not in OUTCOMES[args.kind]:
        raise UsageError(
            f"--outcome {args.outcome} is not an outcome of a {args.kind}: {', '.join(OUTCOMES[args.kind])}"
        )
    since, until = time_range(args.since, args.until)
    query = EventQuery(
        decision_id=args.decision, type=args.kind, environment=args.env, digest=args.digest, since=since, until=until,
        outcome=args.outcome, waived=args.waived, limit=args.limit,
    )
    store = open_store(create=False)
    try:
        if args.format == "csv":  # streamed: an export of a year of events is never held in memory
            from gate.output import events_csv

            emit_stream(events_csv.render_list(store.events(query)), None)
            return ExitCode.OK
        events = list(store.events(query))
    finally:
        store.close()
    if args.format == "json":
        from gate.output import json as json_output

        emit(json_output.render({"events": events}), None)
    else:
        from gate.output import events_text

        emit(events_text.render_list(events), None)
    return ExitCode.OK


def cmd_decisions_export(args: argparse.Namespace) -> ExitCode:
    from gate.decisions import export
    from gate.errors import UsageError

    shipping = args.follow or args.url is not None or args.state is not None or args.since_seq is not None
    if shipping and args.format == "jsonl":
        raise UsageError("--follow, --url, --state and --since-seq ship OPA events: drop --format jsonl")
    if shipping and args.output is not None:
        raise UsageError("--output is for one-off exports: shipping writes to stdout or --url")
    if (args.format or ("opa" if shipping else "jsonl")) == "jsonl":
        left_out: list[Any] = []
        with _queried(_decision_query(args, oldest_first=True), left_out) as decisions:
            emit_stream(export.jsonl(decisions), args.output)
        return _report_left_out(left_out)
    from gate.decisions.export import LogMask

    specs, files = given_policy_specs(args), data_files(args)
    mask = _log_mask(specs, files) if shipping or specs or files else LogMask()
    if not shipping:
        left_out = []
        with _queried(_decision_query(args, oldest_first=True), left_out) as decisions:
            emit_stream(export.opa_events(decisions, __version__, mask), args.output)
        return _report_left_out(left_out)
    return _ship(args, mask)


def _log_mask(policy: list[str], files: list[str]) -> Any:
    """The mask the policy data configures (the layers' — none given: the shipped library's — and the --data files')."""
    from gate.decisions.export import LogMask
    from gate.evaluation import load_policy_data

    return LogMask.from_data(load_policy_data(policy, files)[1])


def _ship(args: argparse.Namespace, mask: Any) -> ExitCode:
    """``export --follow`` / ``--url`` / ``--state`` / ``--since-seq``: batches of OPA events, resumable."""
    import os

    from gate.decisions import shipping
    from gate.decisions.store import open_store
    from gate.errors import UsageError

    for flag, value, least in (("--batch-size", args.batch_size, 1), ("--since-seq", args.since_seq, 0)):
        if value is not None and value < least:
            raise UsageError(f"{flag} {value}: give {least} or more")
    for flag, number in (("--interval", args.interval), ("--retry-for", args.retry_for)):
        if not number >= 0:  # also refuses nan
            raise UsageError(f"{flag} {number}: give 0 or more seconds")
    query = _decision_query(args, oldest_first=True)
    stop = shipping.Stop()
    sink: Any
    if args.url is not None:
        if not args.url.startswith(("http://", "https://")):
            raise UsageError("--url: give an http:// or https:// URL")
        authorization = os.environ.get(shipping.AUTHORIZATION_ENV) or None
        sink = shipping.HttpSink(args.url, version=__version__, retry_for=args.retry_for, stop=stop, authorization=authorization)
    else:
        sink = shipping.StdoutSink()
    shipper = shipping.Shipper(
        lambda: open_store(create=False), query, sink, version=__version__, mask=mask, batch_size=args.batch_size,
        interval=args.interval, state=shipping.StateFile(Path(args.state)) if args.state else None, stop=stop,
    )
    try:
        position = shipper.start(args.since_seq, follow=args.follow)
        if args.follow:
            print(f"gate: following the decision log {shipper.location} after seq {position}", file=sys.stderr, flush=True)
        with shipping.stop_on_signals(stop) if args.follow else contextlib.nullcontext():
            shipped = shipping.ship(shipper, position, follow=args.follow)
    except shipping.ShippingError as e:
        through = shipper.shipped.through
        resume = (f"--state {args.state} holds seq {through}: a restart resends from there" if args.state
                  else f"rerun with --since-seq {through} to resend from there")
        raise GateError(f"{e}; delivered through seq {through}, {resume}") from None
    finally:
        shipper.close()
    print(f"gate: shipped {shipped.events} event{'s' if shipped.events != 1 else ''} through seq {shipped.through}",
          file=sys.stderr)
    return _report_left_out(shipped.left_out)


def cmd_decisions_stats(args: argparse.Namespace) -> ExitCode:
    from datetime import UTC, datetime

    from gate.decisions.stats import compute
    from gate.errors import UsageError

    if args.top < 0:
        raise UsageError(f"--top {args.top}: give 0 or more")
    query = _decision_query(args)
    left_out: list[Any] = []
    with _queried(query, left_out) as decisions:
        stats = compute(decisions, datetime.now(UTC), query.since, query.until, top=args.top).as_dict()
    if args.format == "json":
        from gate.output import json as json_output

        emit(json_output.render(stats), None)
    else:
        from gate.output import decisions_text

        emit(decisions_text.render_stats(stats), None)
    return _report_left_out(left_out)


def _verify_options(args: argparse.Namespace) -> Any:
    """Check verify's options before anything is read; the signer of ``--checkpoint`` (GATE_SIGNING_KEY), or None."""
    from gate.errors import UsageError
    from gate.imageref import DIGEST

    if args.since_head is not None and not DIGEST.fullmatch(args.since_head):
        raise UsageError(f"--since-head {args.since_head!r}: give a record hash, sha256:<64 hex digits>")
    if args.processes is not None and args.processes < 1:
        raise UsageError(f"--processes {args.processes}: give 1 or more")
    if not args.checkpoint:
        return None
    if args.since_head is not None:
        raise UsageError("--checkpoint vouches for the whole log: it cannot follow a --since-head verify")
    from gate import settings

    if not (settings.current().env("GATE_SIGNING_KEY") or "").strip():
        raise UsageError(
            "--checkpoint signs with GATE_SIGNING_KEY (or signing_key in gate.toml): set it to the private key of a trusted key"
        )
    from gate.decisions.signing import load_signer

    return load_signer()


def _write_checkpoint(store: Any, signer: Any, report: Any) -> Any:
    """Store a checkpoint of the verified chain head signed by ``signer``; the TrustedCheckpoint written,
    or None when there is nothing new to vouch for (an empty log, or the head a checkpoint used already covers)."""
    from datetime import UTC, datetime

    import msgspec

    from gate import rfc3339
    from gate.decisions.checkpoints import Checkpoint, TrustedCheckpoint, make_checkpoint

    if not report.head_seq or (report.checkpoint is not None and report.checkpoint.body.seq == report.head_seq):
        return None
    stored = make_checkpoint(
        report.head_seq, report.head_hash, report.count, rfc3339.format(datetime.now(UTC)), report.keys, signer
    )
    store.add_checkpoint(stored)
    return TrustedCheckpoint(msgspec.json.decode(stored.record, type=Checkpoint), stored.signing_key)


def _anchors(args: argparse.Namespace) -> dict[str, str]:
    """The heads kept outside the log that must still be records of it: --expect-head values, then
    the Gate-Log-Head trailers of the GitOps branch (newest commit first), each with where it came from."""
    from gate.errors import UsageError
    from gate.imageref import DIGEST

    anchors: dict[str, str] = {}
    for head in args.expect_head:
        if not DIGEST.fullmatch(head):  # a record hash has the form of an image digest
            raise UsageError(f"--expect-head {head!r}: give a record hash, sha256:<64 hex digits>")
        anchors.setdefault(head, "--expect-head")
    if args.gitops_repo:
        from gate.gitrepo import log_head_anchors
        from gate.redact import redact_url

        found = log_head_anchors(args.gitops_repo, branch=args.gitops_branch)
        for commit, head in found:
            anchors.setdefault(head, f"commit {commit[:12]}'s Gate-Log-Head")
        if not found:
            print(f"gate: note: no Gate-Log-Head trailer on branch {args.gitops_branch} of "
                  f"{redact_url(args.gitops_repo)}: nothing anchored there yet", file=sys.stderr)
    return anchors


def cmd_decisions_verify(args: argparse.Namespace) -> ExitCode:
    import dataclasses

    from gate.decisions.checkpoints import assess
    from gate.decisions.signing import load_trust
    from gate.decisions.store import open_store
    from gate.decisions.verify import verify_events, verify_log

    signer = _verify_options(args)
    anchors = _anchors(args)  # read (and the GitOps history fetched) before the log is opened
    trust = load_trust()
    if signer is not None and signer.key_id not in trust.keys:
        raise GateError(
            f"--checkpoint: the GATE_SIGNING_KEY key {signer.key_id} is not trusted ({trust.source}):"
            " a checkpoint it signs would be ignored"
        )
    store = open_store(create=False)
    try:
        checkpoints = assess(store.checkpoints(), trust.keys)
        if args.full:  # still pinned and checked for forgery, but vouching for no signature
            checkpoints = dataclasses.replace(checkpoints, used=None)
        report = verify_log(
            store, trust.keys, anchors=anchors, checkpoints=checkpoints, since_head=args.since_head,
            processes=args.processes,
        )
        events = verify_events(store, trust.keys)
        written = _write_checkpoint(store, signer, report) if signer is not None and report.ok and events.ok else None
        location = store.location
    finally:
        store.close()
    if not trust.configured:
        print(f"gate: note: {trust.source}", file=sys.stderr)
    for ignored in checkpoints.ignored:
        print(f"gate: note: {ignored}: not used", file=sys.stderr)
    if args.format == "json":
        from gate.output import json as json_output

        document = {
            **report.as_dict(), "events": dataclasses.asdict(events), "log": location, "trusted_keys": trust.source,
            "checkpoint": {
                "used": report.checkpoint.as_dict() if report.checkpoint else None,
                "written": written.as_dict() if written else None,
                "ignored": list(checkpoints.ignored),
            },
        }
        emit(json_output.render(document), None)
    else:
        if report.ok:
            head = report.head_hash or "none (the log is empty)"
            after = f" after seq {report.since[0]}" if report.since else ""
            text = f"{report.count} records{after} intact; chain head {head}\n"
            if report.anchors:
                text += f"{report.anchors} anchored head{'s' if report.anchors > 1 else ''} found in the chain\n"
            if report.checkpoint:
                text += f"signatures up to seq {report.checkpoint.body.seq} vouched for by the {report.checkpoint.describe()}\n"
        elif report.first_bad is not None:
            text = f"verify failed at {report.first_bad.describe()}: {report.problem}; {report.count} intact before it\n"
        else:  # every record intact, but an anchored head or a checkpoint is not among them, or forged
            text = f"verify failed: {report.problem}; {report.count} records intact\n"
        if events.ok and events.count:
            text += f"{events.count} events intact\n"
        elif not events.ok:
            text += f"events verify failed at {events.problem}; {events.count} intact before it\n"
        if written is not None:
            text += f"{written.describe()} written\n"
        emit(text, None)
    return ExitCode.OK if report.ok and events.ok else ExitCode.DENIED


def cmd_decisions_waivers(args: argparse.Namespace) -> ExitCode:
    from datetime import UTC, datetime, timedelta

    from gate.commands.notifications import notify_targets
    from gate.decisions.timefilter import parse_duration
    from gate.environments import declared_environments
    from gate.evaluation import load_policy_data
    from gate.policy.waivers import expiring

    targets = notify_targets(args)
    data = load_policy_data(policy_specs(args), data_files(args))[1]
    if args.env is not None:
        declared_environments(data).require(args.env)  # a typo is exit 2, not an empty list
    if args.expiring is not None:
        window, spelled = parse_duration(args.expiring, "--expiring"), args.expiring
    else:
        days = data.get("waiver_warning_days")
        days = days if isinstance(days, int) and not isinstance(days, bool) and days > 0 else 14
        window, spelled = timedelta(days=days), f"{days}d"
    now = datetime.now(UTC)
    found = expiring(data, now, window, args.env)
    from gate import rfc3339

    document = {
        "now": rfc3339.format(now, microseconds=False), "window": spelled, "environment": args.env, "waivers": found,
    }
    if args.format == "json":
        from gate.output import json as json_output

        emit(json_output.render(document), None)
    else:
        emit(_waivers_text(document), None)
    if found:
        from gate import notify

        where = f" in {args.env}" if args.env else ""
        first = found[0]
        listed = [
            {key: w[key] for key in ("id", "rule", "expires", "days_left", "approved_by", "environment", "image") if key in w}
            for w in found[:20]
        ]
        notify.notify(
            "waiver.expiring", f"{len(found)} waiver(s) expiring within {spelled}{where}",
            {
                "text": f"{len(found)} waiver(s) expire within {spelled}{where}; first: {first['id']} ({first['rule']}) "
                f"on {first['expires']}",
                "window": spelled, "environment": args.env, "count": len(found), "waivers": listed,
            },
            targets=targets,
        )
    return ExitCode.OK


def _waivers_text(document: dict[str, Any]) -> str:
    where = f" in {document['environment']}" if document["environment"] else ""
    waivers = document["waivers"]
    if not waivers:
        return f"no waiver expires within {document['window']}{where}\n"
    lines = [f"{len(waivers)} waiver(s) expire within {document['window']}{where}:"]
    for w in waivers:
        scope = ", ".join(f"{key} {w[key]}" for key in ("environment", "image") if w.get(key)) or "everywhere"
        lines.append(
            f"  {w['id']}  {w['rule']}  expires {w['expires']} ({w['days_left']:g} days)  {scope}  approved by {w['approved_by']}"
        )
    return "\n".join(lines) + "\n"
