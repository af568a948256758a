"""``gate serve``: the policies over OPA's Data API, optionally as an admission webhook."""

from __future__ import annotations

import argparse
import os
import sys

from gate.commands.common import ExitCode, add_engine_arguments, add_policy_argument, data_files, given_policy_specs


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``gate serve``."""
    serve = commands.add_parser(
        "serve",
        help="serve the policies over OPA's Data API (embedded engine), for admission controllers and OPA clients",
        description=(
            "An HTTP server speaking the subset of OPA's REST API that clients use: GET /health, "
            "GET|POST /v1/data/{path} with {\"input\": ...}, PUT|DELETE /v1/data/{path}, "
            "GET|PUT|DELETE /v1/policies/{id}. Evaluation uses the embedded regorus engine."
        ),
        epilog=(
            "environment: GATE_SERVE_TOKEN requires that bearer token on every endpoint but /health and the "
            "admission endpoints; with --admission, GATE_DECISION_STORE and GATE_TRUSTED_KEYS as for reconcile. "
            "--ui serves only the auditors' read-only web view of GATE_DECISION_STORE and its JSON API under "
            "/api/v1 (not OPA's API), with GATE_UI_TOKEN as its token; see docs/ui.md"
        ),
    )
    add_policy_argument(
        serve, purpose=" to load at start",
        default="the policy of gate.toml, else none (clients upload); with --admission gate:library",
        data_help="data file(s) to load at start; repeatable",
    )
    serve.add_argument(
        "--addr", "--bind", dest="addr", default="127.0.0.1:8181", metavar="HOST:PORT", help="where to listen (default 127.0.0.1:8181)"
    )
    serve.add_argument(
        "--ui", action="store_true",
        help="serve the auditors' read-only web view of the decision log and its JSON API (/api/v1) instead of "
        "OPA's API; beyond loopback it needs --ui-token-file or --tls-client-ca",
    )
    serve.add_argument(
        "--ui-token-file", metavar="FILE",
        help="with --ui: require this token (the file's content; else GATE_UI_TOKEN) as a Bearer token or as "
        "the password of HTTP Basic auth (browsers prompt for it)",
    )
    serve.add_argument(
        "--tls-client-ca", metavar="FILE",
        help="with --ui and --tls-cert: require a client certificate signed by this CA (PEM)",
    )
    serve.add_argument(
        "--admission",
        action="store_true",
        help="also answer Kubernetes AdmissionReviews at POST /v1/admission (and /validate) with the bundle's "
        "admission rules and the decision log: a ValidatingAdmissionWebhook (needs --env; the policy "
        "defaults to gate:library)",
    )
    serve.add_argument("--env", metavar="ENV", help="with --admission: the environment this cluster is, declared in the policy data")
    add_engine_arguments(serve, purpose=" for --admission (the Data API itself always uses regorus)")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this certificate (PEM; webhooks need HTTPS)")
    serve.add_argument("--tls-key", metavar="FILE", help="the private key (PEM) of --tls-cert")


def cmd_serve(args: argparse.Namespace) -> ExitCode:
    from gate.errors import UsageError
    from gate.serve import parse_addr, serve

    if args.ui:
        return _serve_ui(args)
    for flag, value in (("--ui-token-file", args.ui_token_file), ("--tls-client-ca", args.tls_client_ca)):
        if value is not None:
            raise UsageError(f"serve {flag} is for --ui: add --ui to serve the web view")
    if args.admission and args.env is None:
        raise UsageError("serve --admission needs --env ENV: the environment whose decisions admit images")
    if args.env is not None and not args.admission:
        raise UsageError("serve --env is for --admission: add --admission to answer AdmissionReviews")
    if (args.engine != "embedded" or args.opa_url) and not args.admission:
        raise UsageError("serve --engine/--opa-url are for --admission: the Data API always evaluates with regorus")
    host, port = parse_addr(args.addr)
    # no --policy and none configured: the Data API starts empty for clients to upload (admission: gate:library)
    serve(
        given_policy_specs(args) or None,
        data_files(args),
        host,
        port,
        ready_callback=lambda server: print(f"gate: serving on {server.url}", file=sys.stderr, flush=True),
        token=os.environ.get("GATE_SERVE_TOKEN") or None,
        admission=args.env if args.admission else None,
        admission_options={"checker_options": {"engine": args.engine, "opa_url": args.opa_url}},
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    return ExitCode.OK


def _serve_ui(args: argparse.Namespace) -> ExitCode:
    """``gate serve --ui``: the read-only web view until interrupted."""
    from gate.errors import UsageError
    from gate.serve import parse_addr
    from gate.ui.app import make_ui_server, read_token

    if args.admission or args.env is not None:
        raise UsageError("serve --ui serves only the web view: run the admission webhook as its own gate serve --admission")
    if args.policy or args.data or args.engine != "embedded" or args.opa_url:
        raise UsageError("serve --ui reads only the decision log: drop --policy, --data, --engine and --opa-url")
    host, port = parse_addr(args.addr)
    token = read_token(args.ui_token_file, os.environ.get("GATE_UI_TOKEN"))
    server = make_ui_server(
        host, port, token=token, tls_cert=args.tls_cert, tls_key=args.tls_key, client_ca=args.tls_client_ca,
    )
    auth = [what for what, given in (("token", token), ("client certificates", args.tls_client_ca)) if given]
    print(
        f"gate: serving the decision log {server.app.location} read-only on {server.url}"
        + (f" ({' and '.join(auth)} required)" if auth else ""),
        file=sys.stderr, flush=True,
    )
    if token is not None and server.tls is None and not _loopback(host):
        print("gate: warning: the token crosses the network in clear text: add --tls-cert/--tls-key", file=sys.stderr)
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        # SIGTERM (a container stopping) ends it as Ctrl-C does: from another thread, serve_forever returns
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    return ExitCode.OK


def _loopback(host: str) -> bool:
    from gate.ui.app import is_loopback

    return is_loopback(host)
