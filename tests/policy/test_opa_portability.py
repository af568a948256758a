"""The shipped Rego library (policies/) gives the same answers on regorus and on real OPA.

"Real OPA" here is OPA's own Go evaluator, v1.20.2 (``github.com/open-policy-agent/opa/v1/rego``),
embedded in this process as a C library by the PyPI package ``opa-golib-python-bindings`` 0.4.4
(``import opa_bindings``). It is not an OPA server and not the ``opa`` binary: no OPA binary can be
installed on these machines, and ``tests/policy/test_opa_engine.py`` can only run the OPA *client*
against ``gate serve`` (which evaluates with regorus). The Go parser, compiler and evaluator are
the ones ``opa test`` and ``opa run -s`` use, so what passes here passes there (for OPA 1.20).

The package says Requires-Python >=3.14, but it is ctypes over a Go c-shared library and runs on
3.11; install it with

    pip install --ignore-requires-python opa-golib-python-bindings==0.4.4

Only this module imports ``opa_bindings``; gate itself never does (checked below).

Three parts:

- every ``test_*`` rule of every ``*_test.rego`` passes under OPA, as under regorus
  (``gate policy test``), one pytest test per Rego test;
- ``data.gate.promotion`` is identical on both engines for documents ``gate scan`` makes of the
  real reports in tests/data, in prod and staging, with ``now`` and waivers;
- ``data.gate.admission`` is identical on both engines for the real AdmissionReview requests in
  tests/data/admission, with images that reach every admission rule, and with admission data;
- a policy OPA refuses gets no answer from regorus either (syntax errors and compile errors).

Known leniency of regorus (0.13) that the first part guards against, since OPA compiles the whole
bundle there: two ``default`` rules for one name are an OPA compile error, while regorus takes the
first; an unsafe variable in a rule head is an OPA compile error, while regorus fails only when
the rule is evaluated.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

try:
    from opa_bindings import OpaEngine, OpaError
except ImportError as e:  # pragma: no cover - a CI set-up error, never a skip
    raise ImportError(
        "tests/policy/test_opa_portability.py needs OPA's Go engine: "
        "pip install --ignore-requires-python opa-golib-python-bindings==0.4.4"
    ) from e

from gate import rfc3339
from gate.errors import PolicyError
from gate.policy.bundle import Bundle, load_bundle, merge_data
from gate.policy.embedded import EmbeddedEngine
from gate.policy.testing import TestResult, discover, run_tests
from gate.policy.waivers import validate_waivers
from tests.conftest import DATA, DIGEST, ROOT

POLICIES = ROOT / "policies"
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)


def _opa(bundle: Bundle, sources: dict[str, str], data: dict[str, Any]) -> OpaEngine:
    """An OPA engine with these modules (added in path order, as the bundle lists them) and data."""
    engine = OpaEngine()
    for path, text in sorted(sources.items()):
        engine.add_policy(path, text)
    engine.add_data(data)
    return engine


# -------------------------------------------------------------------------------------------------
# 1. The Rego unit tests under OPA
# -------------------------------------------------------------------------------------------------

BUNDLE = load_bundle(POLICIES)
REGO_TESTS = discover(BUNDLE.sources)


@pytest.fixture(scope="module")
def opa_with_tests() -> OpaEngine:
    """The whole bundle, tests included, with its data: what ``opa test policies/`` loads."""
    return _opa(BUNDLE, BUNDLE.sources, BUNDLE.data)


@pytest.fixture(scope="module")
def regorus_results() -> dict[tuple[str, str], TestResult]:
    """``gate policy test policies``: every test's result under regorus."""
    return {(r.package, r.name): r for r in run_tests(BUNDLE).results}


def test_the_whole_bundle_compiles_in_opa(opa_with_tests: OpaEngine) -> None:
    """OPA compiles every module at the first query: type, safety and default-rule errors show here."""
    assert isinstance(opa_with_tests.eval_document("gate"), dict)


def test_opa_sees_no_test_that_discovery_misses(opa_with_tests: OpaEngine) -> None:
    """Every ``test_*`` rule OPA evaluates is one ``gate policy test`` runs too."""
    discovered = {(t.package, t.name) for t in REGO_TESTS}
    packages = {m[1] for text in BUNDLE.sources.values() if (m := _PACKAGE.search(text))}
    seen_by_opa = set()
    for package in packages:
        document = opa_with_tests.eval_document(package)
        seen_by_opa |= {(package, name) for name in document if name.startswith("test_")}
    assert seen_by_opa, "OPA found no test rule at all"
    assert seen_by_opa <= discovered, sorted(seen_by_opa - discovered)
    assert len(REGO_TESTS) >= 100  # the shipped library has well over 100 tests


