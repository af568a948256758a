"""`gate serve --admission`: a ValidatingAdmissionWebhook answering real AdmissionReviews over HTTP(S).

Decisions are made by `gate evaluate` in-process (the ``gate`` fixture) from the real reports in
tests/data and recorded in the test's own SQLite log (GATE_DECISION_STORE); the server judges the
AdmissionReview samples of tests/data/admission (SOURCES.md) with the shipped gate.admission rules.
Servers run on a free port of 127.0.0.1: in a thread of this process (``make_server``), and once as
``python -m gate serve`` over TLS with a self-signed certificate made here with ``cryptography``.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gate.admission_webhook import (
    MAX_WARNING,
    MAX_WARNINGS,
    MalformedReview,
    Review,
    error_response,
    read_review,
    review_response,
)
from gate.errors import PolicyError, UsageError
from gate.reconcile.admission import Verdict
from gate.serve import make_server
from tests.conftest import DATA, DIGEST, ROOT, Run
from tests.test_serve import start

pytestmark = pytest.mark.server

POLICIES = ROOT / "policies"
ADMISSION = DATA / "admission"
IMAGE = "registry.example.com/shop/cart"
PINNED = f"{IMAGE}:1.4.2@{DIGEST}"
CLEAN = ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
ONE_CRITICAL = ("trivy/trivy-image-spring4shell-jre11-jar.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml")
UNPINNED_NGINX = "image ghcr.io/nginx/nginx-unprivileged:1.29.0-alpine-perl is not pinned by digest"


# --- helpers -------------------------------------------------------------------------------------


def sample(name: str) -> dict[str, Any]:
    """A corpus AdmissionReview as the API server would send it (YAML samples read as JSON)."""
    path = ADMISSION / name
    document = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def pinned_deployment(uid: str = "pinned-1") -> dict[str, Any]:
    """The corpus Deployment review, its image pinned to ``PINNED`` (the digest the tests decide on)."""
    review = sample("admissionreview-v1-deployment-create-image.json")
    review["request"]["uid"] = uid
    review["request"]["object"]["spec"]["template"]["spec"]["containers"][0]["image"] = PINNED
    return review


def configmap_review() -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "cm-1",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "namespace": "shop",
            "name": "settings",
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}},
            "oldObject": None,
            "dryRun": False,
        },
    }


def evaluate(gate: Callable[..., Run], reports: tuple[str, ...], env: str = "prod") -> dict[str, Any]:
    """A real decision for ``PINNED``, recorded in the test's log."""
    argv: list[Any] = ["evaluate", "--policy", POLICIES, "--image", PINNED, "--env", env, "--format", "json"]
    for report in reports:
        argv += ["--report", f"auto={DATA / report}"]
    run = gate(*argv)
    assert run.code in (0, 1), run.err
    return run.json()


@pytest.fixture
def webhook() -> Iterator[httpx.Client]:
    """A client of ``gate serve --admission --env prod --policy policies/`` on a free port."""
    yield from start(make_server(POLICIES, port=0, admission="prod"))


