"""A PostgreSQL cluster of one test's own: ``initdb`` into a fresh directory, ``pg_ctl`` to
start it on a free loopback port and to stop it (fast or immediate) while the hub runs on it,
and everything removed afterwards. The hub's schema comes from its migrations and its data
from a ``manage.py shell`` run against the cluster (docs/reliability.md).

PostgreSQL refuses to run as root: as root the cluster belongs to, and its commands run as,
the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg

from tests.support.processes import ROOT, free_port

DATABASE = "aanspraak"


class OwnPostgres:
    """``up()`` starts the server and waits until it accepts connections; ``down(mode)``
    stops it (``fast``: sessions ended, checkpoint; ``immediate``: no checkpoint, crash
    recovery at the next start); ``remove()`` stops it if it runs and deletes the cluster."""

    def __init__(self):
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="aanspraak-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/{DATABASE}"
        self._user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*self._user, *args], capture_output=True, text=True, timeout=120, check=check
        )

    def create(self) -> OwnPostgres:
        """initdb (trust on loopback, no fsync: a test's cluster), start, create the
        database."""
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        self.up()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{DATABASE}"')
        return self

    def dsn(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname} connect_timeout=5"

    def up(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c max_connections=100"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "-t", "60", "start")  # fmt: skip

    def down(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        status = self._run("pg_ctl", "-D", str(self.data), "status", check=False)
        return status.returncode == 0

    def remove(self) -> None:
        with contextlib.suppress(Exception):
            if self.data.exists() and self.running():
                self.down("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def manage(self, env: dict, *args: str, stdin: str | None = None) -> str:
        """``manage.py`` against this cluster; its output, or CalledProcessError."""
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env={**env, "DATABASE_URL": self.url},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.dsn()) as conn:
            return conn.execute(sql, params).fetchall()
