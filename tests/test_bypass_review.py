"""Adversarial review of the trust core (issue 10): bypasses found after the one-home refactor.

Each test failed before its fix:
- a custom resource keeping containers under a nested ``metadata.labels`` (which gate.workloads
  skipped wholesale) ran an image no stage judged;
- admission's verdict on a decision's trust was the Rego rules' alone: a bundle whose
  ``gate.admission`` rules leave out the decision or pinning checks admitted unpinned images,
  denied digests and untrusted decisions; ``gate.decisions.trust`` is now the authority (a backstop
  that blocks whatever the rules say), the shipped rules explain.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gate import workloads
from gate.reconcile.admission import AdmissionChecker
from tests.conftest import DIGEST, ROOT, Run
from tests.reconcile.test_admission import (  # noqa: F401  (fixtures)
    CLEAN,
    IMAGE,
    ONE_CRITICAL,
    REF,
    checker,
    deployment,
    evaluate,
    store,
)

EVIL = "evil.example.com/miner@sha256:" + "be" * 32


def test_containers_under_a_nested_metadata_labels_list_are_found() -> None:
    widget = {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"app": "w"}},
        "spec": {"runner": {"metadata": {"labels": {"containers": [{"name": "x", "image": EVIL}]}}}},
    }
    assert workloads.of(widget).images == [("spec.runner.metadata.labels.containers[x]", EVIL)]


def test_a_label_or_annotation_named_containers_is_still_not_a_container() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"containers": "3"},
                                                           "annotations": {"containers": "x"}},
           "spec": {"containers": [{"name": "a", "image": REF}]}}
    found = workloads.of(pod)
    assert found.images == [("spec.containers[a]", REF)] and found.problems == ()


def test_the_webhook_judges_a_nested_labels_container(checker: Callable[..., AdmissionChecker]) -> None:
    widget = {
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"},
        "spec": {"runner": {"metadata": {"labels": {"containers": [{"name": "x", "image": EVIL}]}}}},
    }
    verdict = checker().check(widget)
    assert verdict.blocked and "never passed the gate" in " ".join(verdict.reasons), verdict


def _lenient_bundle(tmp_path: Path) -> Path:
    """The shipped bundle without the admission rules on pinning and decisions (a custom bundle that forgot them)."""
    bundle = tmp_path / "policies"
    shutil.copytree(ROOT / "policies", bundle)
    for name in ("decisions", "images"):
        for suffix in (".rego", "_test.rego"):
            (bundle / "gate" / "admission" / f"{name}{suffix}").unlink()
    return bundle


@pytest.mark.parametrize("case", ["unpinned", "no decision", "deny", "allow"])
def test_decision_trust_blocks_whatever_the_admission_rules_say(
    case: str, gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path
) -> None:
    image: dict[str, Any] = {
        "unpinned": f"{IMAGE}:1.4.2", "no decision": f"{IMAGE}@sha256:" + "cd" * 32, "deny": REF, "allow": REF,
    }
    if case in ("deny", "allow"):
        assert evaluate(gate, ONE_CRITICAL if case == "deny" else CLEAN)["outcome"] == case
    verdict = checker(_lenient_bundle(tmp_path)).check(deployment(("web", image[case])))
    if case == "allow":
        assert verdict.action == "apply", verdict.reasons
        return
    assert verdict.blocked, f"{case}: admitted by a bundle without decision rules"
    assert {v.rule for v in verdict.violations} == {"admission.decisions.untrusted"}
    because = {"unpinned": "is not pinned by a valid sha256 digest", "no decision": "never passed the gate",
               "deny": "is deny, not allow"}[case]
    assert because in verdict.reasons[0], verdict.reasons


def test_an_untrusted_signature_blocks_whatever_the_admission_rules_say(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path
) -> None:
    assert evaluate(gate, CLEAN)["outcome"] == "allow"
    verdict = checker(_lenient_bundle(tmp_path), trusted_keys={}).check(deployment(("web", REF)))
    assert verdict.blocked and "not a trusted key" in verdict.reasons[0], verdict.reasons
    assert DIGEST in str(verdict.images)


@pytest.mark.parametrize(
    "text",
    [
        "paths: {clusters/prod: prod, CLUSTERS/PROD: dev}",  # one folder on a case-insensitive checkout
        "paths: {clusters/prod: Prod}",
        "paths: {clusters/prod: 'prod '}",
        "paths: {' clusters/prod': prod}",
        "paths: {clusters/prod: prod, clusters/prod/: dev}",
        "paths: {clusters/prod: \"\\u0440rod\"}",  # Cyrillic look-alike
    ],
)
def test_a_binding_file_with_look_alike_paths_or_environments_is_refused(text: str) -> None:
    from gate.environments import parse_bindings
    from gate.errors import UsageError

    with pytest.raises(UsageError):
        parse_bindings(text)


@pytest.mark.parametrize("text", ["２０２７-01-01T00:00:00Z", "2027-01-01T00:00:00+٠١:00", "٢٠٢٧-01-01"])
def test_a_time_with_non_ascii_digits_is_refused(text: str) -> None:
    """Python read these, Rego's time.parse_rfc3339_ns does not: a waiver expiry the two stages read differently."""
    from gate import rfc3339

    with pytest.raises(rfc3339.TimeFormatError):
        rfc3339.parse_date_or_time(text)


@pytest.mark.parametrize(
    ("spelling", "admitted"),
    [
        (f"{IMAGE}:9.9.9@{DIGEST}", True),  # another tag beside the digest: the digest is what runs
        (f"{IMAGE}@{DIGEST}", True),
        (f"other.example.com/copy@{DIGEST}", True),  # the same bytes (content-addressed) under a promoted name
        (f"{IMAGE}@{DIGEST.upper().replace('SHA256', 'sha256')}", False),  # upper-case hex: not a valid digest
        (f"{IMAGE}@{DIGEST.upper()}", False),
        (f"{IMAGE}@{DIGEST}@{DIGEST}", False),
        (f"user:pw@{IMAGE}@{DIGEST}", False),
    ],
)
def test_spellings_of_a_pinned_image(
    spelling: str, admitted: bool, gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]
) -> None:
    assert evaluate(gate, CLEAN)["outcome"] == "allow"
    verdict = checker().check(deployment(("web", spelling)))
    assert (verdict.action == "apply") is admitted, verdict.reasons


NESTED_LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: List
  metadata: {name: inner}
  items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: hidden, namespace: shop}
    spec:
      selector: {matchLabels: {app: h}}
      template:
        metadata: {labels: {app: h}}
        spec:
          containers: [{name: c, image: "evil.example.com/miner:latest"}]
"""


@pytest.mark.parametrize("kustomize", [False, True])
def test_a_deployment_in_a_list_in_a_list_is_judged(
    kustomize: bool, tmp_path: Path, checker: Callable[..., AdmissionChecker]
) -> None:
    from gate.reconcile.render import render

    app = tmp_path / "repo" / "app"
    app.mkdir(parents=True)
    (app / "list.yaml").write_text(NESTED_LIST)
    if kustomize:  # kubectl kustomize flattens the lists; plain manifests keep the inner one as an object
        (app / "kustomization.yaml").write_text("resources:\n- list.yaml\n")
    objects = render(tmp_path / "repo", "app")
    assert [img for o in objects for img in workloads.of(o).images][0][1] == "evil.example.com/miner:latest"
    verdicts = checker().check_many([(o, None) for o in objects])
    assert verdicts and all(v.blocked for v in verdicts), verdicts
    assert "is not pinned by digest" in " ".join(verdicts[0].reasons)
