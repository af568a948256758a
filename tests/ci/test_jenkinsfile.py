"""examples/jenkins/Jenkinsfile, as far as it can be checked honestly without a Jenkins.

Parse level: Groovy's strings and comments skipped, every brace, parenthesis and bracket is balanced;
the declarative directives are there (``pipeline``, ``agent``, the five stages of the flow in order,
``junit`` on gate's JUnit report); the exit-code contract is spelled out (``returnStatus``; 1 → UNSTABLE
or FAILURE by a parameter, anything else but 0 → FAILURE; promotion only after a success). Every gate
command line in its ``sh`` scripts parses with gate's own parser. Whether Jenkins runs it is not
tested here: no Jenkins is started.
"""

from __future__ import annotations

import re

from gate.version import __version__
from tests.ci.commands import assert_parses, gate_commands
from tests.conftest import ROOT

JENKINSFILE = ROOT / "examples" / "jenkins" / "Jenkinsfile"
_PAIRS = {"{": "}", "(": ")", "[": "]"}
#: Groovy string literals (triple-quoted first) and comments
_STRING_OR_COMMENT = re.compile(r"'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|//[^\n]*|/\*.*?\*/", re.S)


def code_only(text: str) -> str:
    """The Groovy code with every string and comment blanked (their newlines kept)."""
    return _STRING_OR_COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def unbalanced(code: str) -> str | None:
    """Where the brackets of ``code`` stop matching, or None."""
    stack: list[tuple[str, int]] = []
    for number, line in enumerate(code.splitlines(), 1):
        for char in line:
            if char in _PAIRS:
                stack.append((char, number))
            elif char in _PAIRS.values():
                if not stack or _PAIRS[stack[-1][0]] != char:
                    return f"line {number}: unexpected {char}"
                stack.pop()
    return f"line {stack[-1][1]}: {stack[-1][0]} never closed" if stack else None


def block(code: str, text: str, opening: str) -> str:
    """The text of the block that starts at the first match of ``opening`` (a regex ending at ``{``) in
    ``text``; its braces are counted in ``code``, the same text with strings and comments blanked."""
    assert len(code) == len(text)
    match = re.search(opening, text)
    assert match, f"no {opening!r} in the Jenkinsfile"
    depth, start = 0, match.end() - 1
    for index in range(start, len(code)):
        depth += {"{": 1, "}": -1}.get(code[index], 0)
        if depth == 0:
            return text[start : index + 1]
    raise AssertionError(f"{opening!r} never closes")


def test_the_jenkinsfile_is_balanced_and_declarative() -> None:
    text = JENKINSFILE.read_text()
    code = code_only(text)
    assert unbalanced(code) is None, unbalanced(code)
    # the checker bites
    assert unbalanced(code_only(text.replace("stage('Scan') {", "stage('Scan') {{"))) is not None
    assert unbalanced(code_only(text + "\n// a comment } is not code\n")) is None
    assert re.match(r"\s*pipeline\s*\{", "\n".join(line for line in code.splitlines() if line.strip()))
    pipeline = block(code, text, r"\bpipeline\s*\{")
    for directive in ("agent", "environment", "stages", "parameters"):
        assert re.search(rf"^\s{{4}}{directive}\b", pipeline, flags=re.M), f"pipeline has no {directive}"
    stages = re.findall(r"\bstage\('([^']+)'\)\s*\{", code_only_names(text))
    assert stages == ["Build", "Test", "Scan", "Evaluate", "Promote"]
    assert f"promotion-gate=={__version__}" in text


def code_only_names(text: str) -> str:
    """Code with comments blanked but strings kept (stage names are strings)."""
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", re.sub(r"'''.*?'''", "''", text, flags=re.S), flags=re.S)


def test_the_evaluate_stage_keeps_the_exit_code_contract_and_publishes_junit() -> None:
    text = JENKINSFILE.read_text()
    code = code_only(text)
    evaluate = block(code, text, r"stage\('Evaluate'\)\s*\{")
    assert "returnStatus: true" in evaluate, "gate's exit code must be read, not turned into a generic failure"
    assert "--output junit=gate-junit.xml" in evaluate
    post_always = block(code_only(evaluate), evaluate, r"post\s*\{\s*always\s*\{")
    assert re.search(r"\bjunit\b[^\n]*'gate-junit\.xml'", post_always), "the JUnit report is published even on a deny"
    # 0 → go on; 1 → unstable or error by the parameter; anything else → error (never a pass)
    branches = re.findall(r"(if \(code == 0\)|else if \(code == 1\)|\} else \{)", evaluate)
    assert branches[:3] == ["if (code == 0)", "else if (code == 1)", "} else {"], branches
    rest = evaluate[evaluate.index("else if (code == 1)") :]
    deny = block(code_only(rest), rest, r"else if \(code == 1\)\s*\{")
    assert "unstable(" in deny and "error(" in deny and "params.DENY_IS_UNSTABLE" in deny
    after_deny = rest[rest.index(deny) + len(deny) :]
    assert re.match(r"\s*else\s*\{\s*error\(", after_deny), after_deny[:120]
    promote = block(code, text, r"stage\('Promote'\)\s*\{")
    assert "currentBuild.currentResult == 'SUCCESS'" in promote and "env.GATE_DECISION_ID" in promote


def test_every_gate_command_in_the_jenkinsfile_parses() -> None:
    text = JENKINSFILE.read_text()
    scripts = re.findall(r"'''(.*?)'''", text, flags=re.S) + re.findall(r"\bsh '([^'\n]*)'", text)
    commands = [argv for script in scripts for argv in gate_commands(script)]
    assert [argv[0] for argv in commands] == ["evaluate", "promote"]
    for argv in commands:
        assert_parses(argv, "examples/jenkins/Jenkinsfile")
    [evaluate] = [argv for argv in commands if argv[0] == "evaluate"]
    assert "junit=gate-junit.xml" in evaluate
