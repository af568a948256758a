"""deploy/, the manifests that run `gate reconcile` in a cluster, and docs/reconcile.md.

deploy/ is rendered by the real ``kubectl kustomize`` (through gate's own renderer), and the
Deployment's arguments are parsed by gate's own CLI parser, so a flag renamed in cli.py or a path
that no volume provides fails here, not in somebody's cluster. The RBAC is checked against what
the reconciler actually asks of the API (cycle.PRUNE_KINDS, the Lease). Then `gate reconcile
--plan` judges deploy/ itself: gate's own image, a placeholder tag, is blocked as unpinned — the
reconciler's image must pass the gate like any other — and once pinned and allowed, it passes.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.cli import build_parser
from gate.reconcile.cycle import PRUNE_KINDS
from gate.reconcile.render import api_group, render
from gate.version import __version__
from tests.conftest import DATA, ROOT, Run
from tests.promote.gitrepo import Remote, make_remote
from tests.reconcile.test_admission import CLEAN

DEPLOY = ROOT / "deploy"
DOCS = ROOT / "docs" / "reconcile.md"
POLICIES = ROOT / "policies"
#: the image's real name (docs/container.md); the tag is the version of gate it holds
GATE_REPOSITORY = "ghcr.io/promotion-gate/gate"
GATE_IMAGE = f"{GATE_REPOSITORY}:{__version__}"
PINNED = "sha256:" + "9e" * 32
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    """deploy/ as `kubectl kustomize deploy` renders it."""
    return render(ROOT, "deploy")


def only(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return only(objects, "Deployment")["spec"]["template"]["spec"]


def reconciler(objects: list[dict[str, Any]]) -> dict[str, Any]:
    containers = pod_spec(objects)["containers"]
    assert [c["name"] for c in containers] == ["reconciler"]
    return containers[0]


def mounted(container: dict[str, Any], path: str) -> dict[str, Any]:
    """The volume mount holding ``path`` (the longest matching mount path)."""
    mounts = [m for m in container.get("volumeMounts", []) if path == m["mountPath"] or path.startswith(m["mountPath"] + "/")]
    assert mounts, f"{path} is on no volume: the root filesystem is read-only"
    return max(mounts, key=lambda m: len(m["mountPath"]))


def plural(kind: str) -> str:
    """The resource name of the kinds gate prunes (all regular English plurals)."""
    lower = kind.lower()
    return lower + ("es" if lower.endswith("s") else "s")


def test_the_deployment_args_parse_with_gates_own_parser(objects: list[dict[str, Any]]) -> None:
    container = reconciler(objects)
    assert container["command"] == ["gate"]
    env = {e["name"]: e for e in container["env"]}
    referenced = {name for arg in container["args"] for name in _VAR.findall(arg)}
    assert referenced == {"GITOPS_REPO"} and referenced <= set(env)
    argv = [_VAR.sub("https://git.example.com/ops/deploy.git", arg) for arg in container["args"]]
    args = build_parser().parse_args(argv)
    assert args.command == "reconcile"
    assert (args.interval, args.once, args.plan) == (60.0, False, False)
    assert args.prune and args.leader_elect
    assert args.lease_namespace == only(objects, "Deployment")["metadata"]["namespace"] == "gate-system"
    assert args.repo == "https://git.example.com/ops/deploy.git" and args.path and args.env
    # every path gate reads or writes is on a volume
    for layer in args.policy or ():  # a folder layer is mounted (gate:library is in the image, oci:// pulled)
        if layer != "gate:library" and not layer.startswith("oci://"):
            assert mounted(container, layer)["name"] == "policies"
    assert mounted(container, args.cache_dir)["name"] == "cache" and not mounted(container, args.cache_dir).get("readOnly")
    assert mounted(container, "/tmp")["name"] == "tmp" and env["HOME"]["value"] == "/tmp"
    assert env["GATE_TRUSTED_KEYS"]["value"] == mounted(container, env["GATE_TRUSTED_KEYS"]["value"])["mountPath"]
    for data_file in args.data or ():
        assert mounted(container, data_file)["name"] == "settings"
    assert mounted(container, env["GATE_SIGNING_KEY"]["value"])["name"] == "signing-key"


def test_every_reference_resolves_to_a_rendered_object(objects: list[dict[str, Any]]) -> None:
    container = reconciler(objects)
    spec = pod_spec(objects)
    secrets = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Secret"}
    maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for entry in container["env"]:
        ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in secrets[ref["name"]]["stringData"], ref
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in [*container["volumeMounts"], *(m for c in spec["initContainers"] for m in c["volumeMounts"])]:
        assert mount["name"] in volumes
    assert volumes["trusted-keys"]["configMap"]["name"] in maps
    signing = volumes["signing-key"]["secret"]
    assert [i["key"] for i in signing["items"]] == ["signing-key.pem"]
    assert "signing-key.pem" in secrets[signing["secretName"]]["stringData"]
    # the runtime user reads the key through fsGroup: 0400 would leave it readable by root only
    assert signing["defaultMode"] & 0o040
    settings = yaml.safe_load(maps["gate-settings"]["data"]["admission.yaml"])
    assert set(settings) == {"admission"} and set(settings["admission"]) == {"max_decision_age"}
    # the policy bundle the init container copies is what --policy reads
    [init] = spec["initContainers"]
    assert init["command"][-1] == "/etc/gate/policies" == mounted(init, "/etc/gate/policies")["mountPath"]


def test_the_placeholders_are_placeholders(objects: list[dict[str, Any]]) -> None:
    secret = only(objects, "Secret", "gate-reconciler")
    assert "data" not in secret and all("REPLACE" in v for v in secret["stringData"].values())
    keys = only(objects, "ConfigMap", "gate-trusted-keys")["data"]
    assert all("REPLACE" in v for v in keys.values())


def test_the_pod_is_locked_down(objects: list[dict[str, Any]]) -> None:
    spec = pod_spec(objects)
    assert only(objects, "Deployment")["spec"]["replicas"] == 1
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in [*spec["initContainers"], *spec["containers"]]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert container["image"] == GATE_IMAGE
    # no probe: gate reconcile has no health endpoint (docs/reconcile.md, "Health")
    assert not any(k.endswith("Probe") for k in reconciler(objects))


def test_deploy_runs_the_image_of_this_gate_version_as_the_images_user() -> None:
    """deploy/ names the image the Containerfile builds (docs/container.md): the tag is gate's version, so
    a release that bumps the version and forgets deploy/ fails here; every pod runs as the image's user."""
    assert GATE_IMAGE.endswith(f":{__version__}")
    uid = re.search(r"^ARG UID=(\d+)$", (ROOT / "Containerfile").read_text(), flags=re.M)
    assert uid, "Containerfile: ARG UID=<number> not found"
    for manifest in ("deployment.yaml", "webhook.yaml"):
        text = (DEPLOY / manifest).read_text()
        images = re.findall(r"^\s+image:\s*(\S+)\s*$", text, flags=re.M)
        assert len(images) == 2 and set(images) == {GATE_IMAGE}, (manifest, images)
        assert set(re.findall(r"runAsUser:\s*(\d+)", text)) == {uid.group(1)}, manifest
    for doc in (DOCS, ROOT / "docs" / "container.md"):
        assert f"{GATE_REPOSITORY}:<version>" in doc.read_text(), doc


