"""The ``github`` rendering: workflow commands as GitHub's runner reads them, one per line, untrusted
text unable to start a second command or to end a property early."""

from __future__ import annotations

import re

from gate.decisions.record import Outcome, Violation
from gate.output import github
from tests.output.test_decision_outputs import DECISION_ID, FINDINGS, make_decision

# What the runner recognises: `::name props::data` at the start of a line (ActionCommand.TryParseV2).
COMMAND = re.compile(r"^::([a-z-]+)(?: ([^:]*))?::(.*)$")


def commands(text: str) -> list[tuple[str, dict[str, str], str]]:
    """The commands of ``text``, unescaped as the runner does; a line that is no command fails the test."""
    parsed = []
    assert text.endswith("\n")
    for line in text[:-1].split("\n"):
        assert "\r" not in line
        match = COMMAND.match(line)
        assert match is not None, line
        name, props, data = match.groups()
        properties = {}
        for pair in (props or "").split(","):
            if pair:
                key, _, value = pair.partition("=")
                properties[key] = unescape(value)
        parsed.append((name, properties, unescape(data)))
    return parsed


def unescape(text: str) -> str:
    return text.replace("%0D", "\r").replace("%0A", "\n").replace("%3A", ":").replace("%2C", ",").replace("%25", "%")


def test_one_error_per_deny_and_one_warning_per_warning_with_file_and_line_where_a_finding_has_them() -> None:
    parsed = commands(github.render(make_decision()))
    errors = [c for c in parsed if c[0] == "error"]
    warnings = [c for c in parsed if c[0] == "warning"]
    assert len(errors) == 4 and len(warnings) == 2
    secret = next(c for c in errors if c[1]["title"].startswith("secrets.any"))
    assert secret[1] == {"file": "app/config/settings.py", "line": "12", "endLine": "12", "title": "secrets.any (critical)"}
    assert secret[2] == "secret aws-access-key-id in app/config/settings.py:12"
    # a package finding and a violation about no finding: no file, the rule as title
    coverage = next(c for c in errors if c[1]["title"].startswith("coverage.minimum"))
    assert coverage[1] == {"title": "coverage.minimum (high)"}
    dockerfile = next(c for c in warnings if c[1]["title"].startswith("misconfig.dockerfile"))
    assert dockerfile[1]["file"] == "Dockerfile" and "line" not in dockerfile[1]
    notice = parsed[-1]
    assert notice[0] == "notice" and DECISION_ID in notice[2] and notice[2].startswith("DENY ")


def test_a_path_inside_the_image_is_not_named_as_a_repository_file() -> None:
    in_image = [
        {**f, "location": {**f["location"], "image": "registry.example.com/shop/cart"}} if f["id"] == "f-secret" else f
        for f in FINDINGS
    ]
    parsed = commands(github.render(make_decision(input={"findings": in_image})))
    secret = next(c for c in parsed if c[1].get("title", "").startswith("secrets.any"))
    assert "file" not in secret[1]


def test_untrusted_text_cannot_inject_a_command_or_a_property() -> None:
    message = "boom\n::set-output name=allowed::true\r\n::add-mask::x %0A::stop-commands::t 100%"
    rule = "evil,file=/etc/passwd::title=x"
    violation = Violation(rule=rule, message=message, severity="critical", finding_ids=("f-secret",))
    rendered = github.render(make_decision(violations=(violation,), warnings=()))
    parsed = commands(rendered)  # every line is one of ours
    assert [c[0] for c in parsed] == ["error", "notice"]
    name, properties, data = parsed[0]
    assert properties["file"] == "app/config/settings.py" and properties["title"] == f"{rule} (critical)"
    assert data == message  # the runner gets the text back exactly
    assert "::set-output" not in rendered.split("\n", 1)[1]
    assert "%250A" in rendered and "evil%2Cfile=/etc/passwd%3A%3Atitle=x" in rendered


def test_an_error_decision_is_an_error_annotation() -> None:
    decision = make_decision(outcome=Outcome.ERROR, violations=(), warnings=(),
                             error="policy does not compile\n::warning::no")
    parsed = commands(github.render(decision))
    assert parsed[0] == ("error", {"title": "gate: no decision"}, "policy does not compile\n::warning::no")
    assert parsed[-1][0] == "notice" and parsed[-1][2].startswith("ERROR ")