def review(client: httpx.Client, body: dict[str, Any], path: str = "/v1/admission") -> dict[str, Any]:
    """POST one AdmissionReview; the answer must be an AdmissionReview of the same version and uid."""
    answer = client.post(path, json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    document = answer.json()
    assert document["apiVersion"] == body["apiVersion"] and document["kind"] == "AdmissionReview"
    assert document["response"]["uid"] == body["request"]["uid"]
    assert set(document) == {"apiVersion", "kind", "response"}
    return document["response"]


def verdict(action: str, reasons: tuple[str, ...] = (), warnings: tuple[str, ...] = ()) -> Verdict:
    return Verdict(action=action, reasons=reasons, warnings=warnings, decision_ids=(), images=())


# --- the mapping, without a server -----------------------------------------------------------------


def test_read_review_takes_v1_and_v1beta1() -> None:
    read = read_review(json.dumps(sample("admissionreview-v1-pod-create-privileged.json")).encode())
    assert (read.api_version, read.operation) == ("admission.k8s.io/v1", "CREATE")
    assert read.uid == sample("admissionreview-v1-pod-create-privileged.json")["request"]["uid"]
    beta = sample("admissionreview-v1beta1-update-gator.yaml")
    beta["request"]["uid"] = "beta-1"  # the gator sample has none; the API server always sends one
    assert read_review(json.dumps(beta).encode()).api_version == "admission.k8s.io/v1beta1"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"apiVersion": ', "body is not JSON"),
        (b"\xff\xfe", "body is not UTF-8"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "\xe9"}}', "body is not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "body is nested deeper than 100 levels"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}}).encode(), "request.uid"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}).encode(), "request.uid"),
        (json.dumps({"apiVersion": "v1", "kind": "AdmissionReview", "request": {"uid": "x"}}).encode(), "apiVersion 'v1'"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": []}).encode(), "request must be an object"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": NaN}}', "body is not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (json.dumps({"apiVersion": "v1", "kind": "Pod"}).encode(), "expected kind AdmissionReview"),
        (json.dumps({"apiVersion": "admission.k8s.io/v2", "kind": "AdmissionReview", "request": {"uid": "x"}}).encode(), "admission.k8s.io/v2"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(), "request must be an object"),
        (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": ""}}).encode(), "request.uid"),
        ((ADMISSION / "admissionrequest-only-pod-implicit-latest.json").read_bytes(), "expected kind AdmissionReview"),
    ],
    ids=[
        "truncated", "not-utf8", "latin1-uid", "deep", "int-uid", "no-uid", "core-v1", "request-list", "nan",
        "array", "pod", "v2", "no-request", "empty-uid", "bare-request",
    ],  # fmt: skip
)
def test_read_review_refuses_what_it_cannot_answer(body: bytes, problem: str) -> None:
    with pytest.raises(MalformedReview, match="^AdmissionReview: ") as raised:
        read_review(body)
    assert problem in raised.value.diagnostics()


def test_a_blocked_verdict_is_a_403_with_every_reason() -> None:
    request = Review("admission.k8s.io/v1beta1", "u-1", {"operation": "CREATE"})
    answer = review_response(request, verdict("blocked", ("image a is not pinned", "image b has no decision"), ("soon",)))
    assert answer == {
        "apiVersion": "admission.k8s.io/v1beta1",
        "kind": "AdmissionReview",
        "response": {
            "uid": "u-1",
            "allowed": False,
            "status": {"code": 403, "reason": "Forbidden", "message": "image a is not pinned; image b has no decision"},
            "warnings": ["soon"],
        },
    }


def test_a_blocked_verdict_always_says_why() -> None:
    request = Review("admission.k8s.io/v1", "u-4", {"operation": "CREATE"})
    silent = review_response(request, verdict("blocked", ("", "image a is\nnot pinned")))["response"]["status"]["message"]
    assert silent == "a deny rule of gate's admission policy gave no message; image a is not pinned"
    assert review_response(request, verdict("blocked"))["response"]["status"]["message"] == "denied by gate's admission policy"


def test_an_applied_verdict_is_allowed_with_short_one_line_warnings() -> None:
    request = Review("admission.k8s.io/v1", "u-2", {})
    long = "waiver W-1 expires soon: " + "x" * 400
    many = tuple(f"warning {i}" for i in range(MAX_WARNINGS + 3))
    answer = review_response(request, verdict("apply", (), ("two\nlines", long)))["response"]
    assert answer["allowed"] is True and "status" not in answer
    assert answer["warnings"][0] == "two lines"
    assert len(answer["warnings"][1]) == MAX_WARNING and answer["warnings"][1].endswith("…")
    assert answer["warnings"][1].startswith("waiver W-1 expires soon: x")
    capped = review_response(request, verdict("apply", (), many))["response"]["warnings"]
    assert capped[:MAX_WARNINGS] == list(many[:MAX_WARNINGS]) and capped[-1] == "and 3 more warnings"
    assert "warnings" not in review_response(request, verdict("apply"))["response"]


