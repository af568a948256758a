"""Bypass suite, workloads (issue 10, items 1 and 6): every workload kind × every stage.

Before: ``gate reconcile`` applied an Argo Rollout or a Knative Service whose image was unpinned and
never evaluated, with no reasons, while the same image in a Deployment was blocked — promote's
manifest format and the reconciler each had a pod-spec table, and they disagreed; the webhook
allowed ``containers: "x"``. Now ``gate.workloads`` is the one answer, and for every kind of its
table plus an unknown custom resource, in every stage:

- promote write-back: the manifest format pins that kind's container, and the promoted file
  passes ``reconcile --plan``; a file with a container field gate cannot read is refused;
- ``gate reconcile --plan`` and ``gate reconcile --once`` (kmock emulator): an unpinned image, a
  pinned image without a decision, and a malformed container field are blocked (and not applied),
  while the same kind with an allowed image is applied — so a block is about the image, not the kind;
- the admission webhook (``AdmissionWebhook.answer``): the same three are denied, the allowed one admitted.

Each stage runs once over an object of every kind (one git remote, one reconcile, one webhook):
the first test of a stage runs it, every kind's test asserts its own objects in the result.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate import workloads
from gate.errors import GitOpsError
from gate.reconcile.admission import AdmissionChecker
from tests.conftest import ROOT, Run
from tests.promote.conftest import docker_config, registry  # noqa: F401  (fixtures for the promotion)
from tests.promote.gitrepo import make_remote
from tests.promote.servers import Registry, new_repo, push_image
from tests.reconcile.emulator import EmulatorThread, write_kubeconfig
from tests.reconcile.test_admission import CLEAN, checker, store  # noqa: F401  (fixtures)
from tests.reconcile.test_admission import evaluate as evaluate_reports

pytestmark = pytest.mark.server

POLICIES = ROOT / "policies"
IMAGE = "registry.example.com/shop/web"
ALLOWED = f"{IMAGE}:1.0@sha256:" + "a1" * 32
UNEVALUATED = f"{IMAGE}:2.0@sha256:" + "c3" * 32
UNPINNED = f"{IMAGE}:2.0"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}


@dataclass(frozen=True)
class Kind:
    """One workload kind: where its pod spec is, and the API resource serving it."""

    api_version: str
    kind: str
    path: tuple[str | int, ...]
    plural: str
    short: str

    def object(self, name: str, pod_spec: dict[str, Any]) -> dict[str, Any]:
        """An object of this kind named ``name`` with ``pod_spec`` where this kind keeps it."""
        obj: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind,
                               "metadata": {"name": name, "namespace": "shop"}}
        node: Any = obj
        for step, following in zip(self.path[:-1], self.path[1:]):
            if isinstance(step, int):
                node = node[step]
            else:
                node = node.setdefault(step, [{"name": "worker"}] if isinstance(following, int) else {})
        node[self.path[-1]] = copy.deepcopy(pod_spec)
        return obj

    @property
    def pod_spec_path(self) -> str:
        """The pod spec's path as gate.workloads names it (``spec.workers[0].pod``)."""
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path).lstrip(".")

    def name(self, variant: str) -> str:
        return f"{self.short}-{variant}"


