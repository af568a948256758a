"""``gate reconcile``: re-check and sync a GitOps path to Kubernetes, once or in a loop."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gate.commands.common import (
    ExitCode,
    add_engine_arguments,
    add_evidence_arguments,
    add_policy_argument,
    data_files,
    emit,
    policy_specs,
)
from gate.commands.notifications import BlockedObjects, add_notify_argument, notify_targets
from gate.errors import GateError


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate reconcile``."""
    reconcile = commands.add_parser(
        "reconcile",
        help="re-check policy for every object of a GitOps path, then sync it to Kubernetes (0 synced, 1 blocked, 2 error)",
        description=(
            "Fetch the GitOps repository (a local mirror kept between cycles), render PATH (plain YAML, "
            "kustomize, Helm when helm is on PATH) and judge every object with the gate.admission rules: every "
            "image pinned by digest, with the evidence --evidence asks for: a verified, signed allow decision for "
            "ENV in the decision log that is not too old, relied on no expired waiver, and still passes today's "
            "promotion policy (log); a valid, trusted, fresh PASSED VSA for ENV attached to the image in its "
            "registry (vsa: no decision log needed, for clusters that cannot reach it); or both. Objects that pass are dry-run "
            "server-side (the cluster's webhooks speak) and then applied server-side (field manager gate), "
            "Namespaces and CRDs first. Blocked objects are not applied: what runs stays, and the block is "
            "reported here, as a Kubernetes Event and in the decision log (when the evidence uses it). Exit 0 all synced, 1 something "
            "blocked, 2 error (nothing more is applied). See docs/reconcile.md."
        ),
        epilog=(
            "examples:\n"
            "  gate reconcile --repo https://git.example.com/ops/deploy.git --path apps/prod --env prod --once\n"
            "  gate reconcile --repo URL --path apps/prod --env prod --plan --format json   # pre-merge check\n"
            "  gate reconcile --repo URL --path apps/prod --env prod --interval 60 --prune --leader-elect\n"
            "  gate reconcile --repo URL --path apps/prod --env prod --once --evidence vsa   # air-gapped: no log\n"
            "environment: GATE_DECISION_STORE, GATE_TRUSTED_KEYS, GATE_EVIDENCE, GATE_VSA_MAX_AGE, DOCKER_CONFIG "
            "(registry credentials for VSAs), KUBECONFIG (in a pod: its service account)"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument("--repo", required=True, metavar="URL", help="the GitOps repository (any URL git fetches)")
    reconcile.add_argument("--branch", default="main", metavar="BRANCH", help="branch to follow (default main)")
    reconcile.add_argument("--path", required=True, metavar="PATH", help="folder or file in the repository to sync")
    reconcile.add_argument("--env", required=True, metavar="ENV", help="the environment this cluster is, declared in the policy data; gate-environments.yaml in the repository must bind --path to it")
    how = reconcile.add_mutually_exclusive_group(required=True)
    how.add_argument("--once", action="store_true", help="run one cycle and exit with its outcome")
    how.add_argument("--interval", type=float, metavar="S", help="run a cycle every S seconds until SIGTERM")
    reconcile.add_argument("--plan", action="store_true", help="judge only, without a cluster (every object a CREATE); exit 1 if anything would be blocked")
    reconcile.add_argument("--prune", action="store_true", help="delete objects gate applied from this repository that git no longer declares")
    reconcile.add_argument("--kubeconfig", metavar="FILE", help="cluster to sync (default: in-cluster config, then KUBECONFIG)")
    reconcile.add_argument("--context", metavar="NAME", help="kubeconfig context")
    add_policy_argument(
        reconcile, purpose=" with the gate.admission rules", data_help="data files (thresholds, max decision age); repeatable"
    )
    add_engine_arguments(reconcile, purpose=" (the admission rules and replays; the bundle is pushed to an OPA server)")
    add_evidence_arguments(reconcile)
    reconcile.add_argument("--helm-values", action="append", default=[], metavar="FILE", help="values file in the repository for a Helm chart path; repeatable")
    reconcile.add_argument("--health-timeout", type=float, default=120.0, metavar="S", help="wait up to S seconds for applied workloads to roll out (default 120; 0 reports at once)")
    reconcile.add_argument("--progress-interval", type=float, default=10.0, metavar="S", help="while waiting for workloads to roll out, a progress line on stderr every S seconds (default 10)")
    reconcile.add_argument("--cache-dir", metavar="DIR", help="where the repository mirror is kept (default: $XDG_CACHE_HOME/gate/reconcile)")
    reconcile.add_argument("--leader-elect", action="store_true", help="take the coordination.k8s.io Lease first, so only one replica syncs")
    reconcile.add_argument("--lease-name", default="gate-reconciler", metavar="NAME")
    reconcile.add_argument("--lease-namespace", default="gate-system", metavar="NS")
    reconcile.add_argument("--format", choices=["text", "json"], default="text")
    add_notify_argument(
        reconcile, what="when objects are blocked (reconcile.blocked: one per cycle, each object and digest announced once)",
    )


def cmd_reconcile(args: argparse.Namespace) -> ExitCode:
    from gate.decisions.signing import load_signer
    from gate.decisions.store import open_store
    from gate.errors import UsageError
    from gate.reconcile.admission import AdmissionChecker
    from gate.reconcile.cycle import CycleOptions, run_cycle
    from gate.reconcile.evidence import choose, vsa_max_age
    from gate.reconcile.source import GitSource

    if args.plan and args.interval is not None:
        raise UsageError("--plan runs once: use it with --once")
    if args.interval is not None and args.interval <= 0:
        raise UsageError(f"--interval {args.interval:g}: give a number of seconds above 0")
    if args.progress_interval <= 0:
        raise UsageError(f"--progress-interval {args.progress_interval:g}: give a number of seconds above 0")
    options = CycleOptions(
        path=args.path, environment=args.env, plan=args.plan, prune=args.prune,
        health_timeout=max(0.0, args.health_timeout), helm_values=tuple(args.helm_values),
        progress_interval=args.progress_interval,
    )
    # not for --plan: nothing was blocked, only judged
    blocked = BlockedObjects([] if args.plan else notify_targets(args), args.env, args.path)
    source = GitSource(args.repo, args.branch, Path(args.cache_dir) if args.cache_dir else None)
    max_age = vsa_max_age(args.vsa_max_age)
    chosen = choose(args.evidence, lambda: open_store(create=False))
    if chosen.why.startswith("default"):  # say which bar was chosen when nobody named it
        print(f"gate: evidence {chosen.evidence.value} ({chosen.why})", file=sys.stderr, flush=True)
    store = chosen.store  # None with vsa evidence: no decision log is opened, and no sync event recorded
    try:
        checker = AdmissionChecker(
            policy_specs(args), args.env, store, data_files=[Path(d) for d in data_files(args)], engine=args.engine,
            opa_url=args.opa_url, evidence=chosen.evidence, vsa_max_age=max_age,
        )
        cluster = None
        if not args.plan:
            from gate.reconcile.kube import Cluster

            cluster = Cluster(args.kubeconfig, context=args.context)
        signer = None if args.plan or store is None else load_signer()

        def record(event: Any) -> str:
            assert store is not None
            return str(store.append_event(event, signer).event_id)

        def show(report: Any) -> None:
            document = report.as_dict()
            if args.format == "json":
                from gate.output import json as json_output

                emit(json_output.render(document), None)
            else:
                from gate.output import reconcile_text

                emit(reconcile_text.render(document), None)
            blocked.cycle(report)  # after the sync event is recorded and the report printed

        def cycle() -> Any:
            return run_cycle(source, checker, cluster, options, record=record if store is not None else None,
                             progress=_print_progress)

        if args.interval is None:
            report = cycle()
            show(report)
            return ExitCode.DENIED if report.outcome == "blocked" else ExitCode.OK
        return _reconcile_forever(args, cycle, show, cluster)
    finally:
        if store is not None:
            store.close()


def _print_progress(progress: dict[str, Any]) -> None:
    """A health wait's progress line, on stderr (stdout holds the report)."""
    from gate.output import reconcile_text

    print(f"gate: {reconcile_text.progress_line(progress)}", file=sys.stderr, flush=True)


def _reconcile_forever(args: argparse.Namespace, cycle: Callable[[], Any], show: Callable[[Any], None], cluster: Any) -> ExitCode:
    import socket
    import threading

    from gate.reconcile.loop import run_loop, stop_on_signals

    stop = threading.Event()
    stop_on_signals(stop)
    identity = f"{socket.gethostname()}-{os.getpid()}"
    lease_seconds = int(max(15, 3 * args.interval))

    def is_leader() -> bool:
        return bool(cluster.acquire_lease(args.lease_name, args.lease_namespace, identity, lease_seconds))

    def on_error(error: GateError) -> None:
        print(f"gate: error: {error.diagnostics()}", file=sys.stderr, flush=True)

    try:
        run_loop(cycle, args.interval, stop, show, on_error, is_leader if args.leader_elect else None)
    finally:
        if args.leader_elect:
            with contextlib.suppress(GateError):
                cluster.release_lease(args.lease_name, args.lease_namespace, identity)
    return ExitCode.OK
