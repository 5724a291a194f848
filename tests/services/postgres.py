"""A real PostgreSQL for the tests and the bench: Debian's binaries, a cluster of its own.

>>> with PostgresServer() as server:          # initdb, then pg_ctl start on a free port
...     url = server.create_database("runs")  # postgresql://postgres@127.0.0.1:PORT/runs
...     server.stop(); server.start()         # the same cluster, the same port

The cluster lives in a temporary folder owned by the ``postgres`` user, since PostgreSQL will
not run as root (tests run as root in CI: ``runuser -u postgres --``); as anyone else it runs
as that user. It listens on 127.0.0.1 only, with trust authentication, and its socket in its
own folder. ``fsync=False`` (the tests' default) trades durability across a power cut, which
no test checks, for speed; the bench keeps PostgreSQL's defaults.

Self-contained (no import of ``support``), so that ``bench/store.py`` uses it too.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

ENV = "CSFLOW_TEST_POSTGRES"  # a URL of a server to use instead of starting one


def binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/N/bin`` with initdb and pg_ctl, or what is on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path and shutil.which("pg_ctl") else None


def why_not() -> str | None:
    """Why no server can be started here, or None when one can."""
    if binaries() is None:
        return "no PostgreSQL binaries (apt-get install postgresql, or set CSFLOW_TEST_POSTGRES)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser to start PostgreSQL as the postgres user"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A PostgreSQL cluster for the length of a ``with`` block (or ``start()``/``close()``)."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.bin = binaries()
        if self.bin is None:
            raise RuntimeError(why_not())
        self.fsync = fsync
        self.port = _free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="csflow-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._initialised = False
        self.running = False

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(args[:1])} failed:\n{done.stdout}{done.stderr}{log}")

    def start(self) -> PostgresServer:
        if not self._initialised:
            if os.geteuid() == 0:
                shutil.chown(self.folder, "postgres", "postgres")
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
            self._initialised = True
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
            f" -c fsync={'on' if self.fsync else 'off'} -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server (fast: sessions are cut, as when a database goes away)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")
            self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database's URL."""
        return create_database(self.url(), name)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute(statement)  # type: ignore[arg-type]


def count_runs(url: str, run_ids: list[str]) -> int:
    """How many of ``run_ids`` the database of ``url`` has, read by a session of its own, as
    another machine would read it."""
    import psycopg

    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE id = ANY(%s)", (run_ids,)).fetchone()
    return 0 if row is None else int(row[0])


def create_database(admin_url: str, name: str | None = None) -> str:
    """Make a database on the server of ``admin_url``; the URL of the new one."""
    name = name or f"t_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


def drop_database(admin_url: str, url: str) -> None:
    name = url.rpartition("/")[2].split("?")[0]
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PostgresHost:
    """Where the tests' databases are made: ``database()`` is a new, empty one's URL."""

    admin_url: str
    made: list[str] = field(default_factory=list)

    def database(self) -> str:
        url = create_database(self.admin_url)
        self.made.append(url)
        return url

    def drop_all(self) -> None:
        for url in self.made:
            drop_database(self.admin_url, url)
        self.made.clear()
