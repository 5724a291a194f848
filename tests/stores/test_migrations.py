"""Schema versions: a SQLite file of version 1 keeps its runs; PostgreSQL's migrations run on
start, once, however many servers start at once; neither takes another program's tables."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from csflow.adapters.sqlite_schema import MIGRATIONS, VERSION, statements
from csflow.adapters.sqlite_store import SQLiteStore
from csflow.adapters.stores import open_store
from csflow.engine.errors import StoreError
from csflow.engine.store import RunRecord


def version_1_file(path: Path) -> None:
    """A run store as csflow wrote it before conversations: schema 1, one run, one step."""
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[1])
    conn.execute(
        "INSERT INTO runs VALUES ('old-01', 'wismo', 'completed', '2026-11-01T10:00:00.000Z',"
        " 3.5, '{\"email\":\"a@b.co\"}', '{}', 'hi', NULL, NULL, NULL)"
    )
    conn.execute(
        "INSERT INTO steps VALUES ('old-01', 0, 'orders', 'call', 'http', NULL, 4, 1, NULL,"
        " 200, 3.1, 1, 'done', NULL)"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


@pytest.mark.parametrize("create", [True, False])
def test_a_version_1_file_is_migrated_and_keeps_its_runs(tmp_path: Path, create: bool) -> None:
    path = tmp_path / "runs.sqlite3"
    version_1_file(path)
    store = SQLiteStore(path, create=create)
    try:
        (old,) = store.list_runs()
        assert (old.id, old.inputs, old.conversation_id, old.turn, old.dry_run) == (
            "old-01",
            {"email": "a@b.co"},
            None,
            None,
            False,
        )
        got = store.get_run("old-01")
        assert got is not None and got.steps[0]["status"] == 200
        store.finish(RunRecord("new-02", "wismo", "waiting", "2026-11-02T10:00:00.000Z",
                               conversation_id="c-1", turn=1))  # fmt: skip
        assert store.flush(10)
        assert [r.id for r in store.list_runs(conversation_id="c-1")] == ["new-02"]
        assert store.list_conversations() == []
    finally:
        store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (VERSION,)
    conn.close()


def test_a_file_of_a_newer_csflow_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite3"
    version_1_file(path)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match=r"written by a newer csflow \(schema version 3"):
        open_store(path)


def test_servers_starting_together_migrate_once(postgres: Any) -> None:
    from csflow.adapters.postgres_store import PostgresStore

    url = postgres.database()
    opened: list[Any] = []
    failed: list[BaseException] = []
    start = threading.Barrier(6)

    def server() -> None:
        start.wait()
        try:
            opened.append(PostgresStore(url, timeout=10))
        except BaseException as exc:
            failed.append(exc)

    threads = [threading.Thread(target=server) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for store in opened:
        store.close()
    assert failed == []
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    postgres.drop_all()


def test_a_database_with_runs_of_its_own_is_not_taken(postgres: Any) -> None:
    url = postgres.database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE runs (invoice INTEGER)")
    with pytest.raises(StoreError, match="is not a csflow run store: it has a runs table"):
        open_store(url)
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    assert tables == [("runs",)]  # not even schema_version: the transaction rolled back
    postgres.drop_all()


def test_a_file_another_process_is_making_a_store_of_is_waited_for(tmp_path: Path) -> None:
    # Workers of `csflow serve` open a new project's store at once: the first has made the
    # file and holds its write lock while it makes the tables; the others must wait for it,
    # not take the file (no tables yet) for another program's database.
    path = tmp_path / "runs.sqlite3"
    first = sqlite3.connect(path, isolation_level=None)
    first.execute("PRAGMA journal_mode = WAL")  # the file exists now, with no table
    first.execute("BEGIN IMMEDIATE")
    outcome: list[object] = []

    def second() -> None:
        try:
            outcome.append(SQLiteStore(path))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    for statement in statements(MIGRATIONS[1]):
        first.execute(statement)
    first.execute("PRAGMA user_version = 1")
    first.execute("COMMIT")
    first.close()
    thread.join(30)
    (store,) = outcome
    assert isinstance(store, SQLiteStore), store
    assert store.list_runs() == []
    store.close()
