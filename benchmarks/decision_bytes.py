"""Benchmark: bytes the decision log grows by per decision, through the real `gate evaluate`.

    python benchmarks/decision_bytes.py [--store sqlite|postgres|both] [--repeat 20] [--large 20000]

Each case runs `gate evaluate` (embedded engine, shipped policies, signed) as CI does, and measures
how much the log grows on disk: the SQLite file after a WAL checkpoint, or the sum of
pg_total_relation_size over gate's tables on a throwaway PostgreSQL 15 (tests/pg.py). Growth is
averaged over several decisions, as both databases grow in whole pages (4 KiB / 8 KiB).

- juice-shop: the real juice-shop Trivy report (185 findings) with coverage.py JSON and a SonarQube
  issues report, each decision a new input (each a rebuild: every package version differs, so
  nothing is shared with the decision before), in prod; target ≤ 20 KB per decision;
- juice-shop re-evaluated: the same reports, image and environment again (a CI retry), in prod and in
  dev (dev warns about high vulnerabilities instead of denying them); target ≤ 2 KB;
- large: a Trivy report of --large vulnerabilities (benchmarks/scan_trivy.py), new input each time,
  then re-evaluated; target ≤ 2 MB per new decision;
- small: coverage and a SonarQube quality gate, no image scan (the most common CI decision).

Also printed: the stored record (the row's JSON, without its input documents) of the last
decision of each case, and how much of it is violations and warnings.

Results (2026-12-07, code of 05:05 UTC; KB per decision; SQLite / PostgreSQL; target):
  juice-shop, new input (prod)        127.7 / 152.9     ≤ 20     MISS
  juice-shop re-evaluated (prod)       72.9 /  24.9     ≤ 2      MISS
  juice-shop re-evaluated (dev)        70.7 /  19.5     ≤ 2      MISS
  small, new image                      4.8 /   5.1
  small re-evaluated                    5.8 /   5.8     ≤ 2      MISS
  20,000 findings, new input (prod)  10,209 / 8,790     ≤ 2,000  MISS
  20,000 findings re-evaluated        7,010 /   759     ≤ 2      MISS
Why: the input documents themselves meet the figures (juice-shop's findings: 19.1 KB zstd; 20,000
findings: 741 KB), but (1) the record keeps violations and warnings inline: 64 KB on juice-shop in
prod (132 violations), 49 KB of warnings in dev, 7 MB on 20,000 findings — stored again on every
re-evaluation (PostgreSQL compresses the row with TOAST/pglz to ~13 KB; SQLite stores it raw);
(2) document_findings repeats the 71-character digest text in every row and its index: 35.5 KB
(SQLite) / 104 KB (PostgreSQL) per juice-shop findings document, 2.5 / 7.2 MB for 20,000 findings;
(3) decision_rules adds one row per CVE a violation names (79 on juice-shop: 4-8 KB per decision).
Violations as a zstd document would be 6.3 KB for juice-shop (shared by re-evaluations: same input,
data and bundle give the same violations) and the rest of the record 0.8 KB compressed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GATE = str(Path(sys.executable).with_name("gate"))
DATA = ROOT / "tests" / "data"
JUICE = DATA / "trivy" / "trivy-image-juice-shop-v12.10.2-many-vulns.json"
COVERAGE = DATA / "coverage" / "coveragepy-7.8.0-branch.json"
SONAR_ISSUES = DATA / "sonarqube" / "sonarqube-api-issues-search-real-server-anonymized.json"
SONAR_GATE = DATA / "sonarqube" / "sonarqube-api-qualitygates-project_status-example.json"
SMALL_COVERAGE = DATA / "coverage" / "cobertura-java-cobertura-1.9-maven-example.xml"
TABLES = ("decisions", "decision_rules", "decision_waivers", "documents", "decision_documents", "document_findings", "checkpoints")


def rebuilt(source: Path, target: Path, variant: int, vulns: int | None = None) -> Path:
    """``source`` as a rebuild would scan it: every installed version changed (so every finding is
    new); with ``vulns``, that many vulnerabilities (scan_trivy.make_report's way: real entries,
    distinct package names)."""
    report = json.loads(source.read_text())
    if vulns is not None:
        samples = [v for r in report["Results"] for v in r.get("Vulnerabilities") or []]
        items = []
        for i in range(vulns):
            v = copy.deepcopy(samples[i % len(samples)])
            v["PkgName"] = f"{v['PkgName']}-{i}"
            items.append(v)
        report["Results"] = [{"Target": "app", "Class": "lang-pkgs", "Type": "node-pkg", "Vulnerabilities": items}]
    for result in report.get("Results") or []:
        for v in result.get("Vulnerabilities") or []:
            v["InstalledVersion"] = f"{v.get('InstalledVersion', '0')}+build{variant}"
    target.write_text(json.dumps(report))
    return target


class Log:
    """A decision log and how big it is on disk."""

    def __init__(self, kind: str, work: Path) -> None:
        self.kind, self.cluster = kind, None
        if kind == "sqlite":
            work.mkdir(parents=True, exist_ok=True)
            self.path = work / "decisions.db"
            self.url = f"sqlite://{self.path}"
        else:
            from tests import pg

            self.cluster = pg.start_cluster()
            import psycopg

            with psycopg.connect(self.cluster.url("postgres"), autocommit=True) as conn:
                conn.execute("create database bytes")
            self.url = self.cluster.url("bytes")

    def size(self) -> tuple[int, dict[str, int]]:
        """Bytes on disk in all, and per table (SQLite: per table and index, from dbstat)."""
        if self.kind == "sqlite":
            db = sqlite3.connect(self.path)
            db.execute("pragma wal_checkpoint(truncate)")
            tables = dict(db.execute("select name, sum(pgsize) from dbstat group by name").fetchall())
            db.close()
            return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*")), tables
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("checkpoint")
            rows = conn.execute(
                "select c.relname, pg_total_relation_size(c.oid) from pg_class c"
                " join pg_namespace n on n.oid = c.relnamespace"
                " where c.relkind = 'r' and n.nspname = current_schema() and c.relname = any(%s)",
                (list(TABLES),),
            ).fetchall()
        tables = {name: int(size) for name, size in rows}
        return sum(tables.values()), tables

    def last_record(self) -> bytes:
        """The newest row's record column (the stored form: no input documents)."""
        if self.kind == "sqlite":
            db = sqlite3.connect(self.path)
            row = db.execute("select record from decisions order by seq desc limit 1").fetchone()
            db.close()
        else:
            import psycopg

            with psycopg.connect(self.url) as conn:
                row = conn.execute("select record from decisions order by seq desc limit 1").fetchone()
        value = row[0] if row else b""
        return value.encode() if isinstance(value, str) else bytes(value)

    def close(self) -> None:
        if self.cluster is not None:
            from tests import pg

            pg.stop_cluster(self.cluster)