def test_the_service_account_is_the_one_bound_and_used(objects: list[dict[str, Any]]) -> None:
    account = only(objects, "ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": account["metadata"]["namespace"]}
    assert pod_spec(objects)["serviceAccountName"] == subject["name"]
    for kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        binding = only(objects, kind)
        assert binding["subjects"] == [subject]
        role = only(objects, role_kind, binding["roleRef"]["name"])
        assert binding["roleRef"]["kind"] == role_kind
        if kind == "RoleBinding":
            assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "gate-system"
    # the admission input names this account as the one applying (request.userInfo)
    from gate.reconcile.admission import DEFAULT_USER

    assert DEFAULT_USER["username"] == f"system:serviceaccount:{subject['namespace']}:{subject['name']}"


def test_rbac_has_no_wildcards_and_leases_only_in_gate_system(objects: list[dict[str, Any]]) -> None:
    roles = [o for o in objects if o["kind"] in ("ClusterRole", "Role")]
    assert {o["kind"] for o in roles} == {"ClusterRole", "Role"}
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule and "resourceNames" not in rule
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
    cluster_rules = only(objects, "ClusterRole")["rules"]
    assert not any("leases" in r["resources"] for r in cluster_rules)
    role = only(objects, "Role")
    assert role["metadata"]["namespace"] == "gate-system"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update", "patch"]}]