T = ("spec", "template", "spec")
KINDS = [
    Kind("v1", "Pod", ("spec",), "pods", "pod"),
    Kind("v1", "PodTemplate", ("template", "spec"), "podtemplates", "podtemplate"),
    Kind("v1", "ReplicationController", T, "replicationcontrollers", "rc"),
    Kind("apps/v1", "Deployment", T, "deployments", "deploy"),
    Kind("apps/v1", "ReplicaSet", T, "replicasets", "rs"),
    Kind("apps/v1", "StatefulSet", T, "statefulsets", "sts"),
    Kind("apps/v1", "DaemonSet", T, "daemonsets", "ds"),
    Kind("batch/v1", "Job", T, "jobs", "job"),
    Kind("batch/v1", "CronJob", ("spec", "jobTemplate", "spec", "template", "spec"), "cronjobs", "cronjob"),
    Kind("argoproj.io/v1alpha1", "Rollout", T, "rollouts", "rollout"),
    Kind("serving.knative.dev/v1", "Service", T, "services", "ksvc"),
    Kind("serving.knative.dev/v1", "Configuration", T, "configurations", "kconfig"),
    Kind("serving.knative.dev/v1", "Revision", ("spec",), "revisions", "krevision"),
    Kind("apps.openshift.io/v1", "DeploymentConfig", T, "deploymentconfigs", "dc"),
    # a custom resource nobody listed: found by the generic walk
    Kind("example.com/v1", "Widget", ("spec", "workers", 0, "pod"), "widgets", "widget"),
]
IDS = [f"{k.kind}@{k.api_version.split('/')[0]}" for k in KINDS]
#: the container images of each variant (malformed: a container list that is a string)
VARIANTS: dict[str, dict[str, Any]] = {
    "allowed": {"containers": [{"name": "app", "image": ALLOWED}]},
    "unpinned": {"containers": [{"name": "app", "image": UNPINNED}]},
    "unevaluated": {"containers": [{"name": "app", "image": UNEVALUATED}]},
    "malformed": {"containers": "x"},
}
#: what the reasons of each blocked variant say
BLOCKED_BECAUSE = {
    "unpinned": "is not pinned by digest",
    "unevaluated": "never passed the gate",
    "malformed": "must be a list of containers, found a string",
}


def test_the_suite_covers_the_whole_table() -> None:
    assert {(workloads.api_group(k.api_version), k.kind) for k in KINDS[:-1]} == set(workloads.KINDS)
    assert workloads.pod_spec_at(KINDS[-1].api_version, KINDS[-1].kind) is None


def every_object() -> list[dict[str, Any]]:
    return [k.object(k.name(variant), pod_spec) for k in KINDS for variant, pod_spec in VARIANTS.items()]


