"""The codequality rendering (gate/output/codequality.py), GitLab's code quality report, on the hand-built
decision of tests/output (a prod deny: two CVEs, a committed secret with a line, a coverage violation
about no finding, two warnings). End to end through the GitLab template: test_gitlab_template.py."""

from __future__ import annotations

import json

import msgspec

from gate.output.formats import DecisionFormat, render_decision
from tests.output.test_decision_outputs import ALLOW, DIGEST, IMAGE, make_decision


def issues(**changes: object) -> list[dict[str, object]]:
    rendered = render_decision(make_decision(**changes), DecisionFormat.CODEQUALITY)
    assert isinstance(rendered, bytes) and rendered.endswith(b"\n")
    document: list[dict[str, object]] = json.loads(rendered)
    return document


def test_one_issue_per_result_denies_first_with_gitlabs_severities_and_places() -> None:
    found = issues()
    assert [(i["check_name"], i["severity"]) for i in found] == [
        ("secrets.any", "blocker"),                 # critical deny
        ("vulnerabilities.fixable", "blocker"),
        ("coverage.minimum", "critical"),           # high deny
        ("vulnerabilities.fixable", "critical"),
        ("misconfig.dockerfile", "minor"),          # warnings: minor, info when low
        ("waivers.expiring", "info"),
    ]
    places = {i["description"]: i["location"] for i in found}
    assert places["secret aws-access-key-id in app/config/settings.py:12"] == {"path": "app/config/settings.py", "lines": {"begin": 12}}
    # a package in the lock file points at the lock file; one in the image, or no finding, at the image
    semver = next(loc for text, loc in places.items() if "semver" in text)
    assert semver == {"path": "app/package-lock.json", "lines": {"begin": 1}}
    openssl = next(loc for text, loc in places.items() if "libssl3" in text)
    coverage = next(loc for text, loc in places.items() if "coverage" in text)
    assert openssl == coverage == {"path": f"{IMAGE}@{DIGEST}", "lines": {"begin": 1}}
    assert next(loc for text, loc in places.items() if "DS-0002" in text) == {"path": "Dockerfile", "lines": {"begin": 1}}


def test_fingerprints_are_unique_stable_and_per_environment() -> None:
    first, again = issues(), issues(decision_id="another-run", timestamp="2026-11-27T08:00:00Z")
    assert len({i["fingerprint"] for i in first}) == len(first)
    # GitLab compares the base and head reports by fingerprint: the same finding keeps it across runs
    assert [i["fingerprint"] for i in first] == [i["fingerprint"] for i in again]
    staging = issues(environment="staging")
    assert not {i["fingerprint"] for i in first} & {i["fingerprint"] for i in staging}


def test_a_violation_about_several_findings_is_one_issue_per_finding_and_an_allow_is_empty() -> None:
    [both] = [msgspec.structs.replace(v, finding_ids=("f-openssl", "f-expat")) for v in make_decision().violations[:1]]
    found = issues(violations=(both,), warnings=())
    assert len(found) == 2 and len({i["fingerprint"] for i in found}) == 2
    # the shared message, each naming its own finding
    assert all("CVE-2023-0286 (critical)" in str(i["description"]) for i in found)
    assert "libssl3" in str(found[0]["description"]).split("(", 2)[-1] and "libexpat" in str(found[1]["description"])
    assert issues(**ALLOW) == []
