"""Benchmark: the decision log with COUNT decisions (default 1,000,000) of realistic mixed sizes in each store.

    python benchmarks/decision_log.py [--count 1000000] [--store sqlite|postgres|both] [--dir DIR]
    python benchmarks/decision_log.py --count 20000          # a smoke run, a few minutes

Decisions are built as ``gate evaluate`` builds them, from the real reports in tests/data read once
through gate's own scanner plugins (so findings, metrics and scanner entries have the real shapes):
500 repositories in 40 teams; 45 % "code" repositories (coverage and a SonarQube report: a few
findings, evaluated in dev/test/staging only), 30 % images with a small Trivy report (alpine,
spring4shell, npm, secrets, a Dockerfile misconfiguration, legacy schema), 10 % with securecodebox's
(43 findings), 15 % with juice-shop's (185), and three "large" images of 2,000, 5,000 and 20,000
vulnerabilities (evaluated a tenth as often). Each repository varies its reports (findings dropped,
packages renamed), each dependency epoch of 1-6 builds a little more, so rebuilds without dependency
changes share one findings document, as they do in CI. About 20 decisions per image digest (50,000
digests at 1M), mostly soon after the build, across 5 environments (dev, test, staging, prod,
prod-eu; test and prod-eu declared in each team's --data document, which 30 % of teams fill with
waivers, changing monthly). Violations, warnings and applied waivers are phrased exactly as the
shipped policies phrase them (checked: identical to a real `gate evaluate` on juice-shop in prod),
coverage per build, the quality gate failing for 30 % of builds, 0.2 % errors. Timestamps spread
over a year in append order. Each record is appended through the store's own ``append`` (the path
``gate evaluate`` takes: chain head read, documents split off and stored once, hash, Ed25519
signature, insert with index rows, commit per record), by one writer, signed with a fresh key.

Reported per store:

- insert rate: records/s through ``append`` (time inside ``append`` only; building the decisions
  is excluded and shown separately), the wall rate, and (SQLite) the disk's durable commit rate;
- size on disk, per decision and per table/index;
- ``list --digest``, ``--rule`` and ``--finding`` latency: median and p95 of many ``store.query``
  calls with limit 50 as ``decisions list`` makes them (without input documents where the store
  offers it), consumed fully; and once each as a cold ``gate decisions list`` process;
- ``gate decisions verify`` (a process) in records/s: plain, making a checkpoint, after a
  checkpoint, and ``--since-head`` over the newest 10,000 (when gate has those options);
- ``gate decisions replay`` (a process) over the newest --replay decisions under policies/.

The PostgreSQL store runs on a throwaway PostgreSQL 15 cluster started as the tests start it
(tests/pg.py: initdb in a temp folder, trust auth, a free port, fsync/synchronous_commit/
full_page_writes off — so its insert rate does not include a disk flush per commit); --pg-durable
starts it with the default durability settings instead. SQLite appends as gate opens the file (WAL,
synchronous=FULL: an fsync per commit) unless --sqlite-synchronous normal.

Targets (issue 11): insert ≥ 1,000/s, list --digest p95 ≤ 20 ms, list --finding p95 ≤ 50 ms,
verify ≥ 20,000 records/s, replay ≥ 1,000 records/s. Bytes per decision: benchmarks/decision_bytes.py.

Results (2026-12-07, 2 cores shared with other sessions' tests: load average given; code of 04:40-05:10
UTC while issue 11 was being built). 1M did not fit in the time (2-6 ms per append), so SQLite
300,000 decisions (gate's settings: WAL, synchronous=FULL; load 2-5) and PostgreSQL 100,000 (load
2-5); both signed, one writer. An earlier SQLite 150,000 run under load 8-10: 170/s, p95s 1.5-2.5x.

                                     SQLite 300k                  PostgreSQL 100k (fsync off)   target
  insert through append              259/s (480/s idle, 4k)       211/s                         ≥ 1,000/s  MISS
  size on disk                       5,268 MiB = 18.4 KB/dec.     800 MiB = 8.4 KB/decision     (1M: ~18 / ~8 GB)
  list --digest p95 (median)         7.6 ms (0.8)                 12.9 ms (2.7)                 ≤ 20 ms
  list --finding common CVE p95      45.6 ms (26.7)               61.4 ms (32.9)                ≤ 50 ms    MISS on PG
  list --finding ... --env prod p95  53.5 ms (30.4)               337 ms (29.3)                 ≤ 50 ms    MISS
  list --finding a finding id p95    4.4 ms                       12.9 ms                       ≤ 50 ms
  list --finding no match p95        0.7 ms                       6.0 ms                        ≤ 50 ms
  list --rule common CVE p95         36.7 ms (22.4)               46.1 ms (26.8)
  verify (process)                   2,228/s                      5,123/s                       ≥ 20,000/s MISS
  verify after a checkpoint          5,142/s                      5,492/s
  verify --since-head (10,000 new)   2,300/s                      2,654/s
  replay (process, newest 1,000)     75/s                         103/s                         ≥ 1,000/s  MISS
  replayed outcomes unchanged        999 of 1,000                 1,000 of 1,000

Where the time goes (cProfile, --profile):
- append, SQLite idle (4,000 appends, 2.07 ms each): commit 1.2 ms (58 %; the same with synchronous
  normal: writing ~7 WAL pages per 18 KB record and the WAL checkpoints they cause, not the fsync),
  then split (every input key canonical-encoded on every append: 12 JSON encodes per append),
  finding_terms (computed on every append although 94 % reuse a stored findings document), Ed25519
  sign 0.1 ms. PostgreSQL: psycopg round trips (5 per append) and the same CPU work.
- listings that match juice-shop-like denies: decoding the records, not the SQL (SQLite, common CVE:
  25 ms SQL, 110 ms decode of 50 rows of 57 KB): a deny on 185 findings carries 64 KB of violations
  inline, a dev decision on 20,000 findings 5 MB of warnings, so any listing of big denies decodes
  megabytes. The p95 of --digest is the same effect (a large image's 50 newest decisions).
- replay (gate decisions replay --since, 410 records of the SQLite 300k log, 53/s under cProfile):
  3.2 s waiting for the batch child's regorus answers (~8 ms a record, one core), 2.8 s reading
  the matching rows (7 ms a record), 0.26 s inflating documents, 0.5 s imports.
- verify: 2,200-5,100/s plain, 5,100-5,700/s after a checkpoint (signatures skipped), so the
  remaining cost is re-hashing, JSON decoding and index-row checks of 18 KB records, not Ed25519.
- record size (below and benchmarks/decision_bytes.py): violations and warnings are ~85 % of the
  stored records; inputs are now small (documents 21.6 MiB of 2,592).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import logging
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GATE = str(Path(sys.executable).with_name("gate"))

#: environments where high (not only critical) vulnerabilities deny, as the shipped thresholds do for prod
STRICT = {"prod", "prod-eu"}
REPOSITORIES = 500


# --- decisions built from real reports ----------------------------------------------------------

DATA = ROOT / "tests" / "data"
TRIVY_SMALL = (
    "trivy-image-alpine-310.json", "trivy-image-spring4shell-jre11-jar.json", "trivy-fs-npm-lang-pkgs.json",
    "trivy-fs-secrets.json", "trivy-config-dockerfile-misconfig.json", "trivy-legacy-schema1-vulns-null.json",
)
#: what "code" repositories scan their sources with (dev requires a Trivy report)
TRIVY_FS = ("trivy-fs-npm-lang-pkgs.json", "trivy-fs-secrets.json", "trivy-config-dockerfile-misconfig.json")
TRIVY_MEDIUM = "trivy-repo-securecodebox-multi-results.json"
TRIVY_JUICE = "trivy-image-juice-shop-v12.10.2-many-vulns.json"
COVERAGE = (
    "clover-istanbul-unleash.xml", "clover-phpunit-phpcsutils.xml", "cobertura-coveragepy-5.0a2-branch.xml",
    "cobertura-coveragepy-6.3.2-multi-package.xml", "cobertura-java-cobertura-1.9-maven-example.xml",
    "coveragepy-7.8.0-branch.json", "go-coverprofile-chi-mode-set.out", "jacoco-aggregate-report-groups.xml",
    "jacoco-report-raw-oneline.xml", "lcov-c8-multi-file-edgecases.info", "lcov-istanbul-typescript.info",
)
SONAR = (
    "sonarqube-api-qualitygates-project_status-example.json",
    "sonarqube-api-qualitygates-project_status-example-legacy-periods.json",
    "sonarqube-api-issues-search-real-server-anonymized.json",
    "sonarqube-api-hotspots-search-real-server-anonymized.json",
    "sonarqube-api-issues-search-example.json",
)
#: repository kinds and their share of repositories: "code" has coverage, SonarQube and a Trivy
#: source scan (a few findings, never promoted to prod); images add Trivy: a small report, securecodebox (42 findings)
#: or juice-shop (185); "large" repositories scan 2,000 to 20,000 vulnerabilities and are evaluated
#: a tenth as often as the others
KINDS = (("code", 0.45), ("image-small", 0.30), ("image-medium", 0.10), ("juice-shop", 0.15))
LARGE = {7: 2_000, 123: 5_000, 321: 20_000}  # repository index -> vulnerabilities
ENV_WEIGHTS = (("dev", 35), ("test", 20), ("staging", 20), ("prod", 15), ("prod-eu", 10))
TEAMS = 40
#: every team passes a --data file declaring the environments the bundle does not ship; 30 % add waivers
DECLARED = {"test": {"inherits": "dev"}, "prod-eu": {"inherits": "prod"}}
SEVERITY_WORDS = {"unknown": "unknown-severity"}
COMPARATORS = {"LT": "below", "GT": "above", "EQ": "equal to", "NE": "other than"}
BUNDLES = tuple(
    (f"gate-policies-0.{k}.0", "sha256:" + hashlib.sha256(f"gate-policies-0.{k}.0".encode()).hexdigest()) for k in range(1, 5)
)


def _scan(kind: str, name: str) -> dict[str, Any]:
    """One real report through gate's own scanner plugin: its findings, metrics and scanner entry."""
    from gate.plugins import plugin_manager
    from gate.scanning.document import ReportSpec, build_input, scan_reports
    from gate.scanning.registry import ScannerRegistry

    document = build_input(scan_reports(ScannerRegistry(plugin_manager()), [ReportSpec(kind, str(DATA / kind / name))]), None, {})
    [scanner] = document["scanners"]
    scanner["report"] = f"reports/{name}"
    return {"findings": document["findings"], "metrics": document["metrics"].get(kind, {}), "scanner": scanner}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _renamed(finding: dict[str, Any], suffix: str, version: str | None = None) -> dict[str, Any]:
    """``finding`` about another package (name + suffix) or version, with its id and message to match."""
    package = finding.get("package")
    if not package:
        return {**finding, "id": _md5(finding["id"] + suffix + (version or ""))}
    package = {**package, "name": package["name"] + suffix}
    if version:
        package["version"] = version
    fixed = package.get("fixed_version")
    message = f"{finding['rule']} in {package['name']} {package.get('version', '')}" + (f" (fixed in {fixed})" if fixed else "")
    return {**finding, "id": _md5(finding["id"] + suffix + (version or "")), "package": package, "message": message}


