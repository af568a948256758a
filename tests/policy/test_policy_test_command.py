"""``gate policy test`` with ``--policy`` layers and ``--data``, and what a failed Rego test shows:
where it stopped, what was expected and what came (as ``opa test --var-values`` shows it).

Small bundles written here are run through the CLI (``main()``, text and JSON), as a user runs them,
alone and layered over the shipped library; the explanation's robustness (a value that cannot be
computed, an explanation that breaks) is checked from Python, since no well-formed bundle makes the
engine fail that way on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Run

POLICY = """package demo
import rego.v1

deny contains "too big" if input.size > data.limits.max

deny contains sprintf("size %d is odd", [input.size]) if input.size % 2 == 1
"""

TESTS = """package demo_test
import rego.v1

import data.demo

test_small_is_denied if {
	print("checking size", 3)
	count(demo.deny) == 1 with input as {"size": 4}
}

test_objects_compare if {
	got := {"name": "cart", "tags": {"a", "b"}}
	got == {"name": "cart", "tags": {"a"}}
}

test_big_is_not_denied if {
	not demo.deny["too big"] with input as {"size": 12}
}

test_denial_text if {
	"size 9 is big" in demo.deny with input as {"size": 9}
}

test_some_denial if {
	0 < count(demo.deny) with input as {"size": 2}
}

test_division if {
	1 / 0 == 1
}

test_every_size_is_allowed if {
	every i, size in [2, 11, 30] {
		i >= 0
		count(demo.deny) == 0 with input as {"size": size}
	}
}
"""


def _bundle(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    return _bundle(
        tmp_path / "demo",
        {"demo.rego": POLICY, "demo_test.rego": TESTS, "limits/data.json": '{"max": 10}'},
    )


def _block(out: str, test: str) -> list[str]:
    """The FAIL line of ``test`` and the indented lines under it."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"FAIL data.demo_test.{test} "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def test_count_comparison_shows_expected_1_and_got_0(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    assert run.code == 1, run.out + run.err
    assert _block(run.out, "test_small_is_denied") == [
        "FAIL data.demo_test.test_small_is_denied (demo_test.rego:6): undefined",
        '  demo_test.rego:8: count(demo.deny) == 1 with input as {"size": 4}',
        "    expected: 1",
        "    got:      0",
        "    where:    demo.deny = set()",
        "  output:",
        "    demo_test.rego:7: checking size 3",
    ]
    assert run.err == ""  # probes the engine cannot order leave no complaint on stderr


