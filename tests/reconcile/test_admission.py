"""The admission re-check of `gate reconcile` (gate.reconcile.admission) on real decisions.

Decisions are made by `gate evaluate` in-process (the ``gate`` fixture) from the real reports in
tests/data, signed with the session key and recorded in the test's own SQLite log; the checker then
judges Kubernetes objects that run those digests, with the shipped gate.admission rules evaluated by
the embedded engine. The AdmissionReview samples in tests/data/admission (SOURCES.md) are real
requests a webhook would receive.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from gate.decisions.signing import generate_keypair, key_id, load_public_key
from gate.decisions.sql import from_clause, order_clause, where_clause
from gate.decisions.interface import DecisionQuery, DecisionStore
from gate.decisions.store import open_store
from gate.errors import PolicyError
from gate.reconcile.admission import AdmissionChecker, Verdict
from tests.conftest import DATA, DIGEST, ROOT, Run

POLICIES = ROOT / "policies"
IMAGE = "registry.example.com/shop/cart"
REF = f"{IMAGE}:1.4.2@{DIGEST}"
OTHER_DIGEST = "sha256:" + "cd" * 32
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ADMISSION = DATA / "admission"


# --- helpers -------------------------------------------------------------------------------------


def evaluate(gate: Callable[..., Run], reports: tuple[str, ...], *extra: Any, ref: str = REF, env: str = "prod") -> dict[str, Any]:
    """A real decision, recorded in the test's log."""
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", ref, "--env", env, "--format", "json"]
    for report in reports:
        argv += ["--report", f"auto={DATA / report}"]
    run = gate(*argv, *extra)
    assert run.code in (0, 1), run.err
    return run.json()


def deployment(*containers: tuple[str, str], init: tuple[tuple[str, str], ...] = (), name: str = "cart") -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": n, "image": i} for n, i in containers]}
    if init:
        spec["initContainers"] = [{"name": n, "image": i} for n, i in init]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": {"metadata": {"labels": {"app": name}}, "spec": spec}},
    }


def rules(verdict: Verdict) -> set[str]:
    return {v.rule for v in verdict.violations}


def waivers_file(tmp_path: Path, expires: datetime) -> Path:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n"
        "  - id: W-0042\n"
        "    rule: CVE-2022-22965\n"
        "    reason: not reachable\n"
        "    approved_by: secops@example.com\n"
        f"    expires: {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}\n"
    )
    return path


@pytest.fixture
def store() -> Iterator[DecisionStore]:
    """The test's decision log (GATE_DECISION_STORE, set by the autouse fixture)."""
    opened = open_store()
    yield opened
    opened.close()


@pytest.fixture
def checker(store: DecisionStore) -> Callable[..., AdmissionChecker]:
    def make(policy_dir: Path = POLICIES, environment: str = "prod", **options: Any) -> AdmissionChecker:
        return AdmissionChecker(policy_dir, environment, store, **options)

    return make


def tightened_bundle(tmp_path: Path, effective_on: str | None = None) -> Path:
    """The shipped bundle plus a promotion rule added after the decisions were made."""
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    custom = "#   rule_id: provenance.required\n#   severity: high\n#   solution: Attach a provenance attestation.\n"
    if effective_on:
        custom += f"#   effective_on: {effective_on}\n"
    (bundle / "gate" / "promotion" / "provenance.rego").write_text(
        "package gate.promotion.provenance\n\nimport rego.v1\n\n"
        "# METADATA\n# title: Provenance required\n# description: Every image needs provenance.\n# custom:\n"
        + custom
        + "deny contains result if {\n"
        "\tnot input.provenance\n"
        '\tresult := {"msg": sprintf("%s has no provenance attestation", [input.artifact.image]), '
        '"rule": "provenance.required", "severity": "high", "finding_ids": []}\n'
        "}\n"
    )
    return bundle


# --- allowed, and the input the rules see ----------------------------------------------------------


