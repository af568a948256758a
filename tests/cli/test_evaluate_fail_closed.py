"""`gate evaluate` fails closed: every way of not reaching a decision exits 2 and never allows.

These use small bundles written per test, so each failure is caused on purpose; the shipped
policy library is exercised in test_evaluate.py.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_scan import one_error_line
from tests.conftest import DIGEST, Run

IMAGE = f"registry.example.com/shop/cart@{DIGEST}"

DENY_CRITICAL = """package gate.promotion.vulns

import rego.v1

# METADATA
# title: Critical vulnerabilities
# custom:
#   rule_id: vulns.critical
#   severity: critical
#   solution: Upgrade the package.
deny contains result if {
	some f in input.findings
	f.severity == "critical"
	result := {"msg": sprintf("%v in %v", [f.rule, f["package"].name]), "rule": "vulns.critical", "finding_ids": [f.id]}
}
"""


def bundle(tmp_path: Path, *files: tuple[str, str]) -> Path:
    """A bundle of ``files`` that declares the environment the tests use (prod), as every bundle must."""
    root = tmp_path / "bundle"
    files = (("gate/config/data.json", '{"environments": {"prod": {}}}'), *files)
    for name, text in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def evaluate(gate: Callable[..., Run], data: Path, policy: Path, *extra: str) -> Run:
    report = data / "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json"
    return gate("evaluate", "--report", f"trivy={report}", "--policy", policy, "--image", IMAGE, "--env", "prod", *extra)


def recorded(store: Path) -> list[dict]:
    with sqlite3.connect(store) as db:
        return [json.loads(r[0]) for r in db.execute("select record from decisions order by seq")]


def test_a_working_bundle_denies_and_records(gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path) -> None:
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL)), "--format", "json")
    assert run.code == 1
    decision = run.json()
    assert decision["outcome"] == "deny"
    assert len(decision["violations"]) == 28
    v = decision["violations"][0]
    assert (v["rule"], v["severity"], v["title"], v["solution"]) == ("vulns.critical", "critical", "Critical vulnerabilities", "Upgrade the package.")
    [stored] = recorded(decision_store)
    assert stored["decision_id"] == decision["decision_id"] and stored["hash"] == decision["hash"]


def test_policy_that_does_not_compile(gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path) -> None:
    policy = bundle(tmp_path, ("vulns.rego", "package gate.promotion.vulns\nimport rego.v1\ndeny contains x if {\n"))
    line = one_error_line(evaluate(gate, data, policy))
    assert "does not compile" in line and "vulns.rego:" in line and "Stack backtrace" not in line
    [stored] = recorded(decision_store)
    assert stored["outcome"] == "error" and "does not compile" in stored["error"]


def test_no_rules_evaluated(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    policy = bundle(tmp_path, ("other.rego", "package gate.other\nimport rego.v1\ndeny contains 1 if { false }\n"))
    assert "no deny or warn rule" in one_error_line(evaluate(gate, data, policy))


def test_runtime_error_in_policy(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    conflict = "package gate.promotion.x\nimport rego.v1\nlimit := 1\nlimit := 2 if { true }\ndeny contains \"x\" if { limit > 0 }\n"
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("x.rego", conflict))))
    assert "policy" in line


def test_result_of_the_wrong_shape(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    policy = bundle(tmp_path, ("x.rego", "package gate.promotion.x\nimport rego.v1\ndeny contains {\"message\": \"no msg key\"} if { true }\n"))
    assert "msg string" in one_error_line(evaluate(gate, data, policy))


def test_evaluation_timeout(gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    slow = "package gate.promotion.slow\nimport rego.v1\ndeny contains \"slow\" if {\n\tcount([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j]) < 0\n}\n"
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", "0.3")
    assert "timed out after 0.3 s" in one_error_line(evaluate(gate, data, bundle(tmp_path, ("slow.rego", slow))))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("waivers: {id: W-1}\n", "data.waivers must be a list"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me}\n", "expires is required"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me, expires: soon}\n", "not an RFC 3339 time"),
        ("waivers:\n- {id: W-1, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, image: 3}\n", "image must be a string"),
        ("waivers:\n- {id: W-7, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, pakage: x}\n",
         "waiver W-7: unknown field pakage"),
        ("waivers:\n- {id: W-7, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, purl: npm/lodash}\n",
         "waiver W-7: purl 'npm/lodash' is not a package URL"),
        ("waivers:\n- {id: W-7, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, purl: 'pkg:npm/x?arch'}\n",
         "waiver W-7: purl 'pkg:npm/x?arch' has a malformed qualifier"),
        ("waivers:\n- {id: W-7, rule: CVE-1, reason: r, approved_by: me, expires: 2030-01-01T00:00:00Z, path: ''}\n",
         "waiver W-7: path is empty"),
        ("waivers: [\n", "invalid YAML"),
        ("- just\n- a list\n", "top level must be a mapping"),
    ],
)
def test_wrong_data(gate: Callable[..., Run], data: Path, tmp_path: Path, content: str, problem: str) -> None:
    data_file = tmp_path / "waivers.yaml"
    data_file.write_text(content)
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL)), "--data", data_file))
    assert problem in line


def test_unreadable_report_records_nothing(gate: Callable[..., Run], tmp_path: Path, decision_store: Path) -> None:
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    run = gate("evaluate", "--report", f"trivy={tmp_path / 'missing.json'}", "--policy", policy, "--image", IMAGE, "--env", "prod")
    assert "no such file" in one_error_line(run)
    assert not decision_store.exists() or recorded(decision_store) == []


def test_store_that_cannot_be_written(gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("GATE_DECISION_STORE", str(blocker / "decisions.db"))
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))))
    assert "decision log" in line


def test_missing_policy_dir_and_bad_usage(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    assert "not a directory" in one_error_line(evaluate(gate, data, tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no .rego files" in one_error_line(evaluate(gate, data, empty))
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    assert "--opa-url" in one_error_line(evaluate(gate, data, policy, "--engine", "opa"))
    run = gate("evaluate", "--policy", policy, "--image", IMAGE, "--env", "Prod!")
    assert 'environment "Prod!" is not declared in the policy data; declared: prod' in one_error_line(run)


def test_effective_on_turns_a_deny_into_a_dated_warning(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    future = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01T00:00:00Z")
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", future)), "--format", "json")
    assert run.code == 0
    decision = run.json()
    assert decision["outcome"] == "allow" and decision["violations"] == []
    assert len(decision["warnings"]) == 28
    assert all("(blocks from 2999-01-01T00:00:00Z)" in w["message"] for w in decision["warnings"])
    past = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2020-01-01T00:00:00Z")
    (tmp_path / "bundle" / "vulns.rego").write_text(past)
    assert evaluate(gate, data, tmp_path / "bundle").code == 1


def test_effective_on_may_be_a_date_but_not_a_zoneless_time(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    """``effective_on: 2999-01-01`` is midnight UTC that day (people write dates); a time without a zone is refused."""
    dated = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01")
    run = evaluate(gate, data, bundle(tmp_path, ("vulns.rego", dated)), "--format", "json")
    assert run.code == 0 and run.json()["outcome"] == "allow"
    zoneless = DENY_CRITICAL.replace("#   severity: critical", "#   severity: critical\n#   effective_on: 2999-01-01T00:00:00")
    (tmp_path / "bundle" / "vulns.rego").write_text(zoneless)
    assert "has no time zone" in one_error_line(evaluate(gate, data, tmp_path / "bundle"))


# --- issue 10, item 5: inputs that used to pass for something they are not -------------------------


def test_a_cyclonedx_sbom_is_not_a_vulnerability_scan(gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path) -> None:
    """An SBOM (no `vulnerabilities` key) read as a clean scan was a prod allow; now it is exit 2, nothing recorded."""
    bom = json.loads((data / "trivy/trivy-fs-npm.cyclonedx.json").read_text())
    del bom["vulnerabilities"]
    sbom = tmp_path / "sbom.cdx.json"
    sbom.write_text(json.dumps(bom))
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    run = gate("evaluate", "--report", f"auto={sbom}", "--policy", policy, "--image", IMAGE, "--env", "prod")
    line = one_error_line(run)
    assert line == (
        f"gate: error: {sbom}: CycloneDX document has no vulnerabilities: it is an SBOM, not a vulnerability scan "
        "(run trivy with --scanners vuln --format cyclonedx)"
    )
    assert not decision_store.exists() or recorded(decision_store) == []
    bom["vulnerabilities"] = []  # what trivy --scanners vuln writes when it found nothing: a clean scan
    sbom.write_text(json.dumps(bom))
    run = gate("evaluate", "--report", f"auto={sbom}", "--policy", policy, "--image", IMAGE, "--env", "prod")
    assert run.code == 0, run.err


@pytest.mark.parametrize(
    "store",
    [
        "postgress://gate:s3cr3t-pw@db.example.com/gate",
        "postgresq://gate:s3cr3t-pw@db.example.com/gate",
        "mysql://gate:s3cr3t-pw@db.example.com/gate",
        "sqlite:/var/lib/gate/s3cr3t-pw.db",
        "sqllite:///var/lib/gate/s3cr3t-pw.db",
    ],
)
def test_a_misspelled_decision_store_scheme_is_refused_without_the_password(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    """`postgress://u:pw@host/db` used to become a local SQLite path (the decision missing from the central
    log, the password in directory names). Any other scheme is exit 2 naming the supported ones."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GATE_DECISION_STORE", store)
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))))
    assert "GATE_DECISION_STORE" in line and "postgresql://" in line and "sqlite:///PATH" in line
    assert "s3cr3t-pw" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no SQLite file or folder made from it


# --- issue 10, item 8: settings and output that used to give internal errors ------------------------


@pytest.mark.parametrize("timeout", ["nan", "inf", "-inf", "-1", "0", "abc", "1e300", ""])
def test_a_policy_timeout_that_is_not_a_usable_number_of_seconds(
    gate: Callable[..., Run], data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, timeout: str
) -> None:
    monkeypatch.setenv("GATE_POLICY_TIMEOUT", timeout)
    line = one_error_line(evaluate(gate, data, bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))))
    assert "GATE_POLICY_TIMEOUT" in line and "internal error" not in line


# --- issue 10, item 7: hostile inputs are refused at once, with a clear line ------------------------
# These run the console script in a child with a time and memory bound: if a fix regresses, the test
# fails within seconds (timeout or MemoryError) instead of hanging the suite or exhausting the machine.

MEMORY_BOUND = 2 << 30


def bounded_gate(*argv: object, timeout: float = 30) -> Run:
    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BOUND, MEMORY_BOUND))

    gate_bin = Path(sys.executable).with_name("gate")
    done = subprocess.run(
        [str(gate_bin), *map(str, argv)], capture_output=True, text=True, timeout=timeout, preexec_fn=limit_memory
    )
    return Run(done.returncode, done.stdout, done.stderr)