@pytest.mark.parametrize("rego_test", REGO_TESTS, ids=[f"{t.package}.{t.name}" for t in REGO_TESTS])
def test_rego_test_passes_under_opa_as_under_regorus(
    rego_test: Any, opa_with_tests: OpaEngine, regorus_results: dict[tuple[str, str], TestResult]
) -> None:
    try:
        bindings = opa_with_tests.eval_query(f"x := data.{rego_test.package}.{rego_test.name}")
        opa = "pass" if bindings == [{"x": True}] else f"fail: {'undefined' if not bindings else bindings}"
    except OpaError as e:
        opa = f"error: {e}"
    ours = regorus_results[(rego_test.package, rego_test.name)]
    regorus = "pass" if ours.passed else f"fail: {ours.error}"
    where = f"{rego_test.path}:{rego_test.line}"
    assert (opa, regorus) == ("pass", "pass"), f"{where}: OPA {opa}; regorus {regorus}"


# -------------------------------------------------------------------------------------------------
# 2. data.gate.promotion on realistic inputs
# -------------------------------------------------------------------------------------------------

NOW = datetime(2027, 1, 22, 9, 30, tzinfo=UTC)
JUICE_SHOP_IMAGE = "registry.example.com/shop/juice-shop"
IMAGES = {
    "juice-shop": f"{JUICE_SHOP_IMAGE}:12.10.2@{DIGEST}",
    "alpine": f"registry.example.com/base/alpine:3.10@{DIGEST}",
    "secrets": f"registry.example.com/shop/cart:1.4.2@{DIGEST}",
}
REPORTS = {
    "juice-shop": (
        "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json",
        "coverage/cobertura-coveragepy-6.3.2-multi-package.xml",
        "sonarqube/sonarqube-api-qualitygates-project_status-example.json",
    ),
    "alpine": ("trivy/trivy-image-alpine-310.json", "coverage/cobertura-java-cobertura-1.9-maven-example.xml"),
    "secrets": ("trivy/trivy-fs-secrets.json", "trivy/trivy-config-dockerfile-misconfig.json"),
}
ENVIRONMENTS = ("prod", "staging")


def _waiver(id: str, rule: str, expires_in: timedelta, **scope: str) -> dict[str, str]:
    return {
        "id": id,
        "rule": rule,
        "reason": "not reachable in this deployment",
        "approved_by": "secops@example.com",
        "expires": rfc3339.format(NOW + expires_in),
        **scope,
    }


WAIVERS = [
    # the four the contract is about (policies/README.md), all on juice-shop findings
    _waiver("W-ACTIVE", "CVE-2021-44906", timedelta(days=90), image=JUICE_SHOP_IMAGE),
    _waiver("W-EXPIRING", "CVE-2021-3807", timedelta(days=9)),
    _waiver("W-EXPIRED", "CVE-2021-42378", timedelta(days=-3)),
    _waiver("W-STALE", "CVE-1999-0001", timedelta(days=60)),
    # the other wordings and scopes: "in less than a day" in prod only, "in 1 day" on a secret,
    # exactly at the 14-day edge on a misconfiguration
    _waiver("W-HOURS", "CVE-2019-1549", timedelta(hours=5), environment="prod"),
    _waiver("W-ONE-DAY", "aws-access-key-id", timedelta(days=1, hours=2)),
    _waiver("W-EDGE", "DS-0002", timedelta(days=14)),
]
CASES = [(name, env) for name in REPORTS for env in ENVIRONMENTS]


def _data() -> dict[str, Any]:
    """What ``gate evaluate --data waivers.json`` gives the engine: bundle data plus the waivers."""
    data = merge_data(BUNDLE.data, {"waivers": WAIVERS})
    validate_waivers(data)
    return data


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``gate scan --format json`` of each report set, run in-process."""
    from gate.cli import main

    out = tmp_path_factory.mktemp("scan")
    documents = {}
    with pytest.MonkeyPatch.context() as env:  # the CI machine's variables stay out of the documents
        for var in ("GITHUB_SHA", "GITHUB_RUN_ID", "CI_COMMIT_SHA", "GIT_COMMIT", "BUILD_URL", "CI_PIPELINE_URL"):
            env.delenv(var, raising=False)
        for name, reports in REPORTS.items():
            argv = ["scan", "--format", "json", "--image", IMAGES[name], "--output", str(out / f"{name}.json")]
            for report in reports:
                argv += ["--report", f"auto={DATA / report}"]
            assert main(argv) == 0, name
            documents[name] = json.loads((out / f"{name}.json").read_text())
    return documents


@pytest.fixture(scope="module")
def opa_engine() -> OpaEngine:
    """The bundle's policies (tests excluded) and data with waivers, as ``gate evaluate`` loads them."""
    return _opa(BUNDLE, BUNDLE.policies(), _data())