def _percent(rate: float) -> str:
    """As coverage.rego prints a rate: rounded to two decimals, whole numbers without a fraction."""
    value = round(rate * 10000) / 100
    return str(int(value)) if value == int(value) else repr(value)


def _where(finding: dict[str, Any]) -> str:
    location = finding.get("location") or {}
    line = f" line {location['start_line']}" if location.get("start_line") else ""
    return f"{location.get('path', '?')}{line}"


@dataclass(frozen=True)
class Repo:
    index: int
    image: str
    team: int
    kind: str
    trivy: tuple[str, ...]
    coverage: str
    sonar: str | None
    #: consecutive builds whose dependencies (so findings) do not change
    epoch_len: int
    large: int = 0


class LRU(OrderedDict[Any, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def remember(self, key: Any, value: Any) -> Any:
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value


class Corpus:
    """Repositories, their builds (image digests) and what each scan of a build finds, from a seed.

    Findings come from the real reports in tests/data, normalized by gate's plugins: each repository
    changes its kind's reports a little (a tenth of the findings dropped, a fifth on renamed
    packages), each dependency epoch (1-6 builds) a little more (5 % fixed, up to 2 new ones), so
    builds of one epoch share one findings document, as rebuilds without dependency changes do.
    """

    def __init__(self, count: int, seed: int = 42) -> None:
        self.count, self.seed = count, seed
        logging.disable(logging.WARNING)  # the plugins' notes about the sample reports
        try:
            self.trivy = {name: _scan("trivy", name) for name in (*TRIVY_SMALL, TRIVY_MEDIUM, TRIVY_JUICE)}
            self.coverage = {name: _scan("coverage", name) for name in COVERAGE}
            self.sonar = {name: _scan("sonarqube", name) for name in SONAR}
        finally:
            logging.disable(logging.NOTSET)
        self.pool = [f for name in TRIVY_SMALL + (TRIVY_MEDIUM,) for f in self.trivy[name]["findings"]]
        rng = random.Random(seed)
        self.repos = []
        for i in range(REPOSITORIES):
            kind = "large" if i in LARGE else rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
            trivy: tuple[str, ...] = {
                "code": (rng.choice(TRIVY_FS),), "image-small": (rng.choice(TRIVY_SMALL),), "image-medium": (TRIVY_MEDIUM,),
                "juice-shop": (TRIVY_JUICE,), "large": (TRIVY_JUICE,),
            }[kind]
            self.repos.append(
                Repo(
                    index=i,
                    image=f"registry.example.com/team-{i % TEAMS:02d}/svc-{i:03d}",
                    team=i % TEAMS,
                    kind=kind,
                    trivy=trivy,
                    coverage=rng.choice(COVERAGE),
                    sonar=rng.choice(SONAR) if kind == "code" or rng.random() < 0.6 else None,
                    epoch_len=rng.randint(1, 6),
                    large=LARGE.get(i, 0),
                )
            )
        #: image digests (builds): about 20 decisions each, 50,000 at most
        self.builds = max(REPOSITORIES, min(50_000, count // 20))
        self.waiving_teams = {t for t in range(TEAMS) if random.Random(seed * 7 + t).random() < 0.3}
        self.cve_pool = sorted({f["rule"] for name in (TRIVY_MEDIUM, TRIVY_JUICE) for f in self.trivy[name]["findings"]})
        self._repo_findings: dict[int, list[dict[str, Any]]] = {}
        self._findings = LRU(3000)
        self._judged = LRU(6000)
        self._data = LRU(600)
        self._summaries = LRU(3000)

    def repo(self, build: int) -> Repo:
        return self.repos[build % REPOSITORIES]

    def digest(self, build: int) -> str:
        return "sha256:" + hashlib.sha256(f"image-{self.seed}-{build}".encode()).hexdigest()

    def repo_findings(self, repo: Repo) -> list[dict[str, Any]]:
        """The repository's own variant of its kind's reports (and its SonarQube findings)."""
        found = self._repo_findings.get(repo.index)
        if found is not None:
            return found
        rng = random.Random(f"{self.seed}/repo/{repo.index}")
        base = [f for name in repo.trivy for f in self.trivy[name]["findings"]]
        if repo.large:
            base = [_renamed(base[k % len(base)], f"-{k}") for k in range(repo.large)]
        found = []
        for f in base:
            roll = rng.random()
            if roll < 0.1 and not repo.large:
                continue
            found.append(_renamed(f, f"-r{repo.index}") if roll < 0.3 else f)
        if repo.sonar:
            found += self.sonar[repo.sonar]["findings"]
        self._repo_findings[repo.index] = found
        return found

    def findings(self, build: int) -> tuple[Any, list[dict[str, Any]]]:
        """(key, findings) of ``build``: shared by the builds of one dependency epoch."""
        repo = self.repo(build)
        key = (repo.index, (build // REPOSITORIES) // repo.epoch_len)
        found = self._findings.get(key)
        if found is not None:
            return key, found
        rng = random.Random(f"{self.seed}/epoch/{key}")
        found = [f for f in self.repo_findings(repo) if f.get("kind") != "vulnerability" or rng.random() >= 0.05]
        if repo.trivy:
            found += [_renamed(rng.choice(self.pool), f"-e{key[1]}", f"{rng.randint(1, 9)}.{rng.randint(0, 20)}") for _ in range(rng.randint(0, 2))]
        return key, self._findings.remember(key, found)

    def data(self, team: int, month: int, moment: datetime) -> dict[str, Any]:
        """The --data document team ``team`` evaluates with in ``month``: environments, maybe waivers."""
        key = (team, month)
        found = self._data.get(key)
        if found is not None:
            return found
        document: dict[str, Any] = {"environments": DECLARED}
        if team in self.waiving_teams:
            rng = random.Random(f"{self.seed}/waivers/{key}")
            document["waivers"] = [
                {
                    "id": f"W-{team:02d}{k:02d}",
                    "rule": rng.choice(self.cve_pool),
                    "reason": "not reachable from the service's code paths; tracked in SEC-" + str(rng.randint(100, 999)),
                    "approved_by": "secops@example.com",
                    "expires": rfc3339_text(moment + timedelta(days=rng.randint(-10, 90))),
                    **({"image": f"registry.example.com/team-{team:02d}/svc-{rng.randrange(team, REPOSITORIES, TEAMS):03d}"} if rng.random() < 0.3 else {}),
                }
                for k in range(rng.randint(3, 12))
            ]
        return self._data.remember(key, document)

    def judged(self, build: int, env: str, fkey: Any, findings: list[dict[str, Any]], metrics: dict[str, Any],
               data: dict[str, Any], image: str, now: str) -> tuple[Any, ...]:
        """(violations, warnings, waivers) as the shipped policies phrase them (same rules, messages, order)."""
        from gate.decisions.record import AppliedWaiver, Violation

        active = {w["rule"]: w for w in data.get("waivers", ()) if w["expires"] > now and w.get("image") in (None, image)}
        key = (fkey, env, build if "coverage" in metrics or "sonarqube" in metrics else None,
               tuple(sorted((r, w["id"]) for r, w in active.items())))
        found = self._judged.get(key)
        if found is not None:
            return found
        strict = env in STRICT
        deny = {"critical", "high", "unknown"} if strict else {"critical"}
        warn = set() if strict else {"high", "unknown"}
        violations, warnings, waived = [], [], {}
        for f in findings:
            kind, severity = f.get("kind"), f.get("severity")
            if kind not in ("vulnerability", "secret", "misconfiguration"):
                continue
            if f["rule"] in active:
                waived.setdefault(f["rule"], []).append(f["id"])
                continue
            if kind == "vulnerability" and (severity in deny or severity in warn):
                package = f.get("package") or {}
                what = " ".join(p for p in (package.get("name", "an unnamed package"), package.get("version", "")) if p)
                fixed = package.get("fixed_version") or ""
                where = f" ({package['path']})" if package.get("path") else ""
                rule = "vulnerabilities.severity" if severity in deny else "vulnerabilities.severity_warning"
                (violations if severity in deny else warnings).append(
                    Violation(
                        rule=rule,
                        message=f"{SEVERITY_WORDS.get(severity, severity)} vulnerability {f['rule']} in {what}{where}: "
                        + (f"fixed in {fixed}" if fixed else "no fixed version available"),
                        severity="high" if severity == "unknown" else severity,
                        finding_ids=(f["id"],),
                        title="Vulnerability at a blocking severity" if severity in deny else "Vulnerability at a warning severity",
                        solution=f"Upgrade {what} to {fixed} or later and rebuild the image, or waive {f['rule']} with a reason and an expiry"
                        if fixed else f"No fixed version of {what} yet: remove or replace it, or assess {f['rule']} and waive it with a reason and an expiry",
                        package="gate.promotion.vulnerabilities",
                    )
                )
            elif kind == "secret":
                violations.append(
                    Violation(
                        rule="secrets.exposed",
                        message=f"{severity} secret {f['rule']} ({f.get('title')}) in {_where(f)}",
                        severity=severity if severity in ("critical", "high", "medium", "low") else "high",
                        finding_ids=(f["id"],),
                        title="Secret found",
                        solution="Remove the secret from the source and from every image layer, rotate the credential, and rebuild; "
                        "if it is a harmless test value, waive the secret rule with a reason and an expiry",
                        package="gate.promotion.secrets",
                    )
                )
            elif kind == "misconfiguration" and severity in ("critical", "high"):
                violations.append(
                    Violation(
                        rule="misconfigurations.severity",
                        message=f"{severity} misconfiguration {f['rule']} in {_where(f)}: {f.get('title')}",
                        severity=severity, finding_ids=(f["id"],), title="Misconfiguration at a blocking severity",
                        solution=(f.get("raw") or {}).get("Resolution")
                        or f"Fix the configuration as check {f['rule']} describes, or waive {f['rule']} with a reason and an expiry",
                        package="gate.promotion.misconfigurations",
                    )
                )
        line_rate = (metrics.get("coverage") or {}).get("line_rate")
        minimum = 0.8 if strict else 0.6
        if isinstance(line_rate, float) and line_rate < minimum:
            violations.append(
                Violation(
                    rule="coverage.line_rate",
                    message=f"line coverage {_percent(line_rate)}% is under the {_percent(minimum)}% required in {env}",
                    severity="medium", title="Line coverage under the minimum",
                    solution="Add tests for the uncovered code, or lower min_line_coverage for this environment in data.thresholds",
                    package="gate.promotion.coverage",
                )
            )
        quality_gate = (metrics.get("sonarqube") or {}).get("quality_gate") or {}
        if quality_gate.get("status") not in (None, "OK"):
            failed = [c for c in quality_gate.get("conditions", ()) if c.get("status") in ("ERROR", "WARN")]
            texts = [
                f"{c['metric']} is {c.get('actual_value', 'unknown')}"
                + (f" (must not be {COMPARATORS.get(c.get('comparator'), c.get('comparator'))} {c['error_threshold']})"
                   if c.get("error_threshold") is not None else "")
                for c in failed
            ]
            metrics_failed = {c["metric"] for c in failed}
            violations.append(
                Violation(
                    rule="quality_gate.status",
                    message=f"SonarQube quality gate is {quality_gate['status']}: {'; '.join(texts)}" if texts
                    else f"SonarQube quality gate is {quality_gate['status']} and names no failed condition",
                    severity="high",
                    finding_ids=tuple(sorted(f["id"] for f in findings if f.get("kind") == "quality_gate" and f["rule"] in metrics_failed)),
                    title="SonarQube quality gate failed",
                    solution="Fix the failed conditions in SonarQube and re-run the analysis; a condition that cannot be fixed "
                    "now can be waived by its metric with a reason and an expiry",
                    package="gate.promotion.quality_gate",
                )
            )
        in_scope = [w for w in data.get("waivers", ()) if w.get("image") in (None, image)]
        moment = datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for w in in_scope:
            left = datetime.strptime(w["expires"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) - moment
            if w["rule"] in active and active[w["rule"]] is w and w["rule"] in waived and left <= timedelta(days=14):
                days = int(left.total_seconds() // 86400)
                text = "in less than a day" if days < 1 else "in 1 day" if days == 1 else f"in {days} days"
                warnings.append(Violation(
                    rule="waivers.expiring", message=f"waiver {w['id']} for {w['rule']} expires {w['expires']} ({text})",
                    severity="low", finding_ids=tuple(sorted(waived[w["rule"]])), title="Waiver expires soon",
                    solution=f"Fix {w['rule']} before {w['expires']}, or renew waiver {w['id']} with a new approval and expiry",
                    package="gate.promotion.waivers",
                ))
            elif w["expires"] <= now and w["rule"] not in active:
                ids = tuple(sorted(f["id"] for f in findings if f.get("rule") == w["rule"]))
                if ids:
                    warnings.append(Violation(
                        rule="waivers.expired", message=f"waiver {w['id']} expired on {w['expires']}; {w['rule']} is no longer waived",
                        severity="medium", finding_ids=ids, title="Waiver expired",
                        solution=f"Fix {w['rule']}, or renew waiver {w['id']} with a new approval and expiry",
                        package="gate.promotion.waivers",
                    ))
        rank = {"critical": 4, "high": 3, "medium": 2, "low": 1}
        order = lambda v: (-rank.get(v.severity, 0), v.rule, v.message, v.finding_ids)  # noqa: E731 (gate.policy.evaluate._order)
        waivers = tuple(
            AppliedWaiver(id=w["id"], rule=w["rule"], expires=w["expires"], approved_by=w["approved_by"], reason=w["reason"],
                          finding_ids=tuple(sorted(waived[r])))
            for r, w in sorted(active.items(), key=lambda item: item[1]["id"]) if r in waived
        )
        return self._judged.remember(key, (tuple(sorted(violations, key=order)), tuple(sorted(warnings, key=order)), waivers))

    def metrics(self, build: int, findings: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The build's metrics (its coverage varies per build; its quality gate fails for 30 % of builds)
        and its scanner entries (report hashes per build)."""
        repo = self.repo(build)
        rng = random.Random(f"{self.seed}/build/{build}")
        coverage = self.coverage[repo.coverage]
        line_rate = round(rng.uniform(0.5, 0.97), 6)
        metrics: dict[str, Any] = {"coverage": {**coverage["metrics"], "line_rate": line_rate}}
        scanners = []
        for name in repo.trivy:
            metrics["trivy"] = self.trivy[name]["metrics"]
            scanners.append({**self.trivy[name]["scanner"], "report_sha256": _md5(f"t{build}") * 2, "findings": sum(f["scanner"] == "trivy" for f in findings)})
        scanners.append({**coverage["scanner"], "report_sha256": _md5(f"c{build}") * 2})
        if repo.sonar:
            sonar = self.sonar[repo.sonar]
            metrics["sonarqube"] = sonar["metrics"]
            if "quality_gate" in sonar["metrics"] and rng.random() < 0.7:
                metrics["sonarqube"] = {**sonar["metrics"], "quality_gate": {**sonar["metrics"]["quality_gate"], "status": "OK"}}
            scanners.append({**sonar["scanner"], "report_sha256": _md5(f"s{build}") * 2})
        return metrics, scanners

    def summary(self, fkey: Any, findings: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        from gate.decisions.record import summarize

        found = self._summaries.get(fkey)
        return found if found is not None else self._summaries.remember(fkey, summarize(findings))

    def moment(self, i: int) -> datetime:
        """When decision ``i`` is made: spread over the past year in append order."""
        return FIRST + timedelta(days=365) * (i / max(self.count, 1))

    def draw(self, rng: random.Random, i: int) -> int:
        """The build decision ``i`` is about: mostly recent builds, as CI re-evaluates them across environments."""
        current = int(i * self.builds / max(self.count, 1))
        while True:
            build = max(0, current - int(rng.expovariate(1 / 25)))
            if not self.repo(build).large or rng.random() < 0.1:
                return build


FIRST = datetime(2025, 12, 1, tzinfo=UTC)


def rfc3339_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def decisions(corpus: Corpus, start: int = 0) -> Iterator[Any]:
    """COUNT decisions in append order (from record ``start``, to resume), built as gate.evaluation builds them."""
    from gate.decisions.record import Decision, Outcome, PolicyInfo, new_decision_id, sha256_digest

    rng = random.Random(corpus.seed + start)
    envs, weights = [e for e, _ in ENV_WEIGHTS], [w for _, w in ENV_WEIGHTS]
    for i in range(start, corpus.count):
        moment = corpus.moment(i)
        now = rfc3339_text(moment)
        build = corpus.draw(rng, i)
        repo = corpus.repo(build)
        env = rng.choices(envs[:3] if repo.kind == "code" else envs, weights[:3] if repo.kind == "code" else weights)[0]
        fkey, findings = corpus.findings(build)
        metrics, scanners = corpus.metrics(build, findings)
        artifact = {"image": repo.image, "digest": corpus.digest(build), "tag": f"1.{build // REPOSITORIES}.0"}
        context = {
            "git_commit": hashlib.sha1(f"{build}".encode()).hexdigest(),
            "pipeline_url": f"https://ci.example.com/{repo.image.split('/', 1)[1]}/-/pipelines/{1_000_000 + i}",
            "actor": "ci-bot",
        }
        data = corpus.data(repo.team, moment.month, moment)
        policy_input = {
            "schema_version": 1, "gate_version": "0.1.0", "artifact": artifact, "context": context,
            "findings": findings, "metrics": metrics, "scanners": scanners, "environment": env, "now": now,
        }
        violations, warnings, waivers = corpus.judged(build, env, fkey, findings, metrics, data, repo.image, now)
        error = rng.random() < 0.002
        revision, bundle_digest = BUNDLES[min(len(BUNDLES) - 1, i * len(BUNDLES) // max(corpus.count, 1))]
        yield Decision(
            decision_id=new_decision_id(int(moment.timestamp() * 1e9)),
            timestamp=now,
            outcome=Outcome.ERROR if error else Outcome.DENY if violations else Outcome.ALLOW,
            environment=env,
            artifact=artifact,
            violations=() if error else violations,
            warnings=() if error else warnings,
            waivers=() if error else waivers,
            summary=corpus.summary(fkey, findings),
            data=data,
            policy=PolicyInfo(bundle_digest, "embedded", "regorus 0.13.0", revision, "policies"),
            input_digest=sha256_digest(policy_input),
            input=policy_input,
            scanners=tuple({k: s[k] for k in ("name", "version", "report_sha256")} for s in scanners),
            context=context,
            error="policy evaluation timed out after 10 s (GATE_POLICY_TIMEOUT)" if error else None,
        )


# --- measuring ----------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed_queries(name: str, run: Callable[[str], int], keys: list[str]) -> dict[str, Any]:
    """Median/p95 latency (ms) of ``run(key)`` over ``keys`` (after two warm-up calls)."""
    for key in keys[:2]:
        run(key)
    samples, rows = [], 0
    for key in keys:
        t = time.perf_counter()
        rows += run(key)
        samples.append((time.perf_counter() - t) * 1000)
    return {
        "what": name,
        "n": len(samples),
        "median_ms": statistics.median(samples),
        "p95_ms": percentile(samples, 0.95),
        "max_ms": max(samples),
        "rows_avg": rows / len(samples),
    }


def cli(argv: list[str], env: dict[str, str], runs: int = 3) -> tuple[float, int, str]:
    """Median wall seconds of ``gate ARGV`` as a fresh process; its exit code and stderr's last line."""
    times, code, err = [], 0, ""
    for _ in range(runs):
        t = time.perf_counter()
        done = subprocess.run([GATE, *argv], env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - t)
        code, err = done.returncode, (done.stderr.strip().splitlines() or [""])[-1]
    return statistics.median(times), code, err


@dataclass
class Result:
    store: str
    figures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, name: str, value: str) -> None:
        self.figures.append((name, value))
        print(f"  {name:<42} {value}", flush=True)


def commit_ceiling(folder: Path) -> float:
    """Durable commits/s a SQLite file in ``folder`` manages (WAL, synchronous=FULL): the disk's fsync rate."""
    import sqlite3

    path = folder / "fsync-probe.db"
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("pragma journal_mode=wal")
        db.execute("create table if not exists probe (x blob)")
        t = time.perf_counter()
        for _ in range(200):
            db.execute("begin immediate")
            db.execute("insert into probe values (?)", (os.urandom(2000),))
            db.execute("commit")
        return 200 / (time.perf_counter() - t)
    finally:
        db.close()
        for p in folder.glob("fsync-probe.db*"):
            p.unlink()


def fill(url: str, corpus: Corpus, signer: Any, result: Result, profile: bool, synchronous: str = "full") -> None:
    from gate.decisions.store import open_store

    store = open_store(url)
    try:
        if url.startswith("sqlite://"):
            ceiling = commit_ceiling(Path(url.removeprefix("sqlite://")).parent)
            result.add("this disk: durable SQLite commits", f"{ceiling:,.0f}/s (WAL, synchronous=FULL, 2 kB each)")
            if synchronous != "full":
                store._db.execute(f"pragma synchronous={synchronous}")  # type: ignore[attr-defined]
        have = store.last_seq()
        if have >= corpus.count:
            result.add("insert", f"skipped: the log already holds {have:,} records (--reuse)")
            return
        if have:
            print(f"  resuming after record {have:,}", flush=True)
        append_s = build_s = 0.0
        wall = time.perf_counter()
        profiler = cProfile.Profile() if profile else None
        last_report = wall
        generator = decisions(corpus, start=have)
        n = 0
        while True:
            t0 = time.perf_counter()
            decision = next(generator, None)
            t1 = time.perf_counter()
            if decision is None:
                break
            build_s += t1 - t0
            if profiler and n < 20_000:
                profiler.enable()
                store.append(decision, signer)
                profiler.disable()
            else:
                store.append(decision, signer)
            append_s += time.perf_counter() - t1
            n += 1
            if time.perf_counter() - last_report > 30:
                last_report = time.perf_counter()
                print(f"    {have + n:,} records, {n / append_s:,.0f}/s in append", flush=True)
        wall = time.perf_counter() - wall
        result.add("load average (1 min) at the end of the fill", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        result.add("insert through append (one writer)", f"{n / append_s:,.0f} records/s ({n:,} in {append_s:,.1f} s)")
        result.add("  wall rate incl. building decisions", f"{n / wall:,.0f} records/s (building: {build_s:,.1f} s)")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            print("  profile of the first 20,000 appends (tottime):")
            print("\n".join("    " + line for line in out.getvalue().splitlines()[4:32]))
    finally:
        store.close()


def measure(
    url: str, corpus: Corpus, env: dict[str, str], result: Result, queries: int, replay_n: int, profile: bool = False
) -> None:
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.store import open_store

    rng = random.Random(7)
    fields = DecisionQuery.__dataclass_fields__
    #: decisions list reads records without their input documents, where the store can
    listing = {"with_input": False} if "with_input" in fields else {}
    store = open_store(url)
    try:
        def run(**filters: Any) -> Callable[[str], int]:
            def query(value: str) -> int:
                args = {k: (value if v is None else v) for k, v in filters.items()}
                return len(list(store.query(DecisionQuery(**args, **listing, limit=50))))
            return query

        digests = [corpus.digest(rng.randrange(corpus.builds)) for _ in range(queries)]
        juice = [f for f in corpus.trivy[TRIVY_JUICE]["findings"] if f["kind"] == "vulnerability"]
        common = sorted({f["rule"] for f in juice if f["severity"] in ("critical", "high")})[:20]
        key, findings = corpus.findings(corpus.builds - 40)
        rare_ids = [f["id"] for f in findings] or ["0" * 32]
        checks = [
            ("list --digest (limit 50)", run(digest=None), digests),
            ("list --digest --env prod (limit 50)", run(digest=None, environment="prod"), digests[: queries // 2]),
            ("list --rule <common CVE> (limit 50)", run(rule=None), [rng.choice(common) for _ in range(queries // 2)]),
            ("list --rule coverage.line_rate (limit 50)", run(rule=None), ["coverage.line_rate"] * 20),
        ]
        if "finding" in fields:
            checks += [
                ("list --finding <common CVE, any case> (limit 50)", run(finding=None),
                 [rng.choice(common).lower() for _ in range(queries // 2)]),
                ("list --finding <one build's finding id> (limit 50)", run(finding=None),
                 [rng.choice(rare_ids) for _ in range(queries // 4)]),
                ("list --finding <a secret rule> (limit 50)", run(finding=None), ["private-key"] * 20),
                ("list --finding <no such CVE> (limit 50)", run(finding=None), ["CVE-1999-0001"] * 20),
                ("list --finding <common CVE> --env prod (limit 50)", run(finding=None, environment="prod"),
                 [rng.choice(common) for _ in range(queries // 4)]),
            ]
        else:
            result.add("list --finding", "not measured: DecisionQuery has no finding filter yet")
        slowest: tuple[float, str, Callable[[str], int], list[str]] = (0.0, "", run(), [])
        for name, query, keys in checks:
            q = timed_queries(name, query, keys)
            result.add(
                name,
                f"median {q['median_ms']:.2f} ms, p95 {q['p95_ms']:.2f} ms, max {q['max_ms']:.1f} ms "
                f"({q['n']} queries, {q['rows_avg']:.1f} rows each)",
            )
            slowest = max(slowest, (q["p95_ms"], name, query, keys), key=lambda s: s[0])
        if profile and slowest[3]:
            profiler = cProfile.Profile()
            profiler.enable()
            for key in slowest[3]:
                slowest[2](key)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
            print(f"  profile of the slowest listing, {slowest[1]} (tottime):")
            print("\n".join("    " + line for line in out.getvalue().splitlines()[4:24]))
        t = time.perf_counter()
        everything = sum(1 for _ in store.query(DecisionQuery(**listing, limit=100_000)))
        s = time.perf_counter() - t
        result.add("list the newest 100,000 (query, decode)", f"{everything / s:,.0f} records/s ({everything:,} in {s:,.1f} s)")
        t = time.perf_counter()
        inflated = sum(1 for _ in store.query(DecisionQuery(limit=5_000)))
        s = time.perf_counter() - t
        result.add("newest 5,000 with their whole input", f"{inflated / s:,.0f} records/s ({inflated:,} in {s:,.1f} s)")
    finally:
        store.close()

    cold = [
        (["--version"], "cold process: gate --version (baseline)"),
        (["decisions", "list", "--digest", digests[0], "--limit", "50", "--format", "json"], "cold process: gate decisions list --digest"),
        (["decisions", "list", "--rule", common[0], "--limit", "50", "--format", "json"], "cold process: gate decisions list --rule"),
    ]
    if "finding" in fields:
        cold.append((["decisions", "list", "--finding", common[0].lower(), "--limit", "50", "--format", "json"],
                     "cold process: gate decisions list --finding"))
    for argv, label in cold:
        seconds, code, err = cli(argv, env)
        note = "" if code == 0 else f" (exit {code}: {err})"
        result.add(label, f"{seconds * 1000:,.0f} ms{note}")

    result.add("load average (1 min) before verify", f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    verify_rates(url, corpus.count, env, result)
    if replay_n:
        replay_rate(corpus, replay_n, env, result)


def verify_rates(url: str, count: int, env: dict[str, str], result: Result) -> None:
    """``gate decisions verify`` as a process: plain, then making a signed checkpoint, then after it,
    and ``--since-head`` over the newest 10,000 records (where this gate has them)."""
    def verify(label: str, *extra: str) -> None:
        seconds, code, err = cli(["decisions", "verify", *extra], env, runs=1)
        note = "" if code == 0 else f" (exit {code}: {err})"
        result.add(label, f"{seconds:,.1f} s = {count / seconds:,.0f} records/s{note}")

    verify("gate decisions verify (process)")
    options = subprocess.run([GATE, "decisions", "verify", "--help"], env=env, capture_output=True, text=True).stdout
    if "--checkpoint" in options:
        verify("gate decisions verify --checkpoint (makes one)", "--checkpoint")
        verify("gate decisions verify (after a checkpoint)")
    else:
        result.add("verify with a checkpoint", "not measured: gate decisions verify has no --checkpoint yet")
    if "--since-head" in options and count > 10_000:
        held = record_hash_at(url, count - 10_000)
        seconds, code, err = cli(["decisions", "verify", "--since-head", held], env, runs=1)
        note = "" if code == 0 else f" (exit {code}: {err})"
        result.add("gate decisions verify --since-head (10,000 new)", f"{seconds:,.2f} s = {10_000 / seconds:,.0f} records/s{note}")


def record_hash_at(url: str, seq: int) -> str:
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("select hash from decisions where seq = %s", (seq,)).fetchone()
    else:
        import sqlite3

        db = sqlite3.connect(url.removeprefix("sqlite://"))
        row = db.execute("select hash from decisions where seq = ?", (seq,)).fetchone()
        db.close()
    return str(row[0])


def replay_rate(corpus: Corpus, n: int, env: dict[str, str], result: Result) -> None:
    """``gate decisions replay`` as a process over the newest ~``n`` decisions (those since a time)."""
    since = rfc3339_text(corpus.moment(max(0, corpus.count - n)))
    t = time.perf_counter()
    done = subprocess.run(
        [GATE, "decisions", "replay", "--since", since, "--policy", str(ROOT / "policies"), "--format", "json"],
        env=env, capture_output=True, text=True, check=False,
    )
    s = time.perf_counter() - t
    if done.returncode != 0:
        result.add(f"replay newest ~{n:,} under policies/", f"exit {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}")
        return
    report = json.loads(done.stdout)
    replayed = int(report.get("replayed", 0))
    result.add(
        f"replay newest ~{n:,} under policies/ (process)",
        f"{replayed / s:,.0f} records/s ({replayed:,} in {s:,.1f} s; {report.get('unchanged')} unchanged, "
        f"{report.get('allow_to_deny')} allow→deny, {report.get('deny_to_allow')} deny→allow, {report.get('errors')} errors)",
    )


#: gate's tables, for their size on PostgreSQL (whatever of them exist)
TABLES = (
    "decisions", "decision_rules", "decision_waivers", "documents", "decision_documents", "document_findings",
    "checkpoints", "events", "event_decisions", "decision_log_head",
)


def size_of(url: str, count: int, result: Result) -> int:
    """Bytes the log takes on disk (SQLite: the file after a WAL checkpoint; PostgreSQL: gate's
    tables with their indexes and TOAST), per table where the database can tell."""
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("vacuum analyze")
            rows = conn.execute(
                "select c.relname, pg_total_relation_size(c.oid) from pg_class c join pg_namespace n on n.oid = c.relnamespace"
                " where c.relkind = 'r' and n.nspname = current_schema() and c.relname = any(%s) order by 2 desc",
                (list(TABLES),),
            ).fetchall()
        total = sum(int(size) for _, size in rows)
        detail = ", ".join(f"{name} {size / 2**20:,.1f}" for name, size in rows)
        result.add("size (pg_total_relation_size of gate's tables)", f"{total / 2**20:,.0f} MiB = {total / max(count, 1):,.0f} B/decision ({detail} MiB)")
        return total
    import sqlite3

    path = Path(url.removeprefix("sqlite://"))
    db = sqlite3.connect(path)
    db.execute("pragma wal_checkpoint(truncate)")
    try:
        rows = db.execute("select name, sum(pgsize) from dbstat group by name order by 2 desc").fetchall()
    except sqlite3.Error:
        rows = []
    db.close()
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    detail = ", ".join(f"{name} {size / 2**20:,.1f}" for name, size in rows[:12])
    result.add("size on disk (SQLite file after checkpoint)", f"{total / 2**20:,.0f} MiB = {total / max(count, 1):,.0f} B/decision ({detail} MiB)")
    return total


# --- stores -------------------------------------------------------------------------------------


def start_postgres(durable: bool) -> tuple[Any, str]:
    """A throwaway PostgreSQL 15 cluster (tests/pg.py) and the URL of a fresh database on it."""
    from tests import pg

    if not durable:
        cluster = pg.start_cluster()
    else:
        root = Path(tempfile.mkdtemp(prefix="gate-pg-bench-"))
        cluster = pg.PgCluster(root)
        cluster.init()
        cluster.port = pg.free_port()
        options = f"-p {cluster.port} -c listen_addresses=127.0.0.1 -k {root}"
        done = cluster._run(str(pg.BIN / "pg_ctl"), "-D", str(cluster.data), "-l", str(cluster.log), "-w", "-o", options, "start")
        if done.returncode != 0:
            raise SystemExit(f"pg_ctl start failed: {done.stderr or done.stdout}")
    import psycopg

    with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
        conn.execute("create database bench")
    return cluster, cluster.url("bench")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1_000_000, help="decisions per store (default 1,000,000)")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--dir", help="folder for the SQLite file and keys (default: a temp folder, removed unless --keep)")
    parser.add_argument("--keep", action="store_true", help="keep the SQLite file and keys afterwards")
    parser.add_argument("--reuse", action="store_true", help="with --dir: reuse (or resume filling) an existing SQLite log")
    parser.add_argument("--queries", type=int, default=400, help="queries per latency figure (default 400)")
    parser.add_argument("--replay", type=int, default=1000, help="replay this many newest decisions (0: skip)")
    parser.add_argument("--no-sign", action="store_true", help="append unsigned (signer None)")
    parser.add_argument("--profile", action="store_true", help="profile the first 20,000 appends (cProfile)")
    parser.add_argument(
        "--sqlite-synchronous", choices=["full", "normal"], default="full",
        help="append with this SQLite synchronous setting (gate's is full: an fsync per commit; normal: as the "
        "PostgreSQL cluster runs, without a disk flush per commit)",
    )
    parser.add_argument("--pg-durable", action="store_true", help="PostgreSQL with fsync and synchronous_commit on")
    args = parser.parse_args()

    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="gate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ}
    signer = None
    if not args.no_sign:
        from gate.decisions.signing import generate_keypair

        private, public = work / "gate-signing.pem", work / "gate-signing.pub.pem"
        if not private.exists():
            generate_keypair(work)
        os.environ["GATE_SIGNING_KEY"] = env["GATE_SIGNING_KEY"] = str(private)
        os.environ["GATE_TRUSTED_KEYS"] = env["GATE_TRUSTED_KEYS"] = str(public)
        from gate.decisions.signing import load_signer

        signer = load_signer()
    env["XDG_STATE_HOME"] = str(work / "state")  # never the user's own log or key
    corpus = Corpus(args.count)
    print(
        f"decision log benchmark: {args.count:,} decisions per store, {corpus.builds:,} image digests of "
        f"{REPOSITORIES} repositories, {len(ENV_WEIGHTS)} environments, "
        f"{'signed (Ed25519, ' + signer.key_id + ')' if signer else 'unsigned'}; python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    results = []
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    try:
        for name in stores:
            result = Result(name)
            results.append(result)
            cluster = None
            if name == "sqlite":
                path = work / "decisions.db"
                if not args.reuse:
                    for p in work.glob("decisions.db*"):
                        p.unlink()
                url = f"sqlite://{path}"
                print(f"\nSQLite {path}", flush=True)
            else:
                cluster, url = start_postgres(args.pg_durable)
                print(
                    f"\nPostgreSQL 15 throwaway cluster {cluster.root} port {cluster.port}"
                    f" ({'durable' if args.pg_durable else 'fsync off, as the tests run it'})",
                    flush=True,
                )
            env["GATE_DECISION_STORE"] = url
            try:
                fill(url, corpus, signer, result, args.profile, args.sqlite_synchronous)
                size_of(url, args.count, result)
                measure(url, corpus, env, result, args.queries, args.replay, args.profile)
            finally:
                if cluster is not None:
                    from tests import pg

                    pg.stop_cluster(cluster)
    finally:
        if not args.dir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\nsummary")
    for result in results:
        print(f"  {result.store}")
        for name, value in result.figures:
            print(f"    {name:<42} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