def test_an_error_denies_with_its_message() -> None:
    answer = error_response(Review("admission.k8s.io/v1", "u-3", {}), "decision log x.db: locked")["response"]
    assert answer == {
        "uid": "u-3",
        "allowed": False,
        "status": {"code": 500, "reason": "InternalError", "message": "gate could not judge the request: decision log x.db: locked"},
    }


# --- the webhook over HTTP -------------------------------------------------------------------------


def test_the_privileged_pod_with_untagged_images_is_denied(webhook: httpx.Client) -> None:
    body = sample("admissionreview-v1-pod-create-privileged.json")
    response = review(webhook, body)
    assert response["allowed"] is False
    assert response["status"]["code"] == 403 and response["status"]["reason"] == "Forbidden"
    reasons = response["status"]["message"].split("; ")
    assert sorted(reasons) == [
        "container spec.containers[nginx]: image nginx is not pinned by digest (tag only): a tag can move after the gate decided",
        "container spec.containers[sleeping-sidecar]: image alpine is not pinned by digest (tag only): a tag can move after the gate decided",
    ]


def test_the_tagged_deployment_is_denied_and_validate_is_an_alias(webhook: httpx.Client) -> None:
    body = sample("admissionreview-v1-deployment-create-image.json")
    for path in ("/v1/admission", "/validate", "/validate?timeout=10s"):  # the API server adds ?timeout=
        response = review(webhook, body, path)
        assert response["allowed"] is False and UNPINNED_NGINX in response["status"]["message"]