@pytest.fixture(scope="module")
def embedded_engine() -> EmbeddedEngine:
    engine = EmbeddedEngine()
    engine.load(BUNDLE, _data())
    return engine


SET_PATHS = "paths := [path | walk(data.gate.promotion, [path, value]); is_set(value)]"


def _canonical(value: Any, sets: list[list[Any]], at: tuple[Any, ...] = ()) -> Any:
    """``value`` with each set (by path) sorted by its members' canonical JSON."""
    if isinstance(value, dict):
        return {k: _canonical(v, sets, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v, sets, (*at, i)) for i, v in enumerate(value)]
        if list(at) in sets:
            items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return items
    return value


def _regorus_set_paths(engine: EmbeddedEngine, policy_input: dict[str, Any]) -> list[list[Any]]:
    engine.raw.set_input_json(json.dumps(policy_input))
    answer = json.loads(engine.raw.eval_query_as_json(SET_PATHS))
    return answer["result"][0]["bindings"]["paths"]


def _rules(document: dict[str, Any], package: str, kind: str) -> list[str]:
    return sorted(r["rule"] for r in document[package].get(kind, []))


@pytest.mark.parametrize(("reports", "environment"), CASES, ids=[f"{n}-{e}" for n, e in CASES])
def test_promotion_document_is_identical(
    reports: str,
    environment: str,
    documents: dict[str, dict[str, Any]],
    opa_engine: OpaEngine,
    embedded_engine: EmbeddedEngine,
) -> None:
    policy_input = {**documents[reports], "environment": environment, "now": rfc3339.format(NOW)}

    from_opa = opa_engine.eval_document("gate.promotion", policy_input)
    from_regorus = embedded_engine.evaluate("gate.promotion", policy_input)

    # Both engines agree on which values are sets (JSON arrays either way) before those are sorted.
    sets = opa_engine.eval_query(SET_PATHS, policy_input)[0]["paths"]
    assert sorted(map(json.dumps, _regorus_set_paths(embedded_engine, policy_input))) == sorted(map(json.dumps, sets))
    assert ["vulnerabilities", "deny"] in sets and ["waivers", "applied"] in sets
    opa, regorus = _canonical(from_opa, sets), _canonical(from_regorus, sets)
    if opa != regorus:
        differing = sorted(k for k in opa.keys() | regorus.keys() if opa.get(k) != regorus.get(k))
        detail = {k: {"opa": opa.get(k), "regorus": regorus.get(k)} for k in differing}
        pytest.fail(f"OPA and regorus differ in data.gate.promotion.{differing}:\n{json.dumps(detail)[:4000]}")

    # Not a vacuous comparison: the inputs reach the rules they are meant to.
    assert _rules(opa, "settings", "deny") == []
    applied = sorted(w["id"] for w in opa["waivers"]["applied"])
    warned = _rules(opa, "waivers", "warn")
    if reports == "juice-shop":
        assert "vulnerabilities.severity" in _rules(opa, "vulnerabilities", "deny")
        assert _rules(opa, "quality_gate", "deny") == ["quality_gate.status"]
        assert applied == ["W-ACTIVE", "W-EXPIRING"]
        assert warned == ["waivers.expired", "waivers.expiring"]
        assert "W-STALE" in opa["waivers"]["stale"]
    elif reports == "alpine":
        assert applied == (["W-HOURS"] if environment == "prod" else [])
        assert warned == (["waivers.expiring"] if environment == "prod" else [])
    else:
        assert "secrets.exposed" in _rules(opa, "secrets", "deny")
        assert applied == ["W-EDGE", "W-ONE-DAY"]
        assert warned == ["waivers.expiring", "waivers.expiring"]


# -------------------------------------------------------------------------------------------------
# 2b. data.gate.admission on realistic inputs
# -------------------------------------------------------------------------------------------------

ADMISSION_SAMPLES = DATA / "admission"
ADMISSION_SET_PATHS = "paths := [path | walk(data.gate.admission, [path, value]); is_set(value)]"


def _admission_decision(**fields: Any) -> dict[str, Any]:
    """A decision entry as gate.reconcile.admission builds it: allow, trusted, 10 days old, replayed clean."""
    return {
        "decision_id": "0190a0a0-0000-7000-8000-000000000001",
        "outcome": "allow",
        "timestamp": rfc3339.format(NOW - timedelta(days=10)),
        "age_seconds": 864000.5,
        "image": JUICE_SHOP_IMAGE,
        "signed": True,
        "signature_valid": True,
        "trusted_key": True,
        "signature_problem": None,
        "signing_key": "0123456789abcdef",
        "policy_digest": "sha256:" + "0" * 64,
        "policy_revision": "gate-policies-0.2.0",
        "waivers": [],
        "replay": {"outcome": "allow", "violations": [], "warnings": [], "error": None},
        **fields,
    }


def _admission_images() -> list[dict[str, Any]]:
    """One image per shipped admission rule (and one that passes)."""
    pinned = f"{JUICE_SHOP_IMAGE}:12.10.2@{DIGEST}"
    violation = {"rule": "vulnerabilities.severity", "message": "CVE-2021-44906 in minimist", "severity": "critical"}
    pending = {**violation, "rule": "provenance.required", "effective_on": rfc3339.format(NOW + timedelta(days=30))}
    cases = {
        "ok": [_admission_decision()],
        "missing": [],
        "deny": [_admission_decision(outcome="deny"), _admission_decision()],
        "untrusted": [_admission_decision(trusted_key=False, signature_valid=False, signature_problem=None)],
        "unsigned": [_admission_decision(signed=False, signature_valid=False, trusted_key=False)],
        "old": [_admission_decision(age_seconds=40 * 86400)],
        "waiver": [_admission_decision(waivers=[{"id": "W-1", "rule": "CVE-1", "expires": rfc3339.format(NOW - timedelta(hours=1)), "expired": False}])],
        "replay": [_admission_decision(replay={"outcome": "deny", "violations": [violation, pending], "warnings": []})],
        "error": [_admission_decision(replay={"outcome": "error", "violations": [], "warnings": [], "error": "boom"})],
        "not-replayed": [_admission_decision(replay=None)],
    }
    images = [
        {"container": f"spec.containers[{name}]", "image": pinned, "pinned": True, "digest": DIGEST, "decisions": decisions}
        for name, decisions in cases.items()
    ]
    images.append({"container": "spec.containers[tag]", "image": "nginx:1.25", "pinned": False, "digest": None, "decisions": []})
    return images


def _admission_request(name: str) -> dict[str, Any]:
    import yaml

    path = ADMISSION_SAMPLES / name
    document = yaml.safe_load(path.read_text())  # JSON is YAML
    return document.get("request", document) if "request" in document else document


ADMISSION_CASES = {
    **{f"{p.name}-no-images": (p.name, "prod", False, {}) for p in sorted(ADMISSION_SAMPLES.iterdir()) if p.suffix in (".json", ".yaml")},
    "every-rule-prod": ("admissionreview-v1-deployment-create-image.json", "prod", True, {}),
    "every-rule-staging": ("admissionreview-v1-deployment-create-image.json", "staging", True, {}),
    "data-override": ("admissionreview-v1-deployment-create-image.json", "prod", True, {"admission": {"max_decision_age": {"prod": "1h"}}}),
    "bad-data": ("admissionreview-v1-deployment-create-image.json", "prod", True, {"admission": {"max_decision_age": {"prod": "30d"}, "x": 1}}),
}


@pytest.mark.parametrize(("sample", "environment", "with_images", "extra"), ADMISSION_CASES.values(), ids=ADMISSION_CASES.keys())
def test_admission_document_is_identical(sample: str, environment: str, with_images: bool, extra: dict[str, Any]) -> None:
    data = merge_data(BUNDLE.data, extra)
    opa = _opa(BUNDLE, BUNDLE.policies(), data)
    embedded = EmbeddedEngine()
    embedded.load(BUNDLE, data)
    gate_part = {"environment": environment, "now": rfc3339.format(NOW), "commit": None, "images": _admission_images() if with_images else []}
    policy_input = {"request": _admission_request(sample), "gate": gate_part}

    from_opa = opa.eval_document("gate.admission", policy_input)
    from_regorus = embedded.evaluate("gate.admission", policy_input)
    sets = opa.eval_query(ADMISSION_SET_PATHS, policy_input)[0]["paths"]
    embedded.raw.set_input_json(json.dumps(policy_input))
    regorus_sets = json.loads(embedded.raw.eval_query_as_json(ADMISSION_SET_PATHS))["result"][0]["bindings"]["paths"]
    assert sorted(map(json.dumps, regorus_sets)) == sorted(map(json.dumps, sets))
    assert _canonical(from_opa, sets) == _canonical(from_regorus, sets)

    # Not vacuous: the images reach every rule.
    denied = sorted({r["rule"] for package in from_opa.values() for r in package.get("deny", [])})
    if with_images and not extra:
        expected = {
            "admission.decisions.missing",
            "admission.decisions.not_allowed",
            "admission.decisions.signature",
            "admission.decisions.waiver_expired",
            "admission.images.unpinned",
            "admission.replay.denied",
            "admission.replay.error",
        }
        if environment == "prod":  # 40 days is within staging's 2160h
            expected.add("admission.decisions.too_old")
        assert denied == sorted(expected)
        assert [w["rule"] for w in from_opa["replay"]["warn"]] == ["admission.replay.pending"]
    elif not extra:
        assert denied == []
    elif "x" in extra["admission"]:
        assert "admission.settings.invalid" in denied and "admission.decisions.too_old" not in denied
    else:
        assert "admission.decisions.too_old" in denied and "admission.settings.invalid" not in denied


# -------------------------------------------------------------------------------------------------
# 3. What OPA refuses, regorus refuses
# -------------------------------------------------------------------------------------------------

HEAD = "package gate.promotion.broken\n\nimport rego.v1\n\n"
REFUSED = {
    "rule body without if (rego.v1)": HEAD + 'deny contains "x" {\n\tinput.a == 1\n}\n',
    "v0 partial set rule (rego.v1)": HEAD + 'deny[msg] {\n\tmsg := "x"\n}\n',
    "partial set without contains": HEAD + 'deny "x" if input.a == 1\n',
    "keyword as a rule name": HEAD + "if := 1\n",
    "unclosed body": HEAD + 'deny contains "x" if {\n\tinput.a == 1\n',
    "no package": 'import rego.v1\n\ndeny contains "x" if true\n',
    "undefined function": HEAD + 'deny contains "x" if no_such_function(input.a)\n',
    "recursive rules": HEAD + 'a if b\n\nb if a\n\ndeny contains "x" if a\n',
    "unsafe variable in a head": HEAD + "deny contains msg if {\n\tinput.a == 1\n}\n",
}


@pytest.mark.parametrize("source", REFUSED.values(), ids=REFUSED.keys())
def test_a_policy_opa_refuses_gets_no_answer_from_regorus(source: str, tmp_path: Path) -> None:
    policy = {"gate/promotion/broken.rego": source}
    opa = OpaEngine()
    with pytest.raises(OpaError):  # parse errors at add_policy, compile errors at the first query
        opa.add_policy("gate/promotion/broken.rego", source)
        opa.eval_document("gate.promotion", {"a": 1})

    bundle = Bundle(tmp_path, policy, {}, "sha256:test")
    engine = EmbeddedEngine()
    with pytest.raises(PolicyError):  # regorus: at load, or (unsafe variable) at evaluation
        engine.load(bundle, {})
        engine.evaluate("gate.promotion", {"a": 1})


def test_a_valid_policy_is_accepted_by_both() -> None:
    source = HEAD.replace("broken", "ok") + 'deny contains "x" if input.a == 1\n'
    opa = OpaEngine()
    opa.add_policy("gate/promotion/ok.rego", source)
    assert opa.eval_document("gate.promotion.ok.deny", {"a": 1}) == ["x"]
    engine = EmbeddedEngine()
    engine.load(Bundle(Path("."), {"gate/promotion/ok.rego": source}, {}, "sha256:test"), {})
    assert engine.evaluate("gate.promotion.ok.deny", {"a": 1}) == ["x"]


