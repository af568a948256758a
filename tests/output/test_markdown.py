"""The ``markdown`` rendering (job summary, PR comment): what it shows, that untrusted text stays
text, and that it stays under GitHub's size limit saying what it left out."""

from __future__ import annotations

import re

from gate.decisions.record import AppliedWaiver, Outcome, Violation
from gate.output import markdown
from gate.output.formats import DecisionLinks
from tests.output.test_decision_outputs import DECISION_ID, DIGEST, IMAGE, POLICY_DIGEST, WAIVER, make_decision

# A cell separator: a `|` not escaped by a backslash.
CELL = re.compile(r"(?<!\\)\|")


def table(document: str, heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the table under ``### heading (n)``, header and rule included."""
    lines = document.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"### {heading} ("))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in CELL.split(line)[1:-1]])
    return rows


def test_outcome_line_tables_waivers_policy_and_decision() -> None:
    document = markdown.render(make_decision())
    assert document.splitlines()[0] == f"## ❌ gate: DENY `{IMAGE}@{DIGEST}` → `prod`"
    deny = table(document, "Deny reasons")
    assert deny[0] == ["Severity", "Rule", "Message", "Findings"] and len(deny) == 2 + 4
    assert [row[:2] for row in deny[2:]] == [
        ["CRITICAL", "`secrets.any`"], ["CRITICAL", "`vulnerabilities.fixable`"],
        ["HIGH", "`coverage.minimum`"], ["HIGH", "`vulnerabilities.fixable`"],
    ]
    assert deny[2][3] == "`f-secret`" and deny[4][3] == ""
    assert len(table(document, "Warnings")) == 2 + 2
    [waiver] = table(document, "Waivers applied")[2:]
    # decided 2026-11-26, expires 2026-12-01: inside the 14-day warning window
    assert waiver[0] == "`W-0042`" and waiver[2].startswith("⚠️ 2026-12-01T00:00:00Z (expires within 14 days)")
    assert "1 waiver(s) applied, 1 expiring within 14 days**" in document
    assert "Stale waivers (in scope, match nothing): `W-0007`" in document
    assert f"\n- Policy `{POLICY_DIGEST}` revision `2026.11.1`, engine embedded regorus 0.13.0\n" in document
    assert f"Decision `{DECISION_ID}`" in document


def test_a_waiver_far_from_expiry_is_not_marked_and_finding_ids_are_shortened() -> None:
    later = AppliedWaiver(**{**{f: getattr(WAIVER, f) for f in WAIVER.__struct_fields__}, "expires": "2027-06-01T00:00:00Z"})
    long_id = "0123456789abcdef" * 2
    violation = Violation(rule="r", message="m", severity="high", finding_ids=(long_id,))
    document = markdown.render(make_decision(waivers=(later,), violations=(violation,)))
    assert table(document, "Waivers applied")[2][2] == "2027-06-01T00:00:00Z"
    assert "1 waiver(s) applied**" in document
    assert table(document, "Deny reasons")[2][3] == "`0123456789ab`"
    many = Violation(rule="r", message="m", severity="high", finding_ids=tuple(f"{n:02x}" + "f" * 30 for n in range(8)))
    cell = table(markdown.render(make_decision(violations=(many,))), "Deny reasons")[2][3]
    assert cell == ", ".join(f"`{n:02x}ffffffffff`" for n in range(5)) + " and 3 more"


def test_untrusted_messages_stay_text() -> None:
    message = (
        "a | b `code` <script>alert(1)</script> <img src=x onerror=y> [click](javascript:alert(1)) "
        "![i](https://evil.example/p.png) **bold** @admin $x$\n## heading\n| fake | row |"
    )
    violation = Violation(rule="r|x`y", message=message, severity="critical")
    document = markdown.render(make_decision(violations=(violation,), warnings=(), waivers=(), stale_waivers=()))
    assert "<script" not in document and "<img" not in document
    assert "&lt;script&gt;" in document
    assert "\n## heading" not in document and "\n| fake" not in document
    [row] = table(document, "Deny reasons")[2:]
    assert len(row) == 4  # no `|` of the message split the row
    assert row[1] == "`r¦xˋy`"
    assert "\\[click\\](javascript:alert(1))" in row[2] and "\\!\\[i\\]" in row[2]
    assert "\\`code\\`" in row[2] and "\\*\\*bold\\*\\*" in row[2] and "\\$x\\$" in row[2]
    assert "@\u200badmin" in row[2]  # mentions nobody


def test_links_from_the_recorded_ci_context_or_given_and_only_web_urls() -> None:
    run = "https://github.com/shop/cart/actions/runs/42"
    document = markdown.render(make_decision(context={"pipeline_url": run}))
    assert f"\n- CI run: <{run}>\n" in document
    given = markdown.render(make_decision(), links=DecisionLinks(decision="https://gate.example/d/1"))
    assert "\n- Decision: <https://gate.example/d/1>\n" in given and "CI run" not in given
    hostile = markdown.render(make_decision(context={"pipeline_url": "javascript:alert(1)"}))
    assert "javascript" not in hostile


def test_an_error_decision_says_why() -> None:
    document = markdown.render(make_decision(outcome=Outcome.ERROR, violations=(), warnings=(), error="no <policy>"))
    assert document.startswith("## ⛔ gate: ERROR ")
    assert "> **Error:** no &lt;policy&gt;" in document


def test_the_document_stays_under_the_limit_and_says_how_many_rows_it_left_out() -> None:
    violations = tuple(
        Violation(rule=f"rule.{n:04}", message="x" * 300, severity="high", finding_ids=(f"{n:032x}",)) for n in range(1000)
    )
    document = markdown.render(make_decision(violations=violations))
    assert len(document) <= markdown.MAX_CHARS
    shown = len(table(document, "Deny reasons")) - 2
    left_out = int(re.search(r"_(\d+) row\(s\) left out to stay under 65536 characters", document).group(1))
    # every deny row, both warnings and the waiver are either shown or counted as left out
    warnings_shown = len(table(document, "Warnings")) - 2 if "### Warnings" in document else 0
    waivers_shown = len(table(document, "Waivers applied")) - 2 if "### Waivers applied" in document else 0
    stale_shown = 1 if "Stale waivers" in document else 0
    assert 0 < shown < 1000
    assert shown + warnings_shown + waivers_shown + stale_shown + left_out == 1000 + 2 + 1 + 1
    assert f"`gate decisions show {DECISION_ID}` has them all" in document
    assert document.rstrip().endswith(f"Decision `{DECISION_ID}` at 2026-11-26T18:40:00.123456Z")