def test_a_digest_with_a_signed_allow_is_admitted(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    assert evaluate(gate, CLEAN)["outcome"] == "allow"
    response = review(webhook, pinned_deployment())
    assert response["allowed"] is True, response
    assert "status" not in response


def test_a_digest_with_a_deny_decision_is_denied(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    assert evaluate(gate, ONE_CRITICAL)["outcome"] == "deny"
    response = review(webhook, pinned_deployment())
    assert response["allowed"] is False
    assert DIGEST in response["status"]["message"]


def test_an_allow_for_another_environment_does_not_admit(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    assert evaluate(gate, CLEAN, env="staging")["outcome"] == "allow"
    response = review(webhook, pinned_deployment())
    assert response["allowed"] is False and DIGEST in response["status"]["message"]


def test_decisions_made_after_the_server_started_count(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    assert review(webhook, pinned_deployment("before"))["allowed"] is False
    evaluate(gate, CLEAN)
    assert review(webhook, pinned_deployment("after"))["allowed"] is True


def test_objects_without_images_and_deletes_are_allowed(webhook: httpx.Client) -> None:
    assert review(webhook, configmap_review())["allowed"] is True
    delete = sample("admissionreview-v1-deployment-create-image.json")
    request = delete["request"]
    request["operation"], request["oldObject"], request["object"] = "DELETE", request["object"], None
    assert review(webhook, delete) == {"uid": request["uid"], "allowed": True}


def test_dry_run_requests_are_judged_the_same(webhook: httpx.Client) -> None:
    body = sample("admissionreview-v1-deployment-create-image.json")
    body["request"]["dryRun"] = True
    response = review(webhook, body)
    assert response["allowed"] is False and UNPINNED_NGINX in response["status"]["message"]


def pod_review(uid: str, image: str = "nginx:1.27", operation: str = "CREATE") -> dict[str, Any]:
    """A Pod review as the API server sends it; the image is unpinned, so a judged review is denied."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "web", "image": image}]},
    }
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "name": "web",
            "operation": operation,
            "userInfo": {"username": "alice"},
            "object": pod,
            "oldObject": copy.deepcopy(pod) if operation == "UPDATE" else None,
            "dryRun": False,
        },
    }


def denied(response: dict[str, Any], *phrases: str) -> bool:
    """True when ``response`` refuses with a message holding every phrase."""
    message = response.get("status", {}).get("message", "")
    return response["allowed"] is False and bool(message) and all(p in message for p in phrases)


@pytest.mark.parametrize("operation", ["CREATE", "UPDATE", "CONNECT"])
@pytest.mark.parametrize("object_", [None, "missing", "x", ["a"]], ids=["null", "missing", "string", "list"])
def test_a_request_without_an_object_is_denied(webhook: httpx.Client, operation: str, object_: Any) -> None:
    body = pod_review(f"no-object-{operation}", operation=operation)
    if object_ == "missing":
        del body["request"]["object"]
    else:
        body["request"]["object"] = object_
    response = review(webhook, body)
    assert denied(response, f"{operation} request has no object"), response


def test_a_kind_that_does_not_match_the_object_is_denied(webhook: httpx.Client) -> None:
    """The policy would judge one kind while the API server stores another."""
    as_configmap = pod_review("kind-1")
    as_configmap["request"]["kind"] = {"group": "", "version": "v1", "kind": "ConfigMap"}
    assert denied(review(webhook, as_configmap), "request.kind is ConfigMap (v1)", "request.object is Pod (v1)")
    other_version = pinned_deployment("kind-2")
    other_version["request"]["kind"]["version"] = "v1beta2"
    assert denied(review(webhook, other_version), "request.kind is Deployment (apps/v1beta2)", "Deployment (apps/v1)")
    no_kind = pod_review("kind-3")
    del no_kind["request"]["object"]["kind"]
    assert denied(review(webhook, no_kind), "request.object is ? (v1)")
    no_request_kind = pod_review("kind-4")
    del no_request_kind["request"]["kind"]
    assert denied(review(webhook, no_request_kind), "request.kind must be")
    # Kubernetes' serializer fixture: kind "kindValue" for a CustomType object, operation "operationValue"
    fixture = review(webhook, sample("admissionreview-v1-all-fields-k8s-serializer.json"))
    assert denied(fixture, "operationValue"), fixture


def test_an_unknown_operation_or_a_missing_resource_is_denied(webhook: httpx.Client) -> None:
    patch = pod_review("op-1", operation="PATCH")
    assert denied(review(webhook, patch), "request.operation 'PATCH'")
    no_resource = pod_review("resource-1")
    del no_resource["request"]["resource"]
    assert denied(review(webhook, no_resource), "request.resource must be")


@pytest.mark.parametrize(
    "containers",
    [{"field": "containers", "value": "x"}, {"field": "initContainers", "value": {"name": "init"}}],
    ids=["containers-string", "init-containers-object"],
)
def test_malformed_container_fields_are_denied(webhook: httpx.Client, containers: dict[str, Any]) -> None:
    body = pinned_deployment("malformed-containers")
    body["request"]["object"]["spec"]["template"]["spec"][containers["field"]] = containers["value"]
    response = review(webhook, body)
    assert denied(response, f"spec.template.spec.{containers['field']} "), response  # named, not skipped


def subresource_review(uid: str, resource: str, subresource: str, operation: str, obj: dict[str, Any]) -> dict[str, Any]:
    group, _, version = str(obj["apiVersion"]).rpartition("/")
    body = pod_review(uid, operation=operation)
    body["request"].update(
        {
            "kind": {"group": group, "version": version, "kind": obj["kind"]},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "subResource": subresource,
            "object": obj,
            "oldObject": None,
        }
    )
    return body


def test_subresources_are_judged_by_what_they_run(webhook: httpx.Client) -> None:
    # ephemeral containers start images: judged, as a Pod (Kubernetes >= 1.22)...
    pod = pod_review("eph-1", image=PINNED)["request"]["object"]
    pod["spec"]["ephemeralContainers"] = [{"name": "debug", "image": "busybox:1.36"}]
    response = review(webhook, subresource_review("eph-1", "pods", "ephemeralcontainers", "UPDATE", pod))
    assert denied(response, "image busybox:1.36 is not pinned by digest"), response
    # ...or as the EphemeralContainers kind of Kubernetes 1.16 to 1.21
    legacy = {
        "apiVersion": "v1",
        "kind": "EphemeralContainers",
        "metadata": {"name": "web", "namespace": "shop"},
        "ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}],
    }
    response = review(webhook, subresource_review("eph-2", "pods", "ephemeralcontainers", "UPDATE", legacy))
    assert denied(response, "busybox:1.36"), response
    # a status write is judged on the whole object
    status = review(webhook, subresource_review("status-1", "pods", "status", "UPDATE", pod_review("s")["request"]["object"]))
    assert denied(status, "image nginx:1.27 is not pinned by digest"), status
    # exec and scale start no image: judged, nothing to deny
    exec_options = {"apiVersion": "v1", "kind": "PodExecOptions", "container": "web", "command": ["sh"], "stdin": True}
    assert review(webhook, subresource_review("exec-1", "pods", "exec", "CONNECT", exec_options))["allowed"] is True
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web"}, "spec": {"replicas": 3}}
    assert review(webhook, subresource_review("scale-1", "deployments", "scale", "UPDATE", scale))["allowed"] is True
    # a subresource whose request runs images the object does not name (an OpenShift rollback) is refused
    rollback = {"apiVersion": "apps.openshift.io/v1", "kind": "DeploymentConfigRollback", "name": "web", "spec": {"revision": 3}}
    response = review(webhook, subresource_review("rollback-1", "deploymentconfigs", "rollback", "CREATE", rollback))
    assert denied(response, "subresource deploymentconfigs/rollback"), response


def test_a_v1beta1_review_is_answered_as_v1beta1(webhook: httpx.Client) -> None:
    body = sample("admissionreview-v1beta1-update-gator.yaml")
    # the gator sample has no uid, kind or resource; the API server always sends them
    body["request"]["uid"] = "gator-update-1"
    body["request"]["kind"] = {"group": "", "version": "v1", "kind": "Pod"}
    body["request"]["resource"] = {"group": "", "version": "v1", "resource": "pods"}
    response = review(webhook, body)
    assert response["allowed"] is False
    assert "image tomcat is not pinned by digest" in response["status"]["message"]
    assert "image nginx:1.7.9 is not pinned by digest" in response["status"]["message"]


def test_malformed_requests_are_a_400_without_a_traceback(webhook: httpx.Client) -> None:
    malformed = webhook.post("/v1/admission", content=b'{"apiVersion": "admission.k8s.io/v1", "kind": ')
    assert malformed.status_code == 400
    assert malformed.json()["code"] == "invalid_parameter"
    assert malformed.json()["message"].startswith("AdmissionReview: body is not JSON")
    assert "Traceback" not in malformed.text
    bare = webhook.post("/validate", content=(ADMISSION / "admissionrequest-only-pod-implicit-latest.json").read_bytes())
    assert bare.status_code == 400 and "expected kind AdmissionReview" in bare.json()["message"]
    assert webhook.get("/v1/admission").status_code == 405
    # the connection is still usable: the next review is answered
    assert review(webhook, configmap_review())["allowed"] is True


def test_a_review_over_the_size_limit_is_refused(webhook: httpx.Client) -> None:
    body = configmap_review()
    body["request"]["object"]["data"] = {"big": "x" * (8 * 1024 * 1024)}
    too_big = webhook.post("/v1/admission", json=body)
    assert too_big.status_code == 413 and too_big.json()["code"] == "invalid_parameter"


def test_concurrent_reviews_are_all_judged(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    """regorus engines and SQLite connections belong to one thread: the webhook's worker judges all."""
    evaluate(gate, CLEAN)
    answers: dict[int, bool] = {}

    def ask(i: int) -> None:
        with httpx.Client(base_url=str(webhook.base_url), timeout=60) as own:
            body = pinned_deployment(f"c-{i}") if i % 2 else sample("admissionreview-v1-deployment-create-image.json")
            body["request"]["uid"] = f"c-{i}"
            answer = own.post("/v1/admission", json=body).json()["response"]
            assert answer["uid"] == f"c-{i}"
            answers[i] = answer["allowed"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert answers == {i: bool(i % 2) for i in range(8)}


def test_the_data_api_still_works_and_needs_the_token_the_webhook_does_not() -> None:
    for client in start(make_server(POLICIES, port=0, admission="prod", token="t0ken")):
        assert review(client, configmap_review())["allowed"] is True  # the API server sends no token
        assert client.get("/v1/policies").status_code == 401
        listed = client.get("/v1/policies", headers={"Authorization": "Bearer t0ken"}).json()["result"]
        assert any(p["id"].startswith("gate/admission/") for p in listed)


def test_without_admission_there_is_no_webhook() -> None:
    for client in start(make_server(POLICIES, port=0)):
        assert client.post("/v1/admission", json=configmap_review()).status_code == 404


# --- fail closed -----------------------------------------------------------------------------------


def test_an_unreadable_decision_denies_the_image_naming_the_record(gate: Callable[..., Run], webhook: httpx.Client, decision_store: Path) -> None:
    """A record that no longer decodes blocks the image it is about (as an untrusted decision), with the
    record named; the webhook keeps judging (it is not an error of the whole request)."""
    decision = evaluate(gate, CLEAN)
    with sqlite3.connect(decision_store) as db:
        db.execute("update decisions set record = ?", (b"{not json",))
    response = review(webhook, pinned_deployment())
    assert response["allowed"] is False
    assert response["status"]["code"] == 403
    message = response["status"]["message"]
    assert f"record seq 1 (decision {decision['decision_id']}) cannot be read: " in message, message
    assert "blocked (gate.decisions.trust)" in message and "Traceback" not in message


def test_a_bundle_without_admission_rules_denies_everything(tmp_path: Path) -> None:
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    shutil.rmtree(bundle / "gate" / "admission")
    for client in start(make_server(bundle, port=0, admission="prod")):
        response = review(client, configmap_review())
        assert response["allowed"] is False and response["status"]["code"] == 500
        assert "no deny or warn rule under data.gate.admission was evaluated: refusing to admit" in response["status"]["message"]


def test_a_bundle_that_does_not_compile_stops_the_start(tmp_path: Path) -> None:
    bundle = tmp_path / "policies"
    shutil.copytree(POLICIES, bundle)
    (bundle / "gate" / "admission" / "broken.rego").write_text("package gate.admission.broken\n\nimport rego.v1\n\ndeny contains x if {\n")
    with pytest.raises(PolicyError, match="broken.rego"):
        make_server(bundle, port=0, admission="prod")


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="--tls-cert and --tls-key go together"):
        make_server(port=0, tls_cert="cert.pem")
    with pytest.raises(UsageError, match="--tls-cert missing.pem / --tls-key missing.key: cannot load"):
        make_server(port=0, tls_cert="missing.pem", tls_key="missing.key")


def test_the_cli_wants_env_with_admission(gate: Callable[..., Run]) -> None:
    run = gate("serve", "--admission", "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "serve --admission needs --env ENV" in run.err
    run = gate("serve", "--env", "prod", "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "serve --env is for --admission" in run.err


def test_the_webhook_judges_on_the_opa_engine_as_on_the_embedded_one(gate: Callable[..., Run], webhook: httpx.Client) -> None:
    """``serve --admission --engine opa --opa-url``: the admission rules run on an OPA server (here the
    OPA test server, a second ``gate serve``) with the embedded engine's answers."""
    opa = make_server(port=0)
    opa_thread = threading.Thread(target=opa.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    opa_thread.start()
    try:
        options = {"checker_options": {"engine": "opa", "opa_url": opa.url}}
        remote = start(make_server(POLICIES, port=0, admission="prod", admission_options=options))
        client = next(remote)
        try:
            assert review(client, pinned_deployment("none"))["allowed"] is False
            assert evaluate(gate, CLEAN)["outcome"] == "allow"
            for body in (pinned_deployment("allow"), sample("admissionreview-v1-pod-create-privileged.json"), configmap_review()):
                assert review(client, body) == review(webhook, body)
            assert review(client, pinned_deployment("allow"))["allowed"] is True
        finally:
            remote.close()
    finally:
        opa.shutdown()
        opa.server_close()
        opa_thread.join(5)


def test_the_cli_takes_an_engine_for_admission_only(gate: Callable[..., Run]) -> None:
    run = gate("serve", "--engine", "opa", "--opa-url", "http://127.0.0.1:9", "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "serve --engine/--opa-url are for --admission" in run.err
    run = gate("serve", "--admission", "--env", "prod", "--engine", "opa", "--policy", POLICIES, "--addr", "127.0.0.1:0")
    assert run.code == 2 and "--engine opa needs --opa-url URL" in run.err
    run = gate("serve", "--admission", "--env", "prod", "--engine", "opa", "--opa-url", "http://127.0.0.1:9",
               "--policy", POLICIES, "--addr", "127.0.0.1:0")
    errors = [line for line in run.err.splitlines() if line.startswith("gate: error:")]
    assert run.code == 2 and len(errors) == 1 and "OPA server http://127.0.0.1:9" in errors[0], run.err
    assert "Traceback" not in run.err


# --- TLS, and the command itself -------------------------------------------------------------------


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (so a client can trust exactly it), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gate-webhook.gate-system.svc")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("gate-webhook.gate-system.svc"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


@pytest.fixture
def tls_command(
    gate: Callable[..., Run], tmp_path: Path, signing_key: tuple[Path, Path]
) -> Iterator[tuple[str, Path, list[str]]]:
    """``python -m gate serve --admission --env prod`` over TLS on a free port, trusting the session
    key through GATE_TRUSTED_KEYS: (its URL, the certificate, its stderr lines so far). Stopped
    afterwards, also on failure; if it does not come up, the test fails with its stderr."""
    evaluate(gate, CLEAN)  # the webhook refuses to start without a decision log to judge by
    cert, key = self_signed(tmp_path)
    argv = [
        sys.executable, "-m", "gate", "serve", "--admission", "--env", "prod", "--policy", str(POLICIES),
        "--addr", "127.0.0.1:0", "--tls-cert", str(cert), "--tls-key", str(key),
    ]  # fmt: skip
    env = {**os.environ, "GATE_TRUSTED_KEYS": str(signing_key[1])}
    process = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    lines: list[str] = []
    listening = threading.Event()

    def drain() -> None:  # keeps reading, so the server never blocks on a full pipe
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if line.startswith("gate: serving on "):
                listening.set()
        listening.set()  # EOF: it exited

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        listening.wait(60)
        serving = [line for line in lines if line.startswith("gate: serving on ")]
        if not serving:
            process.kill()
            reader.join(10)
            pytest.fail(f"gate serve --admission did not start (exit {process.poll()}): {''.join(lines)}")
        yield serving[0].removeprefix("gate: serving on ").strip(), cert, lines
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)


def test_the_command_serves_the_webhook_over_tls(gate: Callable[..., Run], tls_command: tuple[str, Path, list[str]]) -> None:
    url, cert, stderr = tls_command
    assert url.startswith("https://127.0.0.1:")
    evaluate(gate, CLEAN)
    import ssl

    trusted = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(base_url=url, verify=trusted, timeout=60) as client:
        assert review(client, pinned_deployment())["allowed"] is True
        denied = review(client, sample("admissionreview-v1-pod-create-privileged.json"))
        assert denied["allowed"] is False and "image nginx is not pinned by digest" in denied["status"]["message"]
        assert client.get("/health").json() == {}
    # a client that does not trust the certificate is refused, and plain HTTP gets no answer...
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{url}/v1/admission", json=configmap_review(), timeout=10)
    with pytest.raises(httpx.TransportError):
        httpx.post(url.replace("https://", "http://") + "/v1/admission", json=configmap_review(), timeout=10)
    # ...and neither stopped the server
    with httpx.Client(base_url=url, verify=trusted, timeout=60) as client:
        assert review(client, copy.deepcopy(configmap_review()))["allowed"] is True
    assert not any("Traceback" in line for line in stderr), "".join(stderr)


def test_only_decisions_signed_by_gate_trusted_keys_admit(
    gate: Callable[..., Run], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, signing_key: tuple[Path, Path]
) -> None:
    from gate.decisions.signing import generate_keypair

    evaluate(gate, CLEAN)  # signed with the session key
    _, other_public = generate_keypair(tmp_path)
    monkeypatch.setenv("GATE_TRUSTED_KEYS", str(other_public))
    for client in start(make_server(POLICIES, port=0, admission="prod")):
        response = review(client, pinned_deployment())
        assert response["allowed"] is False and "not a trusted key (GATE_TRUSTED_KEYS)" in response["status"]["message"]
    monkeypatch.setenv("GATE_TRUSTED_KEYS", f"{other_public},{signing_key[1]}")
    for client in start(make_server(POLICIES, port=0, admission="prod")):
        assert review(client, pinned_deployment())["allowed"] is True


def test_a_failed_bind_closes_the_webhook() -> None:
    for client in start(make_server(port=0)):
        port = int(str(client.base_url).rsplit(":", 1)[1])
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}"):
            make_server(POLICIES, port=port, admission="prod")
    assert not [t for t in threading.enumerate() if t.name.startswith("gate-admission-")]


def test_the_shipped_manifest_matches_the_server(tmp_path: Path) -> None:
    """deploy/webhook.yaml added to the deploy/ base in an overlay, rendered by the real
    ``kubectl kustomize``: fail closed, no side effects, a path gate answers, arguments gate's own
    parser accepts, and every ConfigMap and Secret key it reads from the base is there."""
    from gate.cli import build_parser
    from gate.reconcile.render import render
    from gate.serve import ADMISSION_PATHS

    shutil.copytree(ROOT / "deploy", tmp_path / "base", ignore=shutil.ignore_patterns("webhook.yaml"))
    (tmp_path / "overlay").mkdir()
    shutil.copy(ROOT / "deploy" / "webhook.yaml", tmp_path / "overlay")
    (tmp_path / "overlay" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../base, webhook.yaml]\n"
        f"images:\n  - name: ghcr.io/promotion-gate/gate\n    newName: registry.example.com/platform/gate\n    digest: {DIGEST}\n"
    )
    objects = render(tmp_path, "overlay")
    named = {(o["kind"], o["metadata"]["name"]): o for o in objects}

    [hook] = named["ValidatingWebhookConfiguration", "gate"]["webhooks"]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    service = hook["clientConfig"]["service"]
    assert [s for s in service["path"].split("/") if s] in ADMISSION_PATHS
    assert ("Service", service["name"]) in named and named["Service", service["name"]]["metadata"]["namespace"] == service["namespace"]
    [excluded] = hook["namespaceSelector"]["matchExpressions"]
    assert excluded["operator"] == "NotIn" and {"kube-system", "gate-system"} <= set(excluded["values"])
    resources = {r for rule in hook["rules"] for r in rule["resources"]}
    assert {"deployments", "pods", "cronjobs", "statefulsets", "daemonsets", "jobs"} <= resources
    assert all("DELETE" not in rule["operations"] for rule in hook["rules"])

    deployment = named["Deployment", "gate-webhook"]
    pod = deployment["spec"]["template"]["spec"]
    assert named["Service", "gate-webhook"]["spec"]["selector"].items() <= pod_labels(deployment).items()
    [container] = pod["containers"]
    assert container["image"] == f"registry.example.com/platform/gate@{DIGEST}"
    args = build_parser().parse_args([*container["command"][1:], *container["args"]])
    assert (args.admission, args.env) == (True, "prod")
    assert args.addr.endswith(f":{container['ports'][0]['containerPort']}")
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    # policy layers that are folders (gate:library is in the image, oci:// in a registry) must be mounted
    folders = [p for p in args.policy or () if p != "gate:library" and not p.startswith("oci://")]
    for path in (*folders, *(args.data or ()), args.tls_cert, args.tls_key):
        assert any(path.startswith(f"{mount}/") or path == mount for mount in mounts), path
    for volume in volumes.values():
        if "configMap" in volume:
            assert ("ConfigMap", volume["configMap"]["name"]) in named
    settings = named["ConfigMap", "gate-settings"]["data"]
    assert Path(args.data[0]).name in settings
    env = {e["name"]: e for e in container["env"]}
    assert env["GATE_TRUSTED_KEYS"]["value"] in mounts
    store_ref = env["GATE_DECISION_STORE"]["valueFrom"]["secretKeyRef"]
    secret = named["Secret", store_ref["name"]]
    assert store_ref["key"] in {**secret.get("stringData", {}), **secret.get("data", {})}


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels
