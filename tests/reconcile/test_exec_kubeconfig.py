"""A kubeconfig whose user is an exec credential plugin (EKS's ``aws eks get-token``, GKE's
``gke-gcloud-auth-plugin``) works with gate's Cluster, as docs/clusters.md says.

The plugin here is a tiny script printing an ExecCredential, as ``aws eks get-token`` does; the
Kubernetes API emulator (tests/reconcile/emulator.py, EMULATION 9) serves only requests bearing
its token. Its tokens expire within minutes, as EKS's do (15 min): the client runs the plugin again
instead of sending an expired token, which a long-running ``gate reconcile --interval`` relies on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.errors import ReconcileError
from gate.reconcile.kube import Cluster, ClusterUnavailable
from tests.conftest import ROOT, Run
from tests.promote.gitrepo import Remote
from tests.reconcile.emulator import EmulatorThread, write_kubeconfig
from tests.reconcile.test_kube import DEPLOYMENTS, _podinfo
from tests.reconcile.test_reconcile_cli import DIGEST_A, POLICIES, evaluate, repo  # noqa: F401  (fixture)

pytestmark = pytest.mark.server

TOKEN = "k8s-aws-v1.ZXhlYy1wbHVnaW4tdG9rZW4"  # shaped like an EKS token; any opaque string would do
API_VERSION = "client.authentication.k8s.io/v1beta1"

PLUGIN = """\
import datetime, json, os, sys
# what the client hands a plugin: the ExecCredential request, in KUBERNETES_EXEC_INFO
request = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
with open(os.environ["PLUGIN_CALLS"], "a") as calls:
    calls.write(request["apiVersion"] + "\\n")
expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=1)
json.dump({"apiVersion": request["apiVersion"], "kind": "ExecCredential",
           "status": {"token": sys.argv[1], "expirationTimestamp": expiry.strftime("%Y-%m-%dT%H:%M:%SZ")}}, sys.stdout)
"""


def exec_kubeconfig(tmp_path: Path, server_url: str, token: str = TOKEN) -> tuple[Path, Path]:
    """A kubeconfig shaped as ``aws eks update-kubeconfig`` writes it, the plugin replaced by ours;
    returns it and the file where the plugin notes each call."""
    plugin = tmp_path / "get-token.py"
    plugin.write_text(PLUGIN)
    calls = tmp_path / "plugin-calls"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "eks", "cluster": {"server": server_url}}],
        "users": [{"name": "eks", "user": {"exec": {
            "apiVersion": API_VERSION,
            "command": sys.executable,
            "args": [str(plugin), token],
            "env": [{"name": "PLUGIN_CALLS", "value": str(calls)}],
            "interactiveMode": "Never",
        }}}],
        "contexts": [{"name": "eks", "context": {"cluster": "eks", "user": "eks"}}],
        "current-context": "eks",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path, calls


def plugin_calls(calls: Path) -> list[str]:
    return calls.read_text().splitlines() if calls.exists() else []


def test_an_exec_plugin_token_reaches_the_api_server_and_is_renewed_before_it_expires(
    tmp_path: Path, cluster_server: EmulatorThread
) -> None:
    cluster_server.call(lambda: cluster_server.emulator.require_token(TOKEN))
    config, calls = exec_kubeconfig(tmp_path, cluster_server.url)
    with Cluster(config, timeout_s=10) as cluster:
        cluster.apply(_podinfo())
        assert cluster.get(_podinfo()) is not None
    assert cluster_server.emulator.objects[DEPLOYMENTS, "shop", "frontend"]["metadata"]["generation"] == 1
    # loaded once, then run again before each request: its token is within the client's 5-minute skew
    assert len(plugin_calls(calls)) >= 2 and set(plugin_calls(calls)) == {API_VERSION}


def test_without_the_plugins_token_the_server_refuses(tmp_path: Path, cluster_server: EmulatorThread) -> None:
    cluster_server.call(lambda: cluster_server.emulator.require_token(TOKEN))
    for config in (write_kubeconfig(tmp_path / "no-user", cluster_server.url),
                   exec_kubeconfig(tmp_path, cluster_server.url, token="another-token")[0]):
        with Cluster(config, timeout_s=10) as cluster, pytest.raises(ReconcileError) as e:
            cluster.apply(_podinfo())
        assert "Unauthorized" in e.value.diagnostics()
        assert TOKEN not in e.value.diagnostics()


def test_reconcile_syncs_through_an_exec_plugin_kubeconfig(
    gate: Callable[..., Run], repo: Remote, tmp_path: Path, cluster_server: EmulatorThread  # noqa: F811
) -> None:
    cluster_server.call(lambda: cluster_server.emulator.require_token(TOKEN))
    config, calls = exec_kubeconfig(tmp_path, cluster_server.url)
    evaluate(gate, DIGEST_A)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--kubeconfig", config, "--once", "--health-timeout", "0", "--format", "json")
    assert run.code == 0, run.err
    report: dict[str, Any] = run.json()
    assert {o["kind"]: o["action"] for o in report["objects"]} == {"Namespace": "apply", "ConfigMap": "apply",
                                                                   "Deployment": "apply"}
    assert plugin_calls(calls) and TOKEN not in run.err + run.out


def test_a_failing_plugin_is_one_clear_error_naming_the_kubeconfig(
    gate: Callable[..., Run], repo: Remote, tmp_path: Path, cluster_server: EmulatorThread  # noqa: F811
) -> None:
    """The client only logs a plugin's failure (and then sends no token): gate stops at loading instead,
    with the plugin's own words, rather than an unbranded log line followed by a 401."""
    config, _ = exec_kubeconfig(tmp_path, cluster_server.url)
    failing = yaml.safe_load(config.read_text())
    failing["users"][0]["user"]["exec"]["command"] = str(tmp_path / "no-such-aws")
    config.write_text(yaml.safe_dump(failing))
    with pytest.raises(ReconcileError) as e:
        Cluster(config)
    assert str(e.value).startswith(f"{config}: cannot load: the exec credential plugin failed: ")
    assert "no-such-aws" in str(e.value)
    run = gate("reconcile", "--repo", repo.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--kubeconfig", config, "--once", "--health-timeout", "0")
    assert run.code == 2
    assert run.err.splitlines() == [
        f"gate: error: {config}: cannot load: the exec credential plugin failed: {e.value.args[0].split('failed: ', 1)[1]}"
    ]


def test_a_plugin_that_fails_on_renewal_fails_the_request_naming_the_plugin(
    tmp_path: Path, cluster_server: EmulatorThread
) -> None:
    """Mid-run (an expired SSO session, say) the client would only log the failure and send the old
    token; gate fails that request instead, as a temporary error the loop retries after a back-off."""
    cluster_server.call(lambda: cluster_server.emulator.require_token(TOKEN))
    config, calls = exec_kubeconfig(tmp_path, cluster_server.url)
    with Cluster(config, timeout_s=10) as cluster:
        cluster.apply(_podinfo())
        calls.unlink()
        calls.mkdir()  # the plugin cannot note its call any more: it fails from now on
        with pytest.raises(ClusterUnavailable) as e:
            cluster.get(_podinfo())
    assert str(e.value).startswith(f"{config}: the exec credential plugin failed: exec: process returned 1")
    assert TOKEN not in e.value.diagnostics()


def test_every_command_in_docs_clusters_parses() -> None:
    """docs/clusters.md, the first-try guide, cannot drift from the CLI."""
    from gate.cli import build_parser
    from tests.reconcile.test_deploy import doc_commands

    commands = doc_commands(ROOT / "docs" / "clusters.md")
    assert sum(c[0] == "reconcile" for c in commands) >= 3 and any(c[0] == "evaluate" for c in commands)
    parser = build_parser()
    for argv in commands:
        args = parser.parse_args(argv)
        assert args.command != "reconcile" or not args.plan or args.once