def test_the_cluster_role_allows_what_a_cycle_asks(objects: list[dict[str, Any]]) -> None:
    """--prune lists every PRUNE_KINDS kind, whatever the repository holds: a missing list is a 403,
    which fails the cycle. Applying needs get + create + patch (+ delete for prune); blocks need Events."""
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in only(objects, "ClusterRole")["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])
    for api_version, kind in PRUNE_KINDS:
        verbs = granted.get((api_group(api_version), plural(kind)), set())
        assert {"get", "list"} <= verbs, (kind, verbs)
        if kind != "Pod":  # listed for prune, never applied by the shipped role
            assert verbs == {"get", "list", "create", "patch", "delete"}, (kind, verbs)
    assert granted[("", "namespaces")] == {"get", "list", "create", "patch", "delete"}
    assert granted[("", "events")] == {"create", "patch"}
    assert not any(verbs & {"update", "watch"} for key, verbs in granted.items())


# --- gate reconcile --plan on deploy/ itself ------------------------------------------------------


@pytest.fixture
def deploy_remote(tmp_path: Path) -> Remote:
    """A GitOps remote holding deploy/ as it is, an overlay pinning gate's image, and the settings file."""
    files = {f"deploy/{p.name}": p.read_text() for p in sorted(DEPLOY.iterdir()) if p.suffix == ".yaml"}
    files.pop("deploy/webhook.yaml", None)  # another component's; not in the kustomization
    files["pinned/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../deploy\n"
        f"images:\n  - name: {GATE_REPOSITORY}\n    digest: {PINNED}\n"
    )
    return make_remote(tmp_path, files)


@pytest.fixture
def plan(gate: Callable[..., Run], deploy_remote: Remote, objects: list[dict[str, Any]], tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Callable[[str], Run]:
    """`gate reconcile --plan --format json` on a path of ``deploy_remote``, with deploy/'s own --data."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    settings = tmp_path / "admission.yaml"
    settings.write_text(only(objects, "ConfigMap", "gate-settings")["data"]["admission.yaml"])

    def run(path: str) -> Run:
        return gate("reconcile", "--repo", deploy_remote.url, "--path", path, "--env", "prod", "--policy", POLICIES,
                    "--data", settings, "--once", "--plan", "--format", "json")
    return run


def test_plan_on_deploy_blocks_exactly_gates_own_unpinned_image(plan: Callable[[str], Run]) -> None:
    run = plan("deploy")
    assert run.code == 1, run.err
    body = run.json()
    assert body["outcome"] == "blocked" and body["plan"] is True
    actions = {(o["kind"], o["name"]): o["action"] for o in body["objects"]}
    assert actions.pop(("Deployment", "gate-reconciler")) == "blocked"
    assert set(actions.values()) == {"apply"} and len(actions) == 9  # nothing else runs an image
    blocked = next(o for o in body["objects"] if o["kind"] == "Deployment")
    assert blocked["reasons"] == [
        f"container spec.template.spec.{where}: image {GATE_IMAGE} is not pinned by digest (tag only): "
        "a tag can move after the gate decided"
        for where in ("containers[reconciler]", "initContainers[policy-bundle]")
    ]


def test_plan_on_a_pinned_overlay_asks_for_a_decision_then_passes(
    plan: Callable[[str], Run], gate: Callable[..., Run]
) -> None:
    pinned = f"{GATE_REPOSITORY}@{PINNED}"  # kustomize images: digest replaces the tag
    run = plan("pinned")
    assert run.code == 1
    blocked = next(o for o in run.json()["objects"] if o["kind"] == "Deployment")
    assert blocked["reasons"] == [
        f"container spec.template.spec.{where}: no gate decision for {pinned} in prod: it never passed the gate"
        for where in ("containers[reconciler]", "initContainers[policy-bundle]")
    ]
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", pinned, "--env", "prod", "--format", "json"]
    for report in CLEAN:
        argv += ["--report", f"auto={DATA / report}"]
    decision = gate(*argv)
    assert decision.code == 0, decision.out + decision.err
    passed = plan("pinned")
    assert passed.code == 0, passed.out
    deployment = next(o for o in passed.json()["objects"] if o["kind"] == "Deployment")
    assert deployment["action"] == "apply" and deployment["decision_ids"] == [decision.json()["decision_id"]]


# --- docs/reconcile.md ------------------------------------------------------------------------------


def doc_commands(doc: Path = DOCS) -> list[list[str]]:
    """Every `gate ...` command of docs/reconcile.md (or ``doc``): in fenced blocks (continuation lines
    joined), and inline code spans that give flags (a bare `gate evaluate` names a command, it is not one)."""
    text = doc.read_text()
    lines = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            lines.append(re.sub(r"^\s*(?:-\s+)?(?:run:\s*)?", "", line).split(" #")[0])
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [span for span in re.findall(r"`([^`]+)`", prose) if " --" in span]
    return [shlex.split(line.split(" > ")[0].split(" | ")[0])[1:] for line in lines if line.startswith("gate ")]


def test_every_command_in_the_docs_parses() -> None:
    commands = doc_commands()
    assert sum(c[0] == "reconcile" for c in commands) >= 4 and any(c[0] != "reconcile" for c in commands)
    parser = build_parser()
    for argv in commands:
        try:
            args = parser.parse_args(argv)
        except SystemExit as e:  # --help exits 0
            assert e.code == 0, f"docs/reconcile.md: gate {shlex.join(argv)} does not parse (exit {e.code})"
            continue
        if args.command == "reconcile" and args.plan:
            assert args.once, f"docs/reconcile.md: gate {shlex.join(argv)}: --plan runs with --once only"


def test_the_docs_name_every_shipped_admission_rule() -> None:
    text = DOCS.read_text()
    shipped = set()
    for rego in (POLICIES / "gate" / "admission").glob("*.rego"):
        if not rego.name.endswith("_test.rego"):
            shipped |= set(re.findall(r'"rule": "(admission\.[a-z_.]+)"', rego.read_text()))
    assert len(shipped) >= 10
    missing = sorted(r for r in shipped if f"`{r}`" not in text)
    assert not missing, f"docs/reconcile.md does not list {missing}"