def test_an_image_with_a_signed_allow_is_applied(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    decision = evaluate(gate, CLEAN)
    assert decision["outcome"] == "allow"
    check = checker()
    verdict = check.check(deployment(("web", REF)))
    assert verdict.action == "apply" and not verdict.blocked, verdict.reasons
    assert verdict.reasons == () and verdict.warnings == ()
    assert verdict.decision_ids == (decision["decision_id"],)
    assert verdict.images == (
        {"container": "spec.template.spec.containers[web]", "image": REF, "digest": DIGEST, "decision_id": decision["decision_id"]},
    )
    assert check.lookups == 1


def test_the_admission_input_has_the_documented_shape(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], signing_key: tuple[Path, Path]
) -> None:
    decision = evaluate(gate, CLEAN)
    now = datetime.now(UTC)
    commit = {"sha": "0" * 40, "trailers": {"Gate-Decision": decision["decision_id"]}}
    old = deployment(("web", f"{IMAGE}:1.4.1@{OTHER_DIGEST}"))
    policy_input = checker(now=now).input_for(deployment(("web", REF)), old, commit)
    request = policy_input["request"]
    assert request["kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert (request["namespace"], request["name"], request["operation"]) == ("shop", "cart", "UPDATE")
    assert request["oldObject"] == old and request["dryRun"] is False
    assert request["userInfo"] == {"username": "system:serviceaccount:gate-system:gate"}
    assert policy_input["gate"]["environment"] == "prod" and policy_input["gate"]["commit"] == commit
    assert policy_input["gate"]["now"].endswith("Z")
    [image] = policy_input["gate"]["images"]
    assert (image["container"], image["image"], image["pinned"], image["digest"]) == (
        "spec.template.spec.containers[web]", REF, True, DIGEST
    )
    [entry] = image["decisions"]
    assert entry["decision_id"] == decision["decision_id"] and entry["outcome"] == "allow"
    assert entry["timestamp"] == decision["timestamp"] and 0 <= entry["age_seconds"] < 600
    assert (entry["signed"], entry["signature_valid"], entry["trusted_key"], entry["signature_problem"]) == (True, True, True, None)
    assert entry["signing_key"] == key_id(load_public_key(signing_key[1]))
    assert entry["policy_digest"] == decision["policy"]["digest"] and entry["policy_revision"] == "gate-policies-0.2.0"
    assert entry["waivers"] == []
    assert entry["replay"] == {"outcome": "allow", "violations": [], "warnings": [], "error": None}
    assert checker().input_for(deployment(("web", REF)))["request"]["operation"] == "CREATE"


def test_only_the_newest_decision_counts(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    denied = evaluate(gate, ONE_CRITICAL)
    allowed = evaluate(gate, CLEAN)
    assert (denied["outcome"], allowed["outcome"]) == ("deny", "allow")
    verdict = checker().check(deployment(("web", REF)))
    assert verdict.action == "apply" and verdict.decision_ids == (allowed["decision_id"],)
    evaluate(gate, ONE_CRITICAL)
    assert rules(checker().check(deployment(("web", REF)))) == {"admission.decisions.not_allowed"}


def test_a_non_workload_object_has_no_images_and_is_applied(checker: Callable[..., AdmissionChecker]) -> None:
    check = checker()
    for obj in (
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart", "namespace": "shop"}, "spec": {"ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cart"}, "data": {"image": "nginx"}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
    ):
        verdict = check.check(obj)
        assert (verdict.action, verdict.images, verdict.decision_ids) == ("apply", (), ())
    assert check.lookups == 0


# --- blocked ---------------------------------------------------------------------------------------


def test_an_unknown_digest_never_passed_the_gate(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    evaluate(gate, CLEAN)  # another digest's allow does not count
    unknown = f"{IMAGE}:1.5.0@{OTHER_DIGEST}"
    verdict = checker().check(deployment(("web", unknown)))
    assert verdict.blocked and rules(verdict) == {"admission.decisions.missing"}
    assert verdict.reasons == (
        f"container spec.template.spec.containers[web]: no gate decision for {unknown} in prod: it never passed the gate",
    )
    assert verdict.images[0]["decision_id"] is None and verdict.decision_ids == ()


def test_an_allow_in_another_environment_does_not_count(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    evaluate(gate, CLEAN, env="staging")
    verdict = checker().check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.decisions.missing"}
    assert checker(environment="staging").check(deployment(("web", REF))).action == "apply"


def test_a_tag_only_image_is_blocked_without_a_lookup(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    evaluate(gate, CLEAN)
    check = checker()
    verdict = check.check(deployment(("web", f"{IMAGE}:1.4.2")))
    assert verdict.blocked and rules(verdict) == {"admission.images.unpinned"}
    assert verdict.reasons[0].startswith(f"container spec.template.spec.containers[web]: image {IMAGE}:1.4.2 is not pinned by digest")
    assert verdict.images[0]["digest"] is None and check.lookups == 0


def test_a_deny_decision_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    denied = evaluate(gate, ONE_CRITICAL)
    verdict = checker().check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.decisions.not_allowed"}
    assert f"is deny, not allow (decision {denied['decision_id']}" in verdict.reasons[0]


def test_a_decision_signed_by_an_untrusted_key_blocks(
    gate: Callable[..., Run],
    checker: Callable[..., AdmissionChecker],
    signing_key: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rogue_private, rogue_public = generate_keypair(tmp_path / "rogue")
    monkeypatch.setenv("GATE_SIGNING_KEY", str(rogue_private))
    decision = evaluate(gate, CLEAN)
    assert decision["outcome"] == "allow"
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(signing_key[1]))  # trust only the CI's key, as `decisions verify` reads it
    verdict = checker().check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.decisions.signature"}
    rogue = key_id(load_public_key(rogue_public))
    assert verdict.reasons[0].endswith(f"cannot be trusted: signed by key {rogue}, which is not a trusted key (GATE_TRUSTED_KEYS)")
    # Given the rogue key as trusted, the same decision is admitted.
    assert checker(trusted_keys={rogue: load_public_key(rogue_public)}).check(deployment(("web", REF))).action == "apply"


def test_an_edited_record_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], decision_store: Path) -> None:
    decision = evaluate(gate, ONE_CRITICAL)
    assert decision["outcome"] == "deny"
    with sqlite3.connect(decision_store) as db:  # someone turns the deny into an allow in the log
        [(record,)] = db.execute("select record from decisions").fetchall()
        edited = json.loads(record) | {"outcome": "allow", "violations": []}
        db.execute("update decisions set record = ?, outcome = 'allow'", (json.dumps(edited).encode(),))
    verdict = checker().check(deployment(("web", REF)))
    assert "admission.decisions.signature" in rules(verdict)
    signature = next(v for v in verdict.violations if v.rule == "admission.decisions.signature")
    assert "cannot be trusted: edited: its contents hash to sha256:" in signature.message


def test_an_edited_input_blocks_and_is_not_replayed(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], decision_store: Path
) -> None:
    from gate.decisions.documents import compress, decompress

    decision = evaluate(gate, CLEAN)
    findings = decision["input_parts"]["findings"]
    with sqlite3.connect(decision_store) as db:  # the input's findings are a document the record names by digest
        [(body,)] = db.execute("select body from documents where digest = ?", (findings,)).fetchall()
        edited = [f | {"severity": "low"} for f in json.loads(decompress(body))]
        db.execute("update documents set body = ? where digest = ?", (compress(json.dumps(edited).encode()), findings))
    # reads re-hash every document: the decision cannot be read, so this image is blocked and not replayed,
    # while the check goes on for the other images
    verdict = checker().check(deployment(("web", REF)))
    assert verdict.blocked and "admission.decisions.untrusted" in rules(verdict)
    assert any(f"document {findings} edited: its contents hash to" in r for r in verdict.reasons), verdict.reasons
    assert not {"admission.replay.denied", "admission.replay.error"} & rules(verdict)  # never evaluated


def test_a_waiver_that_expired_since_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    expires = datetime.now(UTC) + timedelta(days=2)
    decision = evaluate(gate, ONE_CRITICAL, "--data", waivers_file(tmp_path, expires))
    assert decision["outcome"] == "allow" and [w["id"] for w in decision["waivers"]] == ["W-0042"]
    obj = deployment(("web", REF))
    assert checker(now=expires - timedelta(days=1)).check(obj).action == "apply"
    verdict = checker(now=expires + timedelta(hours=1)).check(obj)
    assert verdict.blocked
    assert rules(verdict) == {"admission.decisions.waiver_expired", "admission.replay.denied"}
    waiver = next(v for v in verdict.violations if v.rule == "admission.decisions.waiver_expired")
    assert f"relied on waiver W-0042 (CVE-2022-22965), which expired on {expires.strftime('%Y-%m-%dT%H:%M:%SZ')}" in waiver.message
    replayed = next(v for v in verdict.violations if v.rule == "admission.replay.denied")
    assert "no longer passes today's policy: 1 violation(s) of vulnerabilities.severity" in replayed.message


def test_a_decision_older_than_max_age_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    evaluate(gate, CLEAN)
    obj = deployment(("web", REF))
    now = datetime.now(UTC)
    assert checker(now=now + timedelta(days=29)).check(obj).action == "apply"
    verdict = checker(now=now + timedelta(days=31)).check(obj)
    assert rules(verdict) == {"admission.decisions.too_old"}
    assert verdict.reasons[0].endswith("prod accepts decisions at most 720h old")
    shorter = tmp_path / "admission.json"
    shorter.write_text(json.dumps({"admission": {"max_decision_age": {"prod": "1h"}}}))
    assert rules(checker(now=now + timedelta(hours=2), data_files=[shorter]).check(obj)) == {"admission.decisions.too_old"}


def test_a_policy_tightened_since_the_decision_blocks(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path
) -> None:
    evaluate(gate, CLEAN)
    verdict = checker(tightened_bundle(tmp_path)).check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.replay.denied"}
    assert verdict.reasons[0].endswith(
        f"no longer passes today's policy: 1 violation(s) of provenance.required (e.g. {IMAGE} has no provenance attestation)"
    )


def test_a_threshold_raised_through_data_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    evaluate(gate, CLEAN)  # line coverage 90%
    stricter = tmp_path / "thresholds.yaml"
    stricter.write_text(yaml.safe_dump({"thresholds": {"prod": {"min_line_coverage": 0.95}}}))
    verdict = checker(data_files=[stricter]).check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.replay.denied"}
    assert "coverage.line_rate (e.g. line coverage 90% is under the 95% required in prod)" in verdict.reasons[0]


def test_a_rule_not_yet_in_force_only_warns(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    evaluate(gate, CLEAN)
    future = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    bundle = tightened_bundle(tmp_path, effective_on=future)
    verdict = checker(bundle).check(deployment(("web", REF)))
    assert verdict.action == "apply", verdict.reasons
    [warning] = verdict.warning_results
    assert warning.rule == "admission.replay.pending"
    assert f"will be blocked from {future[:-1]}.000000Z by provenance.required: {IMAGE} has no provenance attestation" in warning.message
    # Once in force, it blocks.
    later = checker(bundle, now=datetime.now(UTC) + timedelta(days=11)).check(deployment(("web", REF)))
    assert rules(later) == {"admission.replay.denied"}


def test_a_replay_that_fails_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    evaluate(gate, CLEAN)
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "promotion" / "broken.rego").write_text(
        "package gate.promotion.broken\n\nimport rego.v1\n\n"
        "deny contains result if {\n\tresult := {\"msg\": sprintf(\"%v\", [to_number(input.artifact.image)])}\n}\n"
    )
    verdict = checker(bundle).check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.replay.error"}
    assert "could not be re-checked under today's policy: policy evaluation failed:" in verdict.reasons[0]
    assert "could not parse string as number" in verdict.reasons[0]


def test_a_replay_that_times_out_blocks_its_object_and_the_others_are_judged(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time limit holds per replay: the object whose decision's replay loops is blocked (an error
    replay), the other object of the same batch is judged as usual."""
    evaluate(gate, CLEAN)
    other_ref = f"registry.example.com/shop/api:2.0@{OTHER_DIGEST}"
    waived = evaluate(gate, ONE_CRITICAL, "--data", waivers_file(tmp_path, datetime.now(UTC) + timedelta(days=30)), ref=other_ref)
    assert waived["outcome"] == "allow"
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "promotion" / "runaway.rego").write_text(  # loops on the spring4shell report only
        "package gate.promotion.runaway\n\nimport rego.v1\n\ndeny contains \"never\" if {\n"
        "\tsome f in input.findings\n\tf.rule == \"CVE-2022-22965\"\n"
        "\tcount([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j]) < 0\n}\n"
    )
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "1")
    web, api = checker(bundle).check_many([(deployment(("web", REF)), None), (deployment(("api", other_ref), name="api"), None)])
    assert web.action == "apply", web.reasons
    assert rules(api) == {"admission.replay.error"}
    assert "could not be re-checked under today's policy: policy evaluation timed out after 1 s (GATE_POLICY_TIMEOUT)" in api.reasons[0]


def test_a_cronjob_init_container_is_checked_too(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    decision = evaluate(gate, CLEAN)
    migrate = f"registry.example.com/shop/migrate:2.0@{OTHER_DIGEST}"
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "initContainers": [{"name": "migrate", "image": migrate}],
                "containers": [{"name": "report", "image": REF}],
                "restartPolicy": "OnFailure",
            }}}},
        },
    }
    check = checker()
    verdict = check.check(cronjob)
    assert rules(verdict) == {"admission.decisions.missing"}
    assert verdict.reasons == (
        "container spec.jobTemplate.spec.template.spec.initContainers[migrate]: "
        f"no gate decision for {migrate} in prod: it never passed the gate",
    )
    assert [i["decision_id"] for i in verdict.images] == [None, decision["decision_id"]]
    assert check.lookups == 2


# --- cost: lookups and the replay cache ------------------------------------------------------------


def test_workloads_sharing_a_digest_replay_once(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    evaluate(gate, CLEAN)
    check = checker(now=datetime.now(UTC))
    for n in range(30):
        verdict = check.check(deployment(("web", REF), ("sidecar", REF), name=f"cart-{n}"))
        assert verdict.action == "apply"
    assert check.lookups == 30  # one per distinct digest per object: decisions are read afresh
    assert check.replays == 1


def test_check_many_judges_a_batch_as_check_does(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    evaluate(gate, CLEAN)
    objects: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        (deployment(("web", REF), name=f"cart-{n}"), None) for n in range(20)
    ]
    objects.append((deployment(("web", f"{IMAGE}:1.5.0@{OTHER_DIGEST}"), name="new"), objects[0][0]))
    objects.append(({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart"}}, None))
    batch = checker(now=datetime.now(UTC))
    verdicts = batch.check_many(objects, commit={"sha": "1" * 40, "trailers": {}})
    assert [v.action for v in verdicts] == ["apply"] * 20 + ["blocked", "apply"]
    assert batch.lookups == 2  # one per distinct digest for the whole batch
    one_by_one = checker(now=datetime.now(UTC))
    assert [one_by_one.check(obj, old).reasons for obj, old in objects] == [v.reasons for v in verdicts]
    assert batch.check_many([]) == []


def test_the_decision_lookup_uses_the_digest_index(store: DecisionStore, decision_store: Path) -> None:
    query = DecisionQuery(digest=DIGEST, environment="prod", limit=5)
    where, params = where_clause(query)
    sql = f"select d.record{from_clause(query)}{where}{order_clause(query)}"
    with sqlite3.connect(decision_store) as db:
        plan = " | ".join(row[-1] for row in db.execute(f"explain query plan {sql}", params))
    assert "USING INDEX decisions_digest (digest=? AND environment=?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # newest first straight from the index


# --- fail closed -----------------------------------------------------------------------------------


def test_a_bundle_without_admission_rules_is_a_policy_error(checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    shutil.rmtree(bundle / "gate" / "admission")
    with pytest.raises(PolicyError, match=r"no deny or warn rule under data\.gate\.admission was evaluated: refusing to admit"):
        checker(bundle).check(deployment(("web", REF)))


def test_a_bundle_that_does_not_compile_is_a_policy_error(checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "admission" / "broken.rego").write_text("package gate.admission.broken\n\nimport rego.v1\n\ndeny contains x if {\n")
    with pytest.raises(PolicyError, match="policy does not compile: .*broken.rego"):
        checker(bundle)


def test_malformed_admission_data_blocks(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], tmp_path: Path) -> None:
    evaluate(gate, CLEAN)
    typo = tmp_path / "admission.json"
    typo.write_text(json.dumps({"admission": {"max_decision_age": {"prod": "30d"}}}))
    verdict = checker(data_files=[typo]).check(deployment(("web", REF)))
    assert rules(verdict) == {"admission.settings.invalid"}
    assert verdict.reasons == ('setting admission.max_decision_age for environment prod must be a Go duration such as "720h", not 30d',)


# --- AdmissionReviews a webhook receives ------------------------------------------------------------


def _request(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
    return document.get("request", document) if "request" in document else document


SAMPLES = sorted(p for p in ADMISSION.iterdir() if p.suffix in (".json", ".yaml"))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_the_admission_rules_evaluate_every_sample_request(path: Path, checker: Callable[..., AdmissionChecker]) -> None:
    request = _request(path)
    policy_input = {"request": request, "gate": {"environment": "prod", "now": "2027-01-22T00:00:00Z", "commit": None, "images": []}}
    verdict = checker().verdict(policy_input)
    assert (verdict.action, verdict.reasons, verdict.images) == ("apply", (), ())


UNPINNED = {
    "admissionreview-v1-pod-create-privileged.json": ["alpine", "nginx"],
    "admissionrequest-only-pod-implicit-latest.json": ["nginx"],
    "admissionreview-v1-deployment-create-image.json": ["ghcr.io/nginx/nginx-unprivileged:1.29.0-alpine-perl"],
    "admissionreview-v1beta1-update-gator.yaml": ["nginx:1.7.9", "tomcat"],
    "admissionreview-v1-all-fields-k8s-serializer.json": [],
}


@pytest.mark.parametrize("name", sorted(UNPINNED))
def test_sample_reviews_with_unpinned_images_are_blocked(name: str, checker: Callable[..., AdmissionChecker]) -> None:
    request = _request(ADMISSION / name)
    check = checker()
    policy_input = check.review_input(request)
    assert policy_input["request"] is request
    verdict = check.check_review(request)
    assert sorted(i["image"] for i in verdict.images) == sorted(UNPINNED[name])
    assert [v.rule for v in verdict.violations] == ["admission.images.unpinned"] * len(UNPINNED[name])
    assert verdict.action == ("blocked" if UNPINNED[name] else "apply")
    for image in UNPINNED[name]:
        assert any(f"image {image} is not pinned by digest" in reason for reason in verdict.reasons)


def test_the_privileged_pod_names_its_containers(checker: Callable[..., AdmissionChecker]) -> None:
    verdict = checker().check_review(_request(ADMISSION / "admissionreview-v1-pod-create-privileged.json"))
    assert sorted(verdict.reasons) == [
        "container spec.containers[nginx]: image nginx is not pinned by digest (tag only): a tag can move after the gate decided",
        "container spec.containers[sleeping-sidecar]: image alpine is not pinned by digest (tag only): a tag can move after the gate decided",
    ]


# --- one collector, either engine (issue 10: policy results) ---------------------------------------


def test_a_custom_admission_rule_with_malformed_finding_ids_is_a_policy_error(
    checker: Callable[..., AdmissionChecker], tmp_path: Path
) -> None:
    """Admission reads deny/warn results with promotion's collector: a result of the wrong shape fails closed."""
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "admission" / "custom.rego").write_text(
        "package gate.admission.custom\n\nimport rego.v1\n\n"
        'deny contains {"msg": "no", "rule": "custom.no", "finding_ids": "CVE-1"} if input.request\n'
    )
    with pytest.raises(PolicyError, match=r"data\.gate\.admission\.custom\.deny: rule custom\.no finding_ids must be a list of strings"):
        checker(bundle).check(deployment(("web", REF)))


@pytest.fixture
def opa_server() -> Iterator[Any]:
    """``gate serve`` on a free port: the OPA test server of tests/policy/test_opa_engine.py."""
    import threading

    from gate.serve import make_server

    server = make_server(port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_admission_on_the_opa_engine_gives_the_embedded_engines_verdicts(
    gate: Callable[..., Run], checker: Callable[..., AdmissionChecker], opa_server: Any, tmp_path: Path
) -> None:
    evaluate(gate, CLEAN)
    denied_ref = f"{IMAGE}:1.5.0@{OTHER_DIGEST}"
    evaluate(gate, ONE_CRITICAL, ref=denied_ref)
    # An allow made with its own --data (a waiver, and a 1s max_decision_age the admission rules must
    # never see): its replay switches the server's data, which must be switched back before the rules run.
    recorded = waivers_file(tmp_path, datetime.now(UTC) + timedelta(days=30))
    recorded.write_text(recorded.read_text() + "admission:\n  max_decision_age:\n    prod: 1s\n")
    waived_ref = f"{IMAGE}:1.6.0@sha256:{'ef' * 32}"
    assert evaluate(gate, ONE_CRITICAL, "--data", recorded, ref=waived_ref)["outcome"] == "allow"
    objects: list[tuple[dict[str, Any], dict[str, Any] | None]] = [
        (deployment(("web", REF)), None),
        (deployment(("web", denied_ref), name="denied"), None),
        (deployment(("web", waived_ref), name="waived"), None),
        (deployment(("web", "nginx:1.29"), name="tagged"), None),
    ]
    now = datetime.now(UTC) + timedelta(hours=1)
    local, remote = checker(now=now), checker(now=now, engine="opa", opa_url=opa_server.url)

    def seen(verdict: Verdict) -> tuple[Any, ...]:
        return (verdict.action, verdict.reasons, verdict.warnings, verdict.decision_ids, verdict.violations)

    expected = [seen(v) for v in local.check_many(objects)]
    assert [v[0] for v in expected] == ["apply", "blocked", "apply", "blocked"]
    assert [seen(v) for v in remote.check_many(objects)] == expected
    assert [seen(remote.check(obj)) for obj, _ in objects] == expected  # one by one: data switched each time
    for path in SAMPLES:
        assert seen(remote.check_review(_request(path))) == seen(local.check_review(_request(path))), path.name


def test_admission_on_an_unreachable_opa_server_fails_closed(checker: Callable[..., AdmissionChecker]) -> None:
    with pytest.raises(PolicyError, match=r"OPA server http://127\.0\.0\.1:9: .*cannot connect"):
        checker(engine="opa", opa_url="http://127.0.0.1:9")


def test_an_opa_server_that_goes_away_fails_the_check_closed(gate: Callable[..., Run], checker: Callable[..., AdmissionChecker]) -> None:
    import threading

    from gate.serve import make_server

    evaluate(gate, CLEAN)
    server = make_server(port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        check = checker(engine="opa", opa_url=server.url)
        assert check.check(deployment(("web", REF))).action == "apply"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    with pytest.raises(PolicyError, match=rf"OPA server {server.url}: .*cannot connect"):
        check.check(deployment(("web", REF)))