def manifests(objects: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


def evaluate(gate: Callable[..., Run], image: str) -> dict[str, Any]:
    decision = evaluate_reports(gate, CLEAN, ref=image)
    assert decision["outcome"] == "allow"
    return decision


#: each stage's result over every kind, computed by the first test of the stage
_RUNS: dict[str, Any] = {}


def once(stage: str, compute: Callable[[], Any]) -> Any:
    if stage not in _RUNS:
        _RUNS[stage] = compute()
    return _RUNS[stage]


def assert_blocked_unless_allowed(kind: Kind, verdicts: dict[str, tuple[str, str]]) -> None:
    """``verdicts``: object name → (action, reasons as one text)."""
    action, reasons = verdicts[kind.name("allowed")]
    assert action == "apply", (kind.kind, reasons)
    for variant, because in BLOCKED_BECAUSE.items():
        action, reasons = verdicts[kind.name(variant)]
        assert action == "blocked", (kind.kind, variant)
        assert because in reasons, (kind.kind, variant, reasons)


# --- promote write-back ------------------------------------------------------------------------------


def promote_every_kind(gate: Callable[..., Run], registry: Registry, tmp_path: Path) -> dict[str, Any]:
    """Promote one allowed image into a manifest file holding every kind; then plan the promoted path."""
    staging, release = new_repo("staging"), new_repo("release")
    pushed = push_image(registry, staging, "1.0", content=f"workloads {staging}\n".encode())
    source = f"{registry.host}/{staging}:1.0@{pushed.digest}"
    release_name = f"{registry.host}/{release}"
    decision = evaluate(gate, source)
    objects = [k.object(k.name("promoted"), {"containers": [{"name": "app", "image": f"{release_name}:0.9"}]})
               for k in KINDS]
    remote = make_remote(tmp_path, {"apps/prod/workloads.yaml": manifests(objects)})
    run = gate("promote", "--decision", decision["decision_id"], "--target", f"{release_name}:1.0",
               "--gitops-repo", remote.url, "--gitops-path", "apps/prod/workloads.yaml", "--format", "json")
    assert run.code == 0, run.out + run.err
    promoted = {d["metadata"]["name"]: d for d in yaml.safe_load_all(remote.show("apps/prod/workloads.yaml"))}
    plan = gate("reconcile", "--repo", remote.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
                "--once", "--plan", "--format", "json")
    return {
        "pinned": f"{release_name}:1.0@{pushed.digest}",
        "images": {name: workloads.of(obj).images for name, obj in promoted.items()},
        "plan": (plan.code, {o["name"]: o["action"] for o in plan.json()["objects"]}),
    }


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_promote_pins_the_image_of_every_kind(
    kind: Kind, gate: Callable[..., Run], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    result = once("promote", lambda: promote_every_kind(gate, request.getfixturevalue("registry"), tmp_path))
    assert result["images"][kind.name("promoted")] == [(f"{kind.pod_spec_path}.containers[app]", result["pinned"])]
    code, actions = result["plan"]
    assert actions[kind.name("promoted")] == "apply" and code == 0, actions


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_promote_refuses_a_file_whose_containers_it_cannot_read(kind: Kind) -> None:
    from gate.promote.edit import update_image

    good = KINDS[3].object("web", {"containers": [{"name": "app", "image": "ghcr.io/shop/web:0.9"}]})
    text = manifests([good, kind.object(kind.name("malformed"), VARIANTS["malformed"])])
    with pytest.raises(GitOpsError, match=f"{kind.kind} {kind.name('malformed')}: .*must be a list of containers"):
        update_image(text, path="w.yaml", image="ghcr.io/shop/web", digest="sha256:" + "a1" * 32, tag="1.0")
    # the same file without the malformed object is edited
    edited = update_image(manifests([good]), path="w.yaml", image="ghcr.io/shop/web", digest="sha256:" + "a1" * 32, tag="1.0")
    assert edited.format == "manifest" and len(edited.changes) == 1


# --- gate reconcile --plan ---------------------------------------------------------------------------


def plan_every_kind(gate: Callable[..., Run], tmp_path: Path) -> dict[str, tuple[str, str]]:
    evaluate(gate, ALLOWED)
    remote = make_remote(tmp_path, {f"apps/prod/{o['metadata']['name']}.yaml": manifests([o]) for o in every_object()})
    run = gate("reconcile", "--repo", remote.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
               "--once", "--plan", "--format", "json")
    assert run.code == 1, run.err
    return {o["name"]: (o["action"], " ".join(o["reasons"])) for o in run.json()["objects"]}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_reconcile_plan_blocks_what_was_not_approved_in_every_kind(
    kind: Kind, gate: Callable[..., Run], tmp_path: Path
) -> None:
    assert_blocked_unless_allowed(kind, once("plan", lambda: plan_every_kind(gate, tmp_path)))


# --- gate reconcile --once (kmock emulator) ------------------------------------------------------------


def sync_every_kind(gate: Callable[..., Run], tmp_path: Path) -> dict[str, Any]:
    evaluate(gate, ALLOWED)
    server = EmulatorThread()
    server.start()
    try:
        # EMULATION: the custom resource definitions a cluster running these kinds has installed
        for kind in KINDS:
            if "." in kind.api_version.split("/")[0]:
                info = {"namespaced": True, "kind": kind.kind, "singular": kind.kind.lower(),
                        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                        "shortnames": [], "categories": [], "subresources": []}
                key = f"{kind.api_version}/{kind.plural}"
                server.call(lambda key=key, info=info: server.emulator.resources.__setitem__(key, info))
        files = {"apps/prod/namespace.yaml": manifests([NAMESPACE])}
        files |= {f"apps/prod/{o['metadata']['name']}.yaml": manifests([o]) for o in every_object()}
        remote = make_remote(tmp_path, files)
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", server.url)
        run = gate("reconcile", "--repo", remote.url, "--path", "apps/prod", "--env", "prod", "--policy", POLICIES,
                   "--kubeconfig", kubeconfig, "--health-timeout", "0", "--once", "--format", "json")
        assert run.code == 1, run.out + run.err

        def stored(kind: Kind, name: str) -> dict[str, Any] | None:
            try:
                obj = server.emulator.objects[f"{kind.api_version}/{kind.plural}", "shop", name]
            except KeyError:
                return None
            return None if obj.deleted else dict(obj.raw)

        live = {k.name(v): stored(k, k.name(v)) for k in KINDS for v in VARIANTS}
    finally:
        server.stop()
    verdicts = {o["name"]: (o["action"], " ".join(o["reasons"])) for o in run.json()["objects"]}
    return {"verdicts": verdicts, "live": live}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_reconcile_once_applies_only_what_was_approved_in_every_kind(
    kind: Kind, gate: Callable[..., Run], tmp_path: Path
) -> None:
    result = once("sync", lambda: sync_every_kind(gate, tmp_path))
    assert_blocked_unless_allowed(kind, result["verdicts"])
    applied = result["live"][kind.name("allowed")]
    assert applied is not None and workloads.of(applied).images[0][1] == ALLOWED
    for variant in BLOCKED_BECAUSE:
        assert result["live"][kind.name(variant)] is None, (kind.kind, variant)


# --- the admission webhook -----------------------------------------------------------------------------


def review(kind: Kind, obj: dict[str, Any], uid: str) -> bytes:
    group, _, version = obj["apiVersion"].rpartition("/")
    return json.dumps({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": uid, "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": group, "version": version, "resource": kind.plural},
            "namespace": "shop", "name": obj["metadata"]["name"], "operation": "CREATE", "object": obj,
            "oldObject": None, "userInfo": {"username": "someone"}, "dryRun": False,
        },
    }).encode()


def admit_every_kind(gate: Callable[..., Run]) -> dict[str, tuple[str, str]]:
    from gate.admission_webhook import AdmissionWebhook

    evaluate(gate, ALLOWED)
    webhook = AdmissionWebhook(POLICIES, "prod")
    try:
        answers = {k.name(v): webhook.answer(review(k, k.object(k.name(v), spec), f"uid-{k.short}-{v}"))["response"]
                   for k in KINDS for v, spec in VARIANTS.items()}
    finally:
        webhook.close()
    return {name: ("apply" if r["allowed"] else "blocked", (r.get("status") or {}).get("message", ""))
            for name, r in answers.items()}


@pytest.mark.parametrize("kind", KINDS, ids=IDS)
def test_the_webhook_denies_what_was_not_approved_in_every_kind(kind: Kind, gate: Callable[..., Run]) -> None:
    assert_blocked_unless_allowed(kind, once("webhook", lambda: admit_every_kind(gate)))


def test_round_trip_yaml_is_read_like_json() -> None:
    """Promote reads GitOps files round-trip (ruamel), reconcile and the webhook as plain data: same answer."""
    from ruamel.yaml import YAML

    text = manifests(every_object())
    plain = list(yaml.safe_load_all(text))
    round_trip = list(YAML().load_all(io.StringIO(text)))
    assert [workloads.of(o).images for o in plain] == [workloads.of(o).images for o in round_trip]
    assert [workloads.of(o).problems for o in plain] == [workloads.of(o).problems for o in round_trip]


def test_unreadable_containers_block_even_under_rules_that_allow_everything(
    tmp_path: Path, checker: Callable[..., AdmissionChecker]
) -> None:
    """The block on an unreadable container field is gate's, not the policy's: a bundle without the
    unpinned rule still blocks a tag (gate.decisions.trust's backstop), and ``containers: "x"`` as unreadable."""
    import shutil

    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    for name in ("images.rego", "images_test.rego"):
        (bundle / "gate" / "admission" / name).unlink()
    lenient_checker = checker(bundle)
    for kind in KINDS:
        lenient = lenient_checker.check(kind.object(kind.name("unpinned"), VARIANTS["unpinned"]))
        assert [v.rule for v in lenient.violations] == ["admission.decisions.untrusted"], (kind.kind, lenient.reasons)
        verdict = lenient_checker.check(kind.object(kind.name("malformed"), VARIANTS["malformed"]))
        assert verdict.blocked and [v.rule for v in verdict.violations] == ["admission.workload.unreadable"]
        assert verdict.reasons[0].startswith(f"{kind.pod_spec_path}.containers must be a list of containers")