def test_auto_detection_refuses_json_nested_without_bound(tmp_path: Path) -> None:
    """A 131 KB file of nested arrays took the SonarQube detector 65 s and 20 GB through `--report auto=`."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"issues": ' + "[" * 65536 + "]" * 65536 + "}")
    line = one_error_line(bounded_gate("scan", "--report", f"auto={deep}"))
    assert line == f"gate: error: {deep}: JSON nests deeper than 512 levels; refused"


def test_auto_detection_of_a_head_cut_off_in_escaped_quotes(tmp_path: Path) -> None:
    r"""A head cut inside ``"\"\"\"...`` made the detector rescan to the end at every quote (quadratic)."""
    quotes = tmp_path / "quotes.json"
    quotes.write_text('{"a": "' + '\\"' * 40000 + '"}')
    assert "format not recognized" in one_error_line(bounded_gate("scan", "--report", f"auto={quotes}", timeout=20))


def test_a_report_that_never_ends_is_refused(tmp_path: Path) -> None:
    assert one_error_line(bounded_gate("scan", "--report", "trivy=/dev/zero")) == "gate: error: /dev/zero: not a regular file"


def test_json_nested_too_deeply_for_the_decoder_is_a_report_error(tmp_path: Path) -> None:
    """Past detection (a named scanner), msgspec's recursion limit used to surface as an internal error."""
    deep = tmp_path / "deep.json"
    deep.write_text('{"SchemaVersion": 2, "Unread": ' + "[" * 100000 + "]" * 100000 + ', "Results": []}')
    line = one_error_line(bounded_gate("scan", "--report", f"trivy={deep}"))
    assert line == f"gate: error: {deep}: JSON nests too deeply to decode; refused"


def billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        # 48 s and 3 GB, then "invalid YAML: " with an empty reason
        ("bomb.yaml", billion_laughs(), "YAML expands to more than 1000000 values (aliases); refused"),
        ("deep.json", '{"k": ' + "[" * 100000 + "]" * 100000 + "}", "data is nested deeper than 100 levels; refused"),
        ("deep.yaml", "k:\n" + "".join(" " * i + "-\n" for i in range(1, 300)), "data is nested deeper than 100 levels; refused"),
        # flow style: libyaml's own depth limit speaks first
        ("flow.yaml", "k: " + "[" * 100000 + "]" * 100000 + "\n", "invalid YAML: while increasing flow level exceeded maximum nesting depth"),
        ("zero", None, "larger than 64 MiB; refused"),  # --data /dev/zero read without end
    ],
)
def test_hostile_data_files_are_refused_at_once(
    data: Path, tmp_path: Path, decision_store: Path, name: str, content: str | None, problem: str
) -> None:
    if content is None:
        data_file = Path("/dev/zero")
    else:
        data_file = tmp_path / name
        data_file.write_text(content)
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    report = data / "trivy/trivy-image-juice-shop-v12.10.2-many-vulns.json"
    run = bounded_gate(
        "evaluate", "--report", f"trivy={report}", "--policy", policy, "--image", IMAGE, "--env", "prod", "--data", data_file
    )
    line = one_error_line(run)
    assert f"{data_file}: {problem}" in line
    [stored] = recorded(decision_store)
    assert stored["outcome"] == "error" and problem in stored["error"]


# --- issue 10, item 5: a builtin the embedded engine lacks is a load error, never a silent undefined ----

HTTP_SEND = """package gate.promotion.remote

import rego.v1

deny contains "the release service vetoed this image" if {
	answer := http.send({"method": "get", "url": sprintf("https://releases.example.com/veto/%v", [input.artifact.digest])})
	answer.status_code == 200
}
"""

MISSING_BUILTIN = """package gate.promotion.certs

import rego.v1

deny contains "an expired certificate is bundled" if {
	some f in input.findings
	f.kind == "certificate"
	some cert in crypto.x509.parse_certificates(f.raw.pem)
	time.now_ns() > cert.NotAfter
}
"""

USER_FUNCTIONS = """package gate.promotion.vulns

import rego.v1

import data.lib.names
import data.lib.names as n

critical(f) if f.severity == "critical"

deny contains result if {
	some f in input.findings
	critical(f)
	names.shout(f.rule) == data.lib.names.shout(f.rule)
	n.shout(f.rule) != ""
	print(f.rule)
	result := {"msg": sprintf("%v in %v", [f.rule, f["package"].name]), "rule": "vulns.critical", "finding_ids": [f.id]}
}
"""

LIB = """package lib.names

import rego.v1

shout(s) := upper(s)
"""


def test_a_policy_calling_http_send_is_refused_by_the_embedded_engine(
    gate: Callable[..., Run], data: Path, tmp_path: Path, decision_store: Path
) -> None:
    """regorus has http.send as a stub that is always undefined: the veto above never fired, and the image
    was allowed. Loading the bundle now fails, naming the file, line and builtin (exit 2, recorded as error)."""
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL), ("remote.rego", HTTP_SEND))
    line = one_error_line(evaluate(gate, data, policy))
    assert f"{policy / 'remote.rego'}:6: calls http.send, which the embedded engine does not support" in line
    assert "--engine opa" in line
    [stored] = recorded(decision_store)
    assert stored["outcome"] == "error" and "http.send" in stored["error"]


def test_a_builtin_the_embedded_engine_lacks_is_refused_even_where_no_input_reaches_it(
    gate: Callable[..., Run], data: Path, tmp_path: Path
) -> None:
    """No finding has kind certificate, so regorus never evaluated the call and never said it lacks it."""
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL), ("certs.rego", MISSING_BUILTIN))
    line = one_error_line(evaluate(gate, data, policy))
    assert f"{policy / 'certs.rego'}:8: calls crypto.x509.parse_certificates, which the embedded engine does not have" in line


def test_functions_of_the_bundle_are_not_mistaken_for_missing_builtins(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    policy = bundle(tmp_path, ("vulns.rego", USER_FUNCTIONS), ("lib/names.rego", LIB))
    run = evaluate(gate, data, policy, "--format", "json")
    assert run.code == 1, run.err
    assert len(run.json()["violations"]) == 28


# --- issue 10, item 8: where the result goes is checked before anything is recorded -----------------
# Order (fail closed): the destination (-o FILE, or stdout) is opened first; only then is the decision
# recorded; if the result still cannot be written after that, an allow is superseded by a newer `error`
# decision for the same image and environment, so the newest decision is never an allow nobody saw.


def evaluate_child(data: Path, policy: Path, *extra: str, **popen: Any) -> subprocess.CompletedProcess[str]:
    report = data / "trivy/trivy-image-alpine-310.json"
    argv = ["evaluate", "--report", f"trivy={report}", "--policy", str(policy), "--image", IMAGE, "--env", "prod", *extra]
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([str(Path(sys.executable).with_name("gate")), *argv], stderr=subprocess.PIPE, text=True, timeout=60, **popen)


def allowing_bundle(tmp_path: Path) -> Path:
    """Denies critical vulnerabilities: the alpine report has none, so the decision is an allow."""
    return bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))


