"""The embedded engine judges many inputs in forked children (both cores), the time limit holding per
input: a runaway input fails alone (timed out), the inputs after it are still judged in a new child,
an input the policy fails on fails alone, and a child that dies fails only the input it was on."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gate.errors import PolicyError
from gate.policy.bundle import load_bundle
from gate.policy.embedded import EmbeddedEngine, run_each_with_deadline

#: Builds a 9-million-element array: many seconds in regorus, far over the 1 s limit the tests set.
POLICY = """
package batch

import rego.v1

echo := input.n

slow if {
	input.slow
	count([x | some i in numbers.range(1, 3000); some j in numbers.range(1, 3000); x := i * j]) < 0
}

number := to_number(input.text) if input.text
"""
TIMEOUT = 1.0
TIMED_OUT = "policy evaluation timed out after 1 s (GATE_POLICY_TIMEOUT)"


@pytest.fixture
def engine(tmp_path: Path) -> EmbeddedEngine:
    (tmp_path / "batch.rego").write_text(POLICY)
    judge = EmbeddedEngine(timeout=TIMEOUT)
    judge.load(load_bundle(tmp_path), {})
    return judge


def test_a_runaway_input_fails_alone_and_the_inputs_after_it_are_judged(engine: EmbeddedEngine) -> None:
    # 3 and 5: two runaways for the same child (every other input), one after the other
    inputs: list[dict[str, Any]] = [{"n": n, "slow": n in (3, 5)} for n in range(8)]
    answers = engine.evaluate_each("batch", inputs)
    assert len(answers) == 8
    for n, answer in enumerate(answers):
        if n in (3, 5):
            assert isinstance(answer, PolicyError) and str(answer) == TIMED_OUT
        else:
            assert answer == {"echo": n}


def test_an_input_the_policy_fails_on_fails_alone(engine: EmbeddedEngine) -> None:
    answers = engine.evaluate_each("batch", [{"n": 0, "text": "7"}, {"n": 1, "text": "seven"}, {"n": 2}])
    assert answers[0] == {"echo": 0, "number": 7}
    assert isinstance(answers[1], PolicyError)
    assert "policy evaluation failed" in str(answers[1]) and "could not parse string as number" in str(answers[1])
    assert answers[2] == {"echo": 2}


def test_evaluate_many_fails_the_whole_call_on_a_runaway_input(engine: EmbeddedEngine) -> None:
    with pytest.raises(PolicyError, match=r"timed out after 1 s \(GATE_POLICY_TIMEOUT\)"):
        engine.evaluate_many("batch", [{"n": 0}, {"n": 1, "slow": True}, {"n": 2}])
    assert engine.evaluate_many("batch", [{"n": 0}, {"n": 1}]) == [{"echo": 0}, {"echo": 1}]
    assert engine.evaluate("batch", {"n": 4}) == {"echo": 4}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_child_that_dies_fails_only_the_item_it_was_on(workers: int) -> None:
    def work(index: int) -> bytes:
        if index == 2:
            os._exit(3)  # as if killed (out of memory): no answer at all
        return str(index).encode()

    answers = run_each_with_deadline(6, work, TIMEOUT, workers=workers)
    assert [a for i, a in enumerate(answers) if i != 2] == [b"0", b"1", b"3", b"4", b"5"]
    assert isinstance(answers[2], PolicyError) and "the evaluator died" in str(answers[2])


def test_an_error_raised_in_the_child_is_that_items_answer() -> None:
    def work(index: int) -> bytes:
        if index == 1:
            raise PolicyError("policy input rejected: too deep")
        if index == 2:
            raise ValueError("boom")
        return b"x" * (300_000 * index)  # answers larger than a pipe's buffer arrive whole

    answers = run_each_with_deadline(4, work, TIMEOUT, workers=2)
    assert answers[0] == b"" and answers[3] == b"x" * 900_000
    assert str(answers[1]) == "policy input rejected: too deep"
    assert str(answers[2]) == "policy evaluation failed: ValueError: boom"


def test_each_input_is_judged_with_its_own_data_and_the_engine_keeps_its_own(tmp_path: Path) -> None:
    (tmp_path / "batch.rego").write_text("package batch\n\nimport rego.v1\n\nlimit := data.limit\n\nover if input.n > data.limit\n")
    engine = EmbeddedEngine(timeout=TIMEOUT)
    engine.load(load_bundle(tmp_path), {"limit": 100})
    low, high = ("low", {"limit": 1}), ("high", {"limit": 10})
    data = [low, high, low, high, high, low, low]
    answers = engine.evaluate_each("batch", [{"n": 5}] * len(data), data)
    assert answers == [{"limit": 1, "over": True} if key == "low" else {"limit": 10} for key, _ in data]
    assert engine.evaluate("batch", {"n": 5}) == {"limit": 100}
