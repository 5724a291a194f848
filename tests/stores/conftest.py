"""Fixtures of the store tests: every test of ``store`` runs on SQLite, memory and PostgreSQL.

PostgreSQL is real: ``CSFLOW_TEST_POSTGRES`` (a URL of a server whose databases the tests may
create and drop) when it is set, else a server started for the session from Debian's binaries
(``services/postgres.py``). With neither, the PostgreSQL tests skip, saying why, except under
``CI=true``, where they fail: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from services.postgres import ENV, PostgresServer, create_database, drop_database, why_not

from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.store.memory import MemoryStore

KINDS = ("sqlite", "memory", "postgresql")


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is needed under CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


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


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHost]:
    url = os.environ.get(ENV)
    if url:
        yield PostgresHost(url)
        return
    problem = why_not()
    if problem is not None:
        unavailable(problem)
    with PostgresServer() as server:
        yield PostgresHost(server.url())


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start: never the session's."""
    problem = why_not()
    if problem is not None:
        unavailable(f"{problem}: this test stops and starts a server of its own")
    with PostgresServer() as server:
        yield server


@dataclass
class Backing:
    """One store's backing (a file, a database, a process's memory) and the stores opened on
    it: ``open()`` gives another store object on the same backing, as another process has."""

    kind: str
    location: Any = None
    opened: list[Any] = field(default_factory=list)

    def open(self, **options: Any) -> Any:
        if self.kind == "memory":
            if not self.opened:  # memory is one process's: every "other" store is this one
                self.opened.append(MemoryStore(**options))
            return self.opened[0]
        if self.kind == "sqlite":
            store: Any = SQLiteStore(self.location, **options)
        else:
            from csflow.adapters.postgres_store import PostgresStore

            store = PostgresStore(self.location, **options)
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=KINDS)
def backing(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backing]:
    kind = request.param
    if kind == "postgresql":
        host: PostgresHost = request.getfixturevalue("postgres")
        found = Backing(kind, host.database())
    else:
        found = Backing(kind, tmp_path / "runs.sqlite3" if kind == "sqlite" else None)
    yield found
    found.close()
    if kind == "postgresql":
        host.drop_all()


@pytest.fixture
def store(backing: Backing) -> Any:
    return backing.open()
