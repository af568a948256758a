"""Rule METADATA is never taken from the cache folder (issue 11: evaluate cost, without a way around).

METADATA decides what a result means (severity, ``effective_on``). The cache folder is restored from
elsewhere on many CI runners, so an entry planted there must not turn a deny into a warning.
"""

from __future__ import annotations

from pathlib import Path

from gate.policy.bundle import load_bundle
from gate.policy.cache import cache_key, keep
from gate.policy.metadata import read_metadata
from tests.conftest import ROOT

RULE = """package gate.promotion.x

import rego.v1

# METADATA
# title: X
# custom:
#   rule_id: x.rule
#   severity: {severity}
#   effective_on: 2027-01-01
deny contains "x" if input.x
"""


def test_metadata_planted_in_the_cache_folder_changes_nothing(user_cache: Path) -> None:
    sources = {"x.rego": RULE.format(severity="critical")}
    # what the removed metadata cache would have read: a forged entry under the sources' own key
    forged = b'[{"package":"gate.promotion.x","rule_id":"x.rule","title":"X","description":null,"severity":"low",' \
             b'"solution":null,"effective_on":"2999-01-01","file":"x.rego","line":5}]'
    keep("metadata-v1", cache_key("metadata-v1", "", sources.items()), forged)
    meta = read_metadata(sources)[("gate.promotion.x", "x.rule")]
    assert (meta.severity, meta.effective_on) == ("critical", "2027-01-01")


def test_the_shipped_metadata_is_read_from_the_bundle(user_cache: Path) -> None:
    metadata = read_metadata(load_bundle(ROOT / "policies").policies())
    assert metadata[("gate.promotion.vulnerabilities", "vulnerabilities.severity")].severity == "high"
    assert not [p for p in user_cache.rglob("*") if p.is_file() and "metadata" in str(p)]