def test_gate_itself_never_imports_opa_bindings() -> None:
    code = (
        "import sys, gate.cli, gate.evaluation, gate.serve\n"
        "import gate.policy.opa, gate.policy.embedded, gate.policy.testing\n"
        "assert 'opa_bindings' not in sys.modules, 'gate imported opa_bindings'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _juice_shop_vex(tmp_path: Path) -> list[dict[str, Any]]:
    """OpenVEX statements about juice-shop findings, read by gate.vex as --vex would: every way a statement
    matches (image digest + subcomponent, repository, package purl with and without version, an alias),
    a newer affected re-opening an older not_affected, a tie between statuses, a tie with a waiver."""
    from gate.vex.documents import load_documents, statements_input

    image_product = {"@id": f"pkg:oci/juice-shop@{DIGEST.replace(':', '%3A')}?repository_url={JUICE_SHOP_IMAGE}"}

    def statement(name: str, status: str, time: str, *products: dict[str, Any], **fields: Any) -> dict[str, Any]:
        extra = {"justification": "vulnerable_code_not_in_execute_path"} if status == "not_affected" else {}
        return {"vulnerability": {"name": name, **fields.pop("vulnerability", {})}, "products": list(products),
                "status": status, "timestamp": time, **extra, **fields}

    def document(statements: list[dict[str, Any]]) -> dict[str, Any]:
        return {"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.com/vex", "author": "secops",
                "timestamp": "2027-01-01T00:00:00Z", "version": 1, "statements": statements}

    first = document([
        statement("CVE-2021-3807", "not_affected", "2027-01-01T00:00:00Z",
                  {**image_product, "subcomponents": [{"@id": "pkg:npm/ansi-regex@4.1.0"}]}),
        statement("CVE-2021-23337", "fixed", "2027-01-01T00:00:00Z", {"@id": "pkg:npm/lodash"}),
        statement("CVE-2022-24785", "not_affected", "2027-01-01T00:00:00Z", {"@id": JUICE_SHOP_IMAGE}),
        statement("GHSA-xvch-5gv4-984h", "not_affected", "2027-01-01T00:00:00Z", {"@id": "pkg:npm/minimist@1.2.5"},
                  vulnerability={"aliases": ["CVE-2021-44906"]}),
        statement("CVE-2020-8203", "not_affected", "2027-01-01T00:00:00Z", {"@id": "pkg:npm/lodash@4.17.11"}),
    ])
    second = document([
        statement("CVE-2022-24785", "affected", "2027-01-05T00:00:00Z",
                  {**image_product, "subcomponents": [{"@id": "pkg:npm/moment@2.0.0"}]}),
        statement("CVE-2020-8203", "under_investigation", "2027-01-01T00:00:00Z", {"@id": "pkg:npm/lodash@4.17.11"}),
    ])
    paths = []
    for name, doc in (("first.json", first), ("second.json", second)):
        (tmp_path / name).write_text(json.dumps(doc))
        paths.append(str(tmp_path / name))
    return statements_input(load_documents(paths, artifact={"image": JUICE_SHOP_IMAGE, "digest": DIGEST}))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_promotion_document_with_vex_is_identical(
    environment: str, tmp_path: Path, documents: dict[str, dict[str, Any]], opa_engine: OpaEngine,
    embedded_engine: EmbeddedEngine,
) -> None:
    policy_input = {**documents["juice-shop"], "environment": environment, "now": rfc3339.format(NOW),
                    "vex": _juice_shop_vex(tmp_path)}
    from_opa = opa_engine.eval_document("gate.promotion", policy_input)
    from_regorus = embedded_engine.evaluate("gate.promotion", policy_input)
    sets = opa_engine.eval_query(SET_PATHS, policy_input)[0]["paths"]
    opa, regorus = _canonical(from_opa, sets), _canonical(from_regorus, sets)
    assert opa == regorus
    applied = {w["id"]: w for w in opa["waivers"]["applied"]}
    vex = sorted(w["rule"] for w in applied.values() if w.get("kind") == "vex")
    # CVE-2021-3807: the statement (digest + subcomponent: 2 fields) wins over W-EXPIRING (rule-wide) on
    # ansi-regex 4.1.0, W-EXPIRING keeps 3.0.0; CVE-2022-24785: the repository-wide not_affected triages
    # moment 2.29.1 (6 findings), the newer affected re-opens 2.0.0; CVE-2020-8203: not_affected ties with
    # under_investigation, not triaged; CVE-2021-44906 (by its alias): the statement (a versioned purl: 1)
    # ties with W-ACTIVE (image: 1) on minimist 1.2.5, and the waiver applies
    assert vex == ["CVE-2021-23337", "CVE-2021-3807", "CVE-2022-24785"]
    by_rule = {w["rule"]: w for w in applied.values() if w.get("kind") == "vex"}
    assert len(by_rule["CVE-2022-24785"]["finding_ids"]) == 6 and len(by_rule["CVE-2021-3807"]["finding_ids"]) == 4
    assert "W-ACTIVE" in applied and "W-EXPIRING" in applied
