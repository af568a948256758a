"""The decision log's head, anchored outside the log in every promotion commit (``Gate-Log-Head``),
and ``gate decisions verify --gitops-repo`` checking every anchored head is still in the chain:
end to end through the CLI on the real registry and real git.

Deleting the newest records and lowering the counter beside them (SQLite's ``sqlite_sequence``)
leaves a perfect chain, and with the events' tail cut the same way nothing inside the log shows it;
the GitOps history still holds the head the log had when each promotion was made.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gate.decisions.events import EventQuery
from gate.decisions.store import open_store
from tests.conftest import Run
from tests.decisions.logcheck import raw
from tests.decisions.test_log_integrity import cut_tail
from tests.promote.gitrepo import trailers
from tests.promote.servers import Registry
from tests.promote.test_promote_cli import App, evaluate


def log_head() -> str | None:
    store = open_store()
    try:
        return store.head()
    finally:
        store.close()


def cut(path: Path, keep_decisions: int, keep_events: int) -> None:
    """Delete the newest records and events and lower SQLite's counters to match, behind gate's back."""
    cut_tail(str(path), keep_decisions)
    for table in ("event_decisions", "events"):
        raw(str(path), f"delete from {table} where seq > ?", (keep_events,))
    raw(str(path), "update sqlite_sequence set seq = ? where name = 'events'", (keep_events,))


def test_every_promotion_commit_anchors_the_log_head_and_verify_checks_them(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path, decision_store: Path
) -> None:
    app = App(registry, tmp_path)
    first = evaluate(gate, data, app.source)
    assert app.promote(gate, first["decision_id"]).code == 0
    assert f"Gate-Log-Head: {first['hash']}" in trailers(app.remote)

    second = evaluate(gate, data, app.source)
    assert log_head() == second["hash"]
    run = app.promote(gate, second["decision_id"], tag="1.1")
    assert run.code == 0, run.err
    assert f"Gate-Log-Head: {second['hash']}" in trailers(app.remote)
    anchored = app.remote.head()

    run = gate("decisions", "verify", "--gitops-repo", app.remote.url, "--format", "json")
    assert run.code == 0, run.out
    assert run.json()["anchors"] == 2 and run.json()["head"] == second["hash"]

    # hide the second decision and its promotion: both tails cut, both counters lowered
    cut(decision_store, keep_decisions=1, keep_events=1)
    assert gate("decisions", "verify").code == 0  # nothing inside the log shows it
    run = gate("decisions", "verify", "--gitops-repo", app.remote.url)
    assert run.code == 1
    assert run.out.startswith(
        f"verify failed: commit {anchored[:12]}'s Gate-Log-Head {second['hash']} is not in the chain: it ends at seq 1"
    )
    # the first commit's anchor alone still holds
    assert gate("decisions", "verify", "--expect-head", first["hash"]).code == 0


def test_verify_against_a_branch_that_does_not_exist_is_exit_2(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    evaluate(gate, data, app.source)
    run = gate("decisions", "verify", "--gitops-repo", app.remote.url, "--gitops-branch", "nope")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "has no branch 'nope'" in run.err


def test_a_repository_without_anchors_is_noted_and_the_chain_still_judged(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    evaluate(gate, data, app.source)
    run = gate("decisions", "verify", "--gitops-repo", app.remote.url)
    assert run.code == 0, run.out
    assert "no Gate-Log-Head trailer on branch main" in run.err


def test_a_refused_promotion_of_an_unknown_decision_names_no_decision_and_verify_passes(
    gate: Callable[..., Run], data: Path, registry: Registry, tmp_path: Path
) -> None:
    app = App(registry, tmp_path)
    evaluate(gate, data, app.source)
    unknown = "0193aaaa-0000-7000-8000-000000000000"
    assert app.promote(gate, unknown).code == 1
    store = open_store()
    try:
        (event,) = list(store.events(EventQuery()))
    finally:
        store.close()
    assert event.outcome == "refused" and event.decision_ids == () and event.details["unknown_decision_id"] == unknown
    assert gate("decisions", "verify").code == 0