def evaluate(env: dict[str, str], image: str, environment: str, reports: list[str]) -> None:
    argv = [GATE, "evaluate", "--policy", str(ROOT / "policies"), "--env", environment, "--image", image, "--format", "json",
            "--output", os.devnull]
    for report in reports:
        argv += ["--report", report]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"gate evaluate failed ({done.returncode}): {done.stderr.strip()}")


def growth(log: Log, runs: list[Callable[[], None]]) -> tuple[float, str]:
    """Mean bytes per decision over ``runs``, and where they went (the tables that grew most)."""
    before, tables_before = log.size()
    for run in runs:
        run()
    after, tables_after = log.size()
    grew = sorted(((size - tables_before.get(name, 0), name) for name, size in tables_after.items()), reverse=True)
    where = ", ".join(f"{name} {delta / len(runs) / 1000:,.1f}" for delta, name in grew[:5] if delta > 0)
    return (after - before) / len(runs), where


def record_split(record: bytes) -> str:
    body = json.loads(record)
    parts = {k: len(json.dumps(body.get(k), separators=(",", ":"))) for k in ("violations", "warnings")}
    return f"record {len(record) / 1000:,.1f} kB, of which violations {parts['violations'] / 1000:,.1f} kB, warnings {parts['warnings'] / 1000:,.1f} kB"


