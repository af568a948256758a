"""A throwaway PostgreSQL 15 cluster for tests (recipe: ../shared/REAL-COMPONENTS.md section 6).

initdb into a fresh temp folder owned by ``postgres`` (initdb refuses to run as root), trust auth,
listening on 127.0.0.1 at a free port with its unix socket in the same folder, durability off
(fsync, synchronous_commit, full_page_writes) because the cluster dies with the test session.
Nothing outside the temp folder is touched; the system cluster stays down.

Used by the ``pg_server`` / ``pg_store_url`` / ``store_url`` fixtures in tests/conftest.py. A cluster
that cannot start is a test failure with initdb's or the server log's own words — never a skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(os.environ.get("GATE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: the OS user that owns and runs the cluster when the tests run as root
OS_USER = "postgres"


class PgClusterError(RuntimeError):
    """The throwaway cluster could not be created or started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    """One running throwaway cluster; ``url`` connects as the ``postgres`` superuser to database ``postgres``."""

    root: Path
    port: int = 0
    as_root: bool = field(default_factory=lambda: os.geteuid() == 0)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in argv]
        if self.as_root:
            command = ["runuser", "-u", OS_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False)

    def init(self) -> None:
        if not (BIN / "initdb").exists():
            raise PgClusterError(f"{BIN / 'initdb'} not found: install Debian package postgresql-15")
        if self.as_root:
            shutil.chown(self.root, OS_USER, OS_USER)
        done = self._run(
            BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
            "--no-sync",
        )
        if done.returncode != 0:
            raise PgClusterError(f"initdb failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}")

    def start(self, attempts: int = 5) -> None:
        """pg_ctl -w start on a free port; another free port if that one was taken meanwhile."""
        last = ""
        for _ in range(attempts):
            self.port = free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
            )
            done = self._run(BIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "-o", options, "start")
            if done.returncode == 0:
                return
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            last = f"pg_ctl start failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}\n{log}"
            if "Address already in use" not in log and "could not bind" not in log:
                break
        raise PgClusterError(last)

    def stop(self) -> None:
        if self.data.exists():
            self._run(BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop", timeout=60)


def create_database(base_url: str) -> str:
    """A fresh empty database ``t_<hex>`` on the cluster at ``base_url`` (no database part); returns its URL."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{base_url}/postgres", autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return f"{base_url}/{name}"


def drop_database(url: str) -> None:
    """Drop the database of ``url``, closing any connection a test left open."""
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def start_cluster() -> PgCluster:
    """initdb and start a cluster in a new temp folder (removed again if this fails)."""
    root = Path(tempfile.mkdtemp(prefix="gate-pg-"))
    cluster = PgCluster(root)
    try:
        cluster.init()
        cluster.start()
    except BaseException:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
        raise
    return cluster


def stop_cluster(cluster: PgCluster) -> None:
    """pg_ctl -m fast stop, then remove the temp folder."""
    try:
        cluster.stop()
    finally:
        shutil.rmtree(cluster.root, ignore_errors=True)
