"""Fixtures of the store tests: every test of ``store`` runs on SQLite, memory and PostgreSQL.

PostgreSQL is real: the ``postgres`` and ``own_postgres`` fixtures of ``tests/conftest.py``
(``CSFLOW_TEST_POSTGRES``, or a server started from Debian's binaries; under ``CI=true`` a
missing server fails the tests, never skips them).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from services.postgres import PostgresHost

from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.store.memory import MemoryStore

KINDS = ("sqlite", "memory", "postgresql")


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