def test_equality_of_objects_shows_both_sides(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    assert _block(run.out, "test_objects_compare")[1:] == [
        '  demo_test.rego:13: got == {"name": "cart", "tags": {"a"}}',
        '    expected: {"name": "cart", "tags": {"a"}}',
        '    got:      {"name": "cart", "tags": {"a", "b"}}',
    ]


def test_not_shows_the_value_that_should_have_been_undefined(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    assert _block(run.out, "test_big_is_not_denied")[1:] == [
        '  demo_test.rego:17: not demo.deny["too big"] with input as {"size": 12}',
        "    expected: undefined or false",
        '    got:      "too big"',
    ]


def test_membership_and_flipped_ordering(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    assert _block(run.out, "test_denial_text")[2:] == [
        '    expected: to contain "size 9 is big"',
        '    got:      {"size 9 is odd"}',
    ]
    # ``0 < count(x)`` reads as ``count(x) > 0``: the literal is the expected side
    assert _block(run.out, "test_some_denial")[2:4] == ["    expected: > 0", "    got:      0"]


def test_every_names_the_members_its_body_does_not_hold_for(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    assert _block(run.out, "test_every_size_is_allowed")[1:] == [
        "  demo_test.rego:33: every i, size in [2, 11, 30] { i >= 0; "
        'count(demo.deny) == 0 with input as {"size": size} }',
        "    expected: every member to satisfy the body",
        "    got:      11, 30 (members for which the body does not hold)",
    ]


def test_an_erroring_test_keeps_its_error_and_is_not_explained(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo)
    block = _block(run.out, "test_division")
    assert len(block) == 1
    assert re.fullmatch(r"FAIL data\.demo_test\.test_division \(demo_test\.rego:28\): demo_test\.rego:29:\d+: divide by zero", block[0])


def test_json_carries_expression_expected_got_and_output(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo, "--format", "json")
    assert run.code == 1
    tests = {t["name"]: t for t in run.json()["tests"]}
    small = tests["test_small_is_denied"]
    assert small["expression"] == 'count(demo.deny) == 1 with input as {"size": 4}'
    assert (small["expression_line"], small["expected"], small["got"]) == (8, "1", "0")
    assert small["where"] == {"demo.deny": "set()"}
    assert small["output"] == ["demo_test.rego:7: checking size 3"]
    assert small["note"] is None
    assert tests["test_objects_compare"]["got"] == '{"name": "cart", "tags": {"a", "b"}}'
    division = tests["test_division"]
    assert "divide by zero" in division["error"] and division["expression"] is None and division["got"] is None


def test_data_file_changes_the_threshold_the_tests_see(gate: Callable[..., Run], tmp_path: Path) -> None:
    tests = """package demo_test
import rego.v1

import data.demo

test_eleven_is_too_big if {
	demo.deny == {"too big", "size 11 is odd"} with input as {"size": 11}
}

test_sixteen_is_fine if {
	count(demo.deny) == 0 with input as {"size": 16}
}
"""
    root = _bundle(tmp_path / "demo", {"demo.rego": POLICY, "demo_test.rego": tests, "limits/data.json": '{"max": 10}'})
    run = gate("policy", "test", root)
    assert run.code == 1
    assert "FAIL data.demo_test.test_sixteen_is_fine" in run.out and "test_eleven_is_too_big" not in run.out
    assert ["    expected: 0", "    got:      1", '    where:    demo.deny = {"too big"}'] == _block(
        run.out, "test_sixteen_is_fine"
    )[2:]

    org = tmp_path / "org-limits.yaml"
    org.write_text("limits:\n  max: 20\n")
    run = gate("policy", "test", "--policy", root, "--data", org)
    assert run.code == 1
    assert "test_sixteen_is_fine" not in run.out
    assert _block(run.out, "test_eleven_is_too_big")[2:] == [
        '    expected: {"size 11 is odd", "too big"}',  # sets in the engine's order
        '    got:      {"size 11 is odd"}',
    ]


def test_data_file_against_the_shipped_library(gate: Callable[..., Run], tmp_path: Path) -> None:
    """An organization's thresholds, tested against the library's own tests: the one that pins the
    shipped value fails and says which value came instead."""
    org = tmp_path / "org.yaml"
    org.write_text("thresholds:\n  prod:\n    min_line_coverage: 0.95\n")
    run = gate("policy", "test", "--data", org, "--format", "json")
    assert run.code == 1, run.err
    failed = {t["name"]: t for t in run.json()["tests"] if not t["passed"]}
    pinned = failed["test_prod_uses_its_shipped_entry"]
    assert (pinned["expression"], pinned["expected"], pinned["got"]) == ("s.min_line_coverage == 0.8", "0.8", "0.95")


ORG_POLICY = """package acme.registry
import rego.v1

import data.gate.lib.config

deny contains msg if {
	not startswith(input.artifact.image, data.acme.settings.registry)
	msg := sprintf("%s is not in %s", [input.artifact.image, data.acme.settings.registry])
}

coverage_floor := config.settings.min_line_coverage
"""

ORG_TESTS = """package acme.registry_test
import rego.v1

import data.acme.registry
import data.gate.lib.fixtures_test as fx

test_outside_image_is_denied if {
	count(registry.deny) == 1 with input as fx.clean
}

test_uses_the_library_settings if {
	registry.coverage_floor == 0.8 with input as fx.clean
}

test_acme_image_passes if {
	count(registry.deny) == 0 with input as object.union(fx.clean, {"artifact": {"image": "registry.acme.test/cart"}})
}

test_wrong_on_purpose if {
	registry.coverage_floor == 0.5 with input as fx.clean
}
"""


def test_layers_run_both_bundles_tests(gate: Callable[..., Run], tmp_path: Path) -> None:
    from gate.policy.bundle import load_bundle
    from gate.policy.sources import shipped_library
    from gate.policy.testing import discover

    org = _bundle(
        tmp_path / "acme",
        {
            "acme/registry.rego": ORG_POLICY,
            "acme/registry_test.rego": ORG_TESTS,
            "acme/settings/data.json": '{"registry": "registry.acme.test/"}',
        },
    )
    run = gate("policy", "test", "--policy", "gate:library", "--policy", org, "--format", "json")
    assert run.code == 1, run.err
    report = run.json()
    shipped = len(discover(load_bundle(shipped_library()).sources))
    assert (report["passed"], report["failed"]) == (shipped + 3, 1)
    packages = {t["package"] for t in report["tests"]}
    assert "acme.registry_test" in packages and "gate.lib.config_test" in packages
    [wrong] = [t for t in report["tests"] if not t["passed"]]
    assert (wrong["name"], wrong["expected"], wrong["got"]) == ("test_wrong_on_purpose", "0.5", "0.8")
    assert wrong["file"].endswith("acme/registry_test.rego")


def test_no_arguments_tests_the_shipped_library_not_the_current_directory(
    gate: Callable[..., Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gate.policy.bundle import load_bundle
    from gate.policy.sources import shipped_library
    from gate.policy.testing import discover

    _bundle(tmp_path / "policies", {"x.rego": "package x\nimport rego.v1\n\ntest_fails := false\n"})
    monkeypatch.chdir(tmp_path)  # a ./policies here must not be picked up
    run = gate("policy", "test")
    assert run.code == 0, run.out + run.err
    shipped = len(discover(load_bundle(shipped_library()).sources))
    assert run.out.strip().splitlines()[-1] == f"{shipped} passed, 0 failed"


def test_no_tests_in_any_layer_exits_2(gate: Callable[..., Run], tmp_path: Path) -> None:
    org = _bundle(tmp_path / "org", {"org/rules.rego": "package org.rules\nimport rego.v1\n\nx := 1\n"})
    run = gate("policy", "test", "--policy", org)
    assert run.code == 2
    assert run.out == ""
    assert "no tests found" in run.err and len(run.err.strip().splitlines()) == 1


def test_a_layer_that_does_not_compile_is_named_where_it_is(gate: Callable[..., Run], tmp_path: Path) -> None:
    org = _bundle(tmp_path / "org", {"org/x.rego": "package org.x\nimport rego.v1\n\nx if {\n\ty :=\n}\n"})
    run = gate("policy", "test", "--policy", "gate:library", "--policy", org)
    assert run.code == 2 and run.out == ""
    assert run.err.startswith(f"gate: error: policy does not compile: {org}/org/x.rego:5:"), run.err
    assert len(run.err.strip().splitlines()) == 1


def test_a_package_in_two_layers_is_refused(gate: Callable[..., Run], tmp_path: Path, demo: Path) -> None:
    again = _bundle(tmp_path / "again", {"demo.rego": POLICY})
    run = gate("policy", "test", "--policy", demo, "--policy", again)
    assert run.code == 2 and run.out == ""
    assert "both define package demo" in run.err


def test_dir_and_policy_together_is_a_usage_error(gate: Callable[..., Run], demo: Path) -> None:
    run = gate("policy", "test", demo, "--policy", demo)
    assert run.code == 2
    assert "not both" in run.err


# -------------------------------------------------------------------------------------------------
# never crash: what cannot be computed is said, the failure stands
# -------------------------------------------------------------------------------------------------


def test_a_value_that_cannot_be_computed_is_said_and_the_expression_still_shown() -> None:
    from gate.output.policy_tests import render
    from gate.policy.explain import Failure
    from gate.policy.testing import TestReport, TestResult

    failure = Failure("x == f(y)", "t_test.rego", 7, expected=None, got="3", note="a value could not be computed: boom")
    result = TestResult("t_test", "test_x", False, "undefined", "t_test.rego", 5, failure=failure)
    out = render(TestReport((result,)))
    assert out.splitlines()[:4] == [
        "FAIL data.t_test.test_x (t_test.rego:5): undefined",
        "  t_test.rego:7: x == f(y)",
        "    got:      3",
        "    (a value could not be computed: boom)",
    ]


def test_a_probe_that_does_not_compile_loses_only_its_value(demo: Path) -> None:
    from gate.policy import explain, testing
    from gate.policy.bundle import load_bundle

    bundle = load_bundle(demo)
    engine = testing._engine(bundle, coverage=False)
    ast = testing._ast(engine)
    module = next(m for m in ast if m["source"]["file"] == "demo_test.rego")
    source = explain._Source(module["source"]["contents"].encode())
    statements = explain._statements(module["ast"], "test_small_is_denied", source)
    prober = explain._Prober(engine, explain._header(module["ast"], source), "demo_test", "demo_test.rego", [], statements[-1])
    assert prober.value("unbound_variable_here") is None
    assert prober.problems
    assert prober.value("count(demo.deny)") == ["0"]  # the engine itself was not changed


def test_an_explanation_that_breaks_leaves_the_failure_unexplained(demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gate.policy import testing
    from gate.policy.bundle import load_bundle

    def broken(*_: object) -> None:
        raise KeyError("an AST shape nobody foresaw")

    monkeypatch.setattr(testing, "explain", broken)
    results = {r.name: r for r in testing.run_tests(load_bundle(demo)).results}
    small = results["test_small_is_denied"]
    assert (small.passed, small.error, small.failure) == (False, "undefined", None)
    assert small.output == ("demo_test.rego:7: checking size 3",)


def test_long_values_are_shortened_in_text_only(gate: Callable[..., Run], tmp_path: Path) -> None:
    tests = """package long_test
import rego.v1

test_long if {
	xs := [x | some x in numbers.range(1, 200)]
	count(xs) == 3
}
"""
    root = _bundle(tmp_path / "long", {"long_test.rego": tests})
    run = gate("policy", "test", root)
    where = next(line for line in run.out.splitlines() if line.startswith("    where:"))
    assert where.startswith("    where:    xs = [1, 2, 3,") and re.search(r"… \(\d+ more characters\)$", where)
    assert "    got:      200" in run.out
    full = gate("policy", "test", root, "--format", "json").json()["tests"][0]["where"]["xs"]
    assert full == "[" + ", ".join(str(n) for n in range(1, 201)) + "]"


def test_statements_keep_their_quotes_and_brackets(gate: Callable[..., Run], tmp_path: Path) -> None:
    """regorus' spans leave a string's quotes out and may start an object at its last key: the
    expression shown, and each side evaluated, are still the whole source text."""
    tests = """package edges_test
import rego.v1

test_raw if {
	`say "hi"` == "hi"
}

test_object_first if {
	{"a": 1,
	 "b": ""} == {"a": 1}
}
"""
    root = _bundle(tmp_path / "edges", {"edges_test.rego": tests})
    tests_out = {t["name"]: t for t in gate("policy", "test", root, "--format", "json").json()["tests"]}
    raw = tests_out["test_raw"]
    assert (raw["expression"], raw["expected"], raw["got"], raw["note"]) == (
        '`say "hi"` == "hi"', '"hi"', '"say \\"hi\\""', None
    )
    first = tests_out["test_object_first"]
    assert first["expression"] == '{"a": 1,\n\t "b": ""} == {"a": 1}'
    assert (first["expression_line"], first["expected"], first["got"]) == (9, '{"a": 1}', '{"a": 1, "b": ""}')
