"""Benchmark: the decision log with COUNT decisions (default 1,000,000) in each store.

    python benchmarks/decision_log.py [--count 1000000] [--store sqlite|postgres|both] [--dir DIR]
    python benchmarks/decision_log.py --count 20000          # a smoke run, a minute or so

Records are realistic but small: a few findings in the input (trivy vulnerabilities with a package,
a coverage metric), 0-3 violations, about 5 % with a waiver, about 50,000 distinct digests over
500 repositories (scaled down with --count: about 20 decisions per digest), 5 environments and
400 CVE rules drawn with a Zipf-like skew (a few CVEs are everywhere, most are rare). Timestamps
spread over the past year in append order. Each record is appended through the store's own
``append`` (the path ``gate evaluate`` takes: chain head read, hash, Ed25519 signature, insert with
index rows, commit per record), by one writer, signed with a fresh key (gate.decisions.signing).

Reported per store:

- insert rate: records/s through ``append`` (time inside ``append`` only; building the synthetic
  decisions is excluded and shown separately), and the wall rate;
- ``list --digest`` and ``list --rule`` latency: median and p95 of many ``store.query(...)`` calls
  with limit 50, consumed fully (rules: the most common CVEs, rare CVEs, a policy rule id), and
  once as a cold ``gate decisions list ... --format json`` process;
- ``verify``: the whole log through gate.decisions.verify (in process) and ``gate decisions
  verify`` (a process), in records/s;
- ``replay``: the newest --replay decisions re-decided under the shipped policies (records/s);
- database size on disk.

The PostgreSQL store runs on a throwaway PostgreSQL 15 cluster started as the tests start it
(tests/pg.py: initdb in a temp folder, trust auth, a free port, fsync/synchronous_commit/
full_page_writes off — so its insert rate does not include a disk flush per commit; the SQLite
store's does, WAL mode with synchronous=FULL as gate opens it). --pg-durable starts it with the
default durability settings instead.

Targets on this machine: list by digest under 20 ms, insert over 1,000/s, verify over 20,000 records/s.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import os
import pstats
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GATE = str(Path(sys.executable).with_name("gate"))

ENVIRONMENTS = ("dev", "test", "staging", "prod", "prod-eu")
#: environments where high (not only critical) vulnerabilities deny, as the shipped thresholds do for prod
STRICT = {"prod", "prod-eu"}
REPOSITORIES = 500
CVE_RULES = 400
WAIVERS = 200
POLICY_DIGESTS = (
    "sha256:" + hashlib.sha256(b"gate-policies-0.1.0").hexdigest(),
    "sha256:" + hashlib.sha256(b"gate-policies-0.2.0").hexdigest(),
)
SEVERITY_WEIGHTS = (("critical", 3), ("high", 10), ("medium", 30), ("low", 40), ("unknown", 2))


# --- synthetic decisions ------------------------------------------------------------------------


@dataclass
class Corpus:
    """Everything the generator draws from, reproducible from a seed."""

    count: int
    seed: int = 42
    digests: list[tuple[str, str, str]] = field(default_factory=list)  # (image, digest, tag)
    cves: list[str] = field(default_factory=list)
    cve_weights: list[float] = field(default_factory=list)
    _findings: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        n_digests = max(1, min(50_000, self.count // 20))
        repos = [f"registry.example.com/team-{i % 40:02d}/svc-{i:03d}" for i in range(REPOSITORIES)]
        for i in range(n_digests):
            digest = "sha256:" + hashlib.sha256(f"image-{self.seed}-{i}".encode()).hexdigest()
            self.digests.append((repos[i % REPOSITORIES], digest, f"1.{i // REPOSITORIES}.{rng.randrange(20)}"))
        self.cves = [f"CVE-{2019 + k % 6}-{10000 + k * 37}" for k in range(CVE_RULES)]
        self.cve_weights = [1 / (k + 1) ** 1.1 for k in range(CVE_RULES)]

    def findings(self, index: int) -> list[dict[str, Any]]:
        """The vulnerability findings of digest ``index`` (the same in every environment)."""
        cached = self._findings.get(index)
        if cached is not None:
            return cached
        rng = random.Random(self.seed * 1_000_003 + index)
        found = []
        for cve in sorted(set(rng.choices(self.cves, self.cve_weights, k=rng.choice((0, 1, 2, 3, 3, 4, 5, 6))))):
            severity = rng.choices([s for s, _ in SEVERITY_WEIGHTS], [w for _, w in SEVERITY_WEIGHTS])[0]
            pkg = f"lib{cve[-4:]}"
            version = f"{rng.randrange(1, 4)}.{rng.randrange(10)}.{rng.randrange(10)}"
            fixed = f"{version[:-1]}{int(version[-1]) + 1}" if rng.random() < 0.8 else None
            found.append(
                {
                    "id": hashlib.md5(f"{index}{cve}{pkg}".encode()).hexdigest(),
                    "scanner": "trivy",
                    "kind": "vulnerability",
                    "rule": cve,
                    "severity": severity,
                    "title": f"{pkg}: a flaw in the parser",
                    "message": f"{cve} in {pkg} {version}" + (f" (fixed in {fixed})" if fixed else ""),
                    "package": {"name": pkg, "version": version, "fixed_version": fixed, "type": "debian"},
                    "cvss": round(rng.uniform(2, 10), 1),
                }
            )
        self._findings[index] = found
        return found


def decisions(corpus: Corpus, start: int = 0) -> Iterator[Any]:
    """COUNT decisions in append order (from record ``start``, to resume), timestamps over the past year."""
    from gate.decisions.record import (
        AppliedWaiver,
        Decision,
        Outcome,
        PolicyInfo,
        Violation,
        new_decision_id,
        rfc3339,
        sha256_digest,
        summarize,
    )

    rng = random.Random(corpus.seed + start)
    first = datetime.now(UTC) - timedelta(days=365)
    step = timedelta(days=365) / max(corpus.count, 1)
    for i in range(start, corpus.count):
        moment = first + step * i
        index = rng.randrange(len(corpus.digests))
        image, digest, tag = corpus.digests[index]
        env = rng.choice(ENVIRONMENTS)
        findings = corpus.findings(index)
        line_rate = round(rng.uniform(0.45, 0.98), 4)
        policy_digest = POLICY_DIGESTS[0] if i < corpus.count * 0.6 else POLICY_DIGESTS[1]
        deny = {"critical", "high", "unknown"} if env in STRICT else {"critical"}
        violations = []
        waivers = []
        for f in findings:
            if f["severity"] not in deny:
                continue
            if rng.random() < 0.05:
                waivers.append(
                    AppliedWaiver(
                        id=f"W-{zlib.crc32(f['rule'].encode()) % WAIVERS:04d}",
                        rule=f["rule"],
                        expires=rfc3339(moment + timedelta(days=rng.randrange(1, 120))),
                        approved_by="secops@example.com",
                        reason="not reachable from the service's code paths",
                        finding_ids=(f["id"],),
                    )
                )
                continue
            violations.append(
                Violation(
                    rule="vulnerabilities.severity",
                    message=f"{f['severity']} vulnerability {f['rule']} in {f['package']['name']} {f['package']['version']}",
                    severity=f["severity"] if f["severity"] != "unknown" else "high",
                    finding_ids=(f["id"],),
                    package="gate.promotion.vulnerabilities",
                )
            )
        if line_rate < (0.8 if env in STRICT else 0.6):
            violations.append(
                Violation(
                    rule="coverage.line_rate",
                    message=f"line coverage {line_rate:.2%} is under the required minimum in {env}",
                    severity="medium",
                    package="gate.promotion.coverage",
                )
            )
        violations = violations[:3]
        context = {"git_commit": hashlib.sha1(f"{index}".encode()).hexdigest(), "pipeline_url": f"https://ci.example.com/p/{i}"}
        scanners = [
            {"name": "trivy", "version": "0.50.1", "plugin_version": "0.1.0", "format": "json", "report": "trivy.json",
             "report_sha256": hashlib.sha256(f"t{index}".encode()).hexdigest(), "findings": len(findings)},
            {"name": "coverage", "version": "7.8.0", "plugin_version": "0.1.0", "format": "coveragepy-json",
             "report": "coverage.json", "report_sha256": hashlib.sha256(f"c{i}".encode()).hexdigest(), "findings": 0},
        ]
        artifact = {"image": image, "digest": digest, "tag": tag}
        policy_input = {
            "schema_version": 1,
            "gate_version": "0.1.0",
            "artifact": artifact,
            "context": context,
            "findings": findings,
            "metrics": {"coverage": {"line_rate": line_rate, "lines_covered": int(line_rate * 4000), "lines_valid": 4000}},
            "scanners": scanners,
            "environment": env,
            "now": rfc3339(moment),
        }
        error = rng.random() < 0.002
        yield Decision(
            decision_id=new_decision_id(int(moment.timestamp() * 1e9)),
            timestamp=rfc3339(moment),
            outcome=Outcome.ERROR if error else Outcome.DENY if violations else Outcome.ALLOW,
            environment=env,
            artifact=artifact,
            violations=() if error else tuple(violations),
            warnings=(),
            waivers=() if error else tuple(waivers),
            summary=summarize(findings),
            policy=PolicyInfo(policy_digest, "embedded", "regorus 0.13.0", "gate-policies-0.1.0", "policies"),
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


def fill(url: str, corpus: Corpus, signer: Any, result: Result, profile: bool) -> None:
    from gate.decisions.store import open_store

    store = open_store(url)
    try:
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
        result.add("insert through append (one writer)", f"{n / append_s:,.0f} records/s ({n:,} in {append_s:,.1f} s)")
        result.add("  wall rate incl. building decisions", f"{n / wall:,.0f} records/s (building: {build_s:,.1f} s)")
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(18)
            print("  profile of the first 20,000 appends (tottime):")
            print("\n".join("    " + line for line in out.getvalue().splitlines()[4:32]))
    finally:
        store.close()


def measure(url: str, corpus: Corpus, env: dict[str, str], result: Result, queries: int, replay_n: int) -> None:
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.store import open_store

    rng = random.Random(7)
    store = open_store(url)
    try:
        def by_digest(d: str) -> int:
            return len(list(store.query(DecisionQuery(digest=d, limit=50))))

        def by_rule(r: str) -> int:
            return len(list(store.query(DecisionQuery(rule=r, limit=50))))

        def by_digest_env(d: str) -> int:
            return len(list(store.query(DecisionQuery(digest=d, environment="prod", limit=50))))

        digests = [rng.choice(corpus.digests)[1] for _ in range(queries)]
        common = corpus.cves[:10]
        rare = corpus.cves[-50:]
        for name, run, keys in (
            ("list --digest (limit 50)", by_digest, digests),
            ("list --digest --env prod (limit 50)", by_digest_env, digests[: queries // 2]),
            ("list --rule <common CVE> (limit 50)", by_rule, [rng.choice(common) for _ in range(queries // 2)]),
            ("list --rule <rare CVE> (limit 50)", by_rule, [rng.choice(rare) for _ in range(max(10, queries // 10))]),
            ("list --rule coverage.line_rate (limit 50)", by_rule, ["coverage.line_rate"] * 20),
        ):
            q = timed_queries(name, run, keys)
            result.add(
                name,
                f"median {q['median_ms']:.2f} ms, p95 {q['p95_ms']:.2f} ms, max {q['max_ms']:.1f} ms "
                f"({q['n']} queries, {q['rows_avg']:.1f} rows each)",
            )
        t = time.perf_counter()
        everything = sum(1 for _ in store.query(DecisionQuery()))
        s = time.perf_counter() - t
        result.add("stream every record (query, decode)", f"{everything / s:,.0f} records/s ({everything:,} in {s:,.1f} s)")
    finally:
        store.close()

    for argv, label in (
        (["--version"], "cold process: gate --version (baseline)"),
        (["decisions", "list", "--digest", digests[0], "--limit", "50", "--format", "json"], "cold process: gate decisions list --digest"),
        (["decisions", "list", "--rule", corpus.cves[0], "--limit", "50", "--format", "json"], "cold process: gate decisions list --rule"),
    ):
        seconds, code, err = cli(argv, env)
        note = "" if code == 0 else f" (exit {code}: {err})"
        result.add(label, f"{seconds * 1000:,.0f} ms{note}")

    verify_in_process(url, result)
    seconds, code, err = cli(["decisions", "verify"], env, runs=1)
    note = "" if code == 0 else f" (exit {code}: {err})"
    result.add("gate decisions verify (process)", f"{seconds:,.1f} s = {corpus.count / seconds:,.0f} records/s{note}")
    if replay_n:
        replay_rate(url, replay_n, result)


def verify_in_process(url: str, result: Result) -> None:
    """gate.decisions.verify over the whole log, in this process (signatures on worker threads)."""
    from gate.decisions.signing import load_trusted_keys
    from gate.decisions.store import open_store
    from gate.decisions.verify import verify_log

    store = open_store(url)
    try:
        t = time.perf_counter()
        report = verify_log(store, load_trusted_keys())
        s = time.perf_counter() - t
    finally:
        store.close()
    verdict = "intact" if report.ok else f"NOT intact: {report.problem}"
    result.add("verify (verify_log, in process)", f"{report.count / s:,.0f} records/s ({report.count:,} in {s:,.1f} s, {verdict})")


def replay_rate(url: str, n: int, result: Result) -> None:
    from gate.replay import replay
    from gate.decisions.interface import DecisionQuery
    from gate.decisions.store import open_store

    store = open_store(url)
    try:
        t = time.perf_counter()
        report = replay(store, DecisionQuery(limit=n), ROOT / "policies")
        s = time.perf_counter() - t
    finally:
        store.close()
    result.add(
        f"replay newest {n:,} under policies/",
        f"{report.replayed / s:,.0f} records/s ({report.replayed:,} in {s:,.1f} s; "
        f"{len(report.allow_to_deny)} allow→deny, {len(report.deny_to_allow)} deny→allow, {len(report.errors)} errors)",
    )


def size_of(url: str, result: Result) -> None:
    if url.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(url) as conn:
            row = conn.execute("select pg_database_size(current_database())").fetchone()
            total = int(row[0]) if row else 0
            tables = conn.execute(
                "select relname, pg_total_relation_size(oid) from pg_class where relkind = 'r' and relname like 'decision%'"
                " order by 2 desc"
            ).fetchall()
        detail = ", ".join(f"{name} {size / 2**20:,.0f} MiB" for name, size in tables)
        result.add("database size (pg_database_size)", f"{total / 2**20:,.0f} MiB ({detail})")
    else:
        import sqlite3

        path = Path(url.removeprefix("sqlite://"))
        db = sqlite3.connect(path)
        db.execute("pragma wal_checkpoint(truncate)")
        db.close()
        sizes = {p.name: p.stat().st_size for p in path.parent.glob(path.name + "*")}
        total = sum(sizes.values())
        detail = ", ".join(f"{name} {size / 2**20:,.1f} MiB" for name, size in sorted(sizes.items()))
        result.add("database size on disk", f"{total / 2**20:,.0f} MiB ({detail})")


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
        f"decision log benchmark: {args.count:,} decisions per store, {len(corpus.digests):,} digests, "
        f"{len(ENVIRONMENTS)} environments, {CVE_RULES} CVE rules, "
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
                fill(url, corpus, signer, result, args.profile)
                size_of(url, result)
                measure(url, corpus, env, result, args.queries, args.replay)
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
