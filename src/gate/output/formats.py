"""Every rendering of one decision: the one place that maps a format name to its renderer.

``gate evaluate`` (``--format`` and ``--output FORMAT=FILE``) and ``gate decisions show --format``
render through :func:`render_decision`, so a stored decision re-renders byte for byte as it was
written when it was made. Renderers are imported when used: ``import gate.cli`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, assert_never

from gate.output.links import DecisionLinks

if TYPE_CHECKING:
    from gate.decisions.record import Decision

__all__ = ["DecisionFormat", "DecisionLinks", "as_recorded", "recorded_rules", "render_decision"]


class DecisionFormat(StrEnum):
    """Output formats of a decision (``gate evaluate``, ``gate decisions show``)."""

    TEXT = "text"
    JSON = "json"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    GITHUB = "github"
    #: GitLab's code quality report (artifacts:reports:codequality)
    CODEQUALITY = "codequality"


def render_decision(
    decision: Decision,
    fmt: DecisionFormat,
    *,
    rules: Mapping[str, str] | None = None,
    links: DecisionLinks | None = None,
) -> bytes | str:
    """The decision in ``fmt``. ``rules``: the promotion rules that were evaluated (rule id → package),
    for JUnit's passing tests; without them JUnit lists the rules that produced results.
    ``links``: for markdown; without them the pipeline URL recorded in the decision's context."""
    decision = as_recorded(decision)
    if fmt is DecisionFormat.TEXT:
        from gate.output import decision_text

        return decision_text.render(decision)
    if fmt is DecisionFormat.JSON:
        from gate.output import json as json_output

        return json_output.render(decision)
    if fmt is DecisionFormat.SARIF:
        from gate.output import sarif

        return sarif.render(decision)
    if fmt is DecisionFormat.JUNIT:
        from gate.output import junit

        return junit.render(decision, recorded_rules(decision) if rules is None else rules)
    if fmt is DecisionFormat.MARKDOWN:
        from gate.output import markdown

        return markdown.render(decision, links=links)
    if fmt is DecisionFormat.GITHUB:
        from gate.output import github

        return github.render(decision)
    if fmt is DecisionFormat.CODEQUALITY:
        from gate.output import codequality

        return codequality.render(decision)
    assert_never(fmt)


def recorded_rules(decision: Decision) -> dict[str, str]:
    """The promotion rules (id → package) of the policy layers the decision records, when they still
    load with the recorded digests; otherwise none (JUnit then lists the rules that produced results).

    The same answer when ``gate evaluate`` writes JUnit and when ``gate decisions show`` re-renders it
    later from the unchanged bundle; a changed or missing bundle never lends its rules to an old decision.
    """
    layers = [layer.source for layer in decision.policy.layers]
    if not layers:
        return {}
    from gate.errors import GateError
    from gate.output.junit import promotion_rules
    from gate.policy.sources import load_layers

    try:
        bundle = load_layers(layers)
    except (GateError, OSError):
        return {}
    if [layer.digest for layer in bundle.layers] != [layer.digest for layer in decision.policy.layers]:
        return {}
    return {rule_id: meta.package for rule_id, meta in promotion_rules(bundle).items()}


def as_recorded(decision: Decision) -> Decision:
    """The decision as the log gives it back: objects' keys sorted as in its canonical JSON (fields keep
    their order). A decision just made renders byte for byte as it will when re-read from the log."""
    import msgspec

    from gate.decisions.record import Decision, canonical_json

    return msgspec.json.decode(canonical_json(decision), type=Decision)