def only_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gate: error: ") and "Traceback" not in stderr, stderr
    return lines[0]


def test_closed_stdout_is_an_error_before_anything_is_recorded(data: Path, tmp_path: Path, decision_store: Path) -> None:
    """`gate evaluate ... >&-` used to record the allow, then fail with an internal error."""
    done = evaluate_child(data, allowing_bundle(tmp_path), preexec_fn=lambda: os.close(1), stdout=None)
    assert done.returncode == 2
    assert "standard output is closed" in only_line(done.stderr)
    assert not decision_store.exists() or recorded(decision_store) == []


def test_stdout_nobody_reads_is_an_error_before_anything_is_recorded(data: Path, tmp_path: Path, decision_store: Path) -> None:
    """`gate evaluate ... | head -c0`: the reader is gone before gate writes (here: before it starts)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = evaluate_child(data, allowing_bundle(tmp_path), stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 2
    assert "standard output" in only_line(done.stderr)
    assert not decision_store.exists() or recorded(decision_store) == []


def test_an_output_file_that_cannot_be_created_is_an_error_before_anything_is_recorded(
    data: Path, tmp_path: Path, decision_store: Path
) -> None:
    """`-o` in a missing folder used to fail after the allow was recorded."""
    target = tmp_path / "missing" / "decision.json"
    done = evaluate_child(data, allowing_bundle(tmp_path), "--format", "json", "-o", str(target))
    assert done.returncode == 2
    assert f"cannot write --output {target}" in only_line(done.stderr)
    assert not decision_store.exists() or recorded(decision_store) == []


@pytest.mark.parametrize("where", ["output", "stdout"])
def test_a_result_that_cannot_be_written_after_recording_supersedes_the_allow(
    data: Path, tmp_path: Path, decision_store: Path, where: str
) -> None:
    """/dev/full opens, then refuses the write (disk full): the allow is recorded by then, so a newer
    error decision for the same image and environment supersedes it; exit 2 names both."""
    policy = allowing_bundle(tmp_path)
    if where == "output":
        done = evaluate_child(data, policy, "--format", "json", "-o", "/dev/full")
    else:
        with open("/dev/full", "wb") as full:
            done = evaluate_child(data, policy, "--format", "json", stdout=full)
    assert done.returncode == 2
    line = only_line(done.stderr)
    allow, error = recorded(decision_store)
    assert allow["outcome"] == "allow" and error["outcome"] == "error"
    assert (error["artifact"], error["environment"]) == (allow["artifact"], allow["environment"])
    assert allow["decision_id"] in error["error"] and "No space left on device" in error["error"]
    assert f"decision {allow['decision_id']} (allow) is superseded by error decision {error['decision_id']}" in line


def test_output_file_is_written_whole_after_the_decision(gate: Callable[..., Run], data: Path, tmp_path: Path) -> None:
    target = tmp_path / "decision.json"
    run = gate("evaluate", "--report", f"trivy={data / 'trivy/trivy-image-alpine-310.json'}", "--policy", allowing_bundle(tmp_path),
               "--image", IMAGE, "--env", "prod", "--format", "json", "-o", target)
    assert run.code == 0, run.err
    assert json.loads(target.read_text())["outcome"] == "allow"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".decision.json")] == []  # no temporary left


def test_a_bundle_remembered_as_checked_is_checked_again_once_edited(
    gate: Callable[..., Run], data: Path, tmp_path: Path, user_cache: Path
) -> None:
    """Issue 11: the builtins check's pass is kept in the cache folder between runs (rule metadata never
    is); a kept pass never lets an edited bundle through, and the kept run gives the same decision."""
    policy = bundle(tmp_path, ("vulns.rego", DENY_CRITICAL))
    first = evaluate(gate, data, policy, "--format", "json")
    kept = [p for p in (user_cache / "gate" / "policy").rglob("*") if p.is_file()]
    assert first.code == 1 and len(kept) == 1 and kept[0].parent.name.startswith("builtins-")
    again = evaluate(gate, data, policy, "--format", "json")
    assert again.code == 1 and again.json()["violations"] == first.json()["violations"]
    (policy / "remote.rego").write_text(HTTP_SEND)
    line = one_error_line(evaluate(gate, data, policy))
    assert f"{policy / 'remote.rego'}:6: calls http.send, which the embedded engine does not support" in line