def run_store(kind: str, repeat: int, large: int, work: Path, env: dict[str, str]) -> list[tuple[str, str]]:
    log = Log(kind, work)
    env = {**env, "GATE_DECISION_STORE": log.url}
    figures: list[tuple[str, str]] = []

    def add(name: str, per: float, where: str, target: float | None, last: bytes) -> None:
        verdict = "" if target is None else ("  meets" if per <= target else f"  MISSES (target {target / 1000:,.0f} KB)")
        text = f"{per / 1000:,.1f} KB/decision{verdict}; by table (KB/decision): {where}; stored {record_split(last)}"
        figures.append((name, text))
        print(f"  {name:<44} {text}", flush=True)

    try:
        digest = lambda k: f"registry.example.com/shop/juice@sha256:{k:064x}"  # noqa: E731
        juice = [f"coverage={COVERAGE}", f"sonarqube={SONAR_ISSUES}"]
        evaluate(env, digest(1), "prod", [f"coverage={SMALL_COVERAGE}", f"sonarqube={SONAR_GATE}"])  # schema, key, first rows
        variants = [rebuilt(JUICE, work / f"juice-{k}.json", k) for k in range(max(3, repeat // 4))]
        per, rec = growth(log, [lambda k=k, r=r: evaluate(env, digest(100 + k), "prod", [f"trivy={r}", *juice]) for k, r in enumerate(variants)])
        add("juice-shop, new input (prod)", per, rec, 20_000, log.last_record())
        same = [f"trivy={variants[0]}", *juice]
        per, rec = growth(log, [lambda: evaluate(env, digest(100), "prod", same)] * repeat)
        add("juice-shop re-evaluated (prod)", per, rec, 2_000, log.last_record())
        evaluate(env, digest(100), "dev", same)
        per, rec = growth(log, [lambda: evaluate(env, digest(100), "dev", same)] * repeat)
        add("juice-shop re-evaluated (dev)", per, rec, 2_000, log.last_record())
        small = [f"coverage={SMALL_COVERAGE}", f"sonarqube={SONAR_GATE}"]
        per, rec = growth(log, [lambda k=k: evaluate(env, digest(200 + k), "staging", small) for k in range(repeat)])
        add("small (coverage + quality gate), new image", per, rec, None, log.last_record())
        per, rec = growth(log, [lambda: evaluate(env, digest(200), "staging", small)] * repeat)
        add("small re-evaluated", per, rec, 2_000, log.last_record())
        if large:
            big = [rebuilt(JUICE, work / f"large-{k}.json", k, vulns=large) for k in range(2)]
            per, rec = growth(log, [lambda k=k, r=r: evaluate(env, digest(300 + k), "prod", [f"trivy={r}", f"coverage={COVERAGE}"]) for k, r in enumerate(big)])
            add(f"{large:,} findings, new input (prod)", per, rec, 2_000_000, log.last_record())
            per, rec = growth(log, [lambda: evaluate(env, digest(300), "prod", [f"trivy={big[0]}", f"coverage={COVERAGE}"])] * 3)
            add(f"{large:,} findings re-evaluated (prod)", per, rec, 2_000, log.last_record())
    finally:
        log.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=20, help="decisions per re-evaluation figure (default 20)")
    parser.add_argument("--large", type=int, default=20_000, help="vulnerabilities in the large report (0: skip)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gate-bytes-"))
    try:
        from gate.decisions.signing import generate_keypair

        generate_keypair(work)
        env = {
            **os.environ,
            "GATE_SIGNING_KEY": str(work / "gate-signing.pem"),
            "GATE_TRUSTED_KEYS": str(work / "gate-signing.pub.pem"),
            "XDG_STATE_HOME": str(work / "state"),
        }
        results = {}
        for kind in ("sqlite", "postgres") if args.store == "both" else (args.store,):
            print(f"\n{kind}", flush=True)
            results[kind] = run_store(kind, args.repeat, args.large, work / kind if kind == "sqlite" else work, env)
        print("\nsummary")
        for kind, figures in results.items():
            print(f"  {kind}")
            for name, text in figures:
                print(f"    {name:<44} {text}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
