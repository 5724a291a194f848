"""No answered run is lost: ``Project.run`` returns once its run is committed, in group commits.

The writer is held up by another connection taking SQLite's write lock, as another worker
process would; that makes "the run waits for its commit" and "queued runs share one
transaction" observable without timing anything.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support import until

from csflow import Project
from csflow.adapters.sqlite_store import SQLiteStore
from csflow.adapters.stores import open_store
from csflow.engine.errors import StoreError, UsageError
from csflow.engine.store import RunRecord

ECHO = Path(__file__).parent / "projects" / "echo"


class CountingStore(SQLiteStore):
    """A SQLiteStore that counts the runs handed to ``finish``: the event to wait for."""

    finished = 0

    def finish(self, record: RunRecord) -> Awaitable[None]:
        self.finished += 1
        return super().finish(record)


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold the file's write lock from another connection; the writer waits behind it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def stored_ids(path: Path) -> set[str]:
    conn = sqlite3.connect(path)  # another connection, as another process would read it
    try:
        return {row[0] for row in conn.execute("SELECT id FROM runs")}
    finally:
        conn.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CountingStore]:
    opened = CountingStore(tmp_path / "runs.sqlite3")
    yield opened
    opened.close()


@pytest.fixture
def echo(store: CountingStore) -> Project:
    return Project.load(ECHO, store=store)


async def test_the_run_is_in_the_file_when_run_returns(echo: Project, store: CountingStore):
    result = await echo.run("echo", {"order": "ORD-1001"})
    assert stored_ids(store.path) == {result.run_id}  # no flush, no close: already committed


async def test_run_waits_for_its_commit(echo: Project, store: CountingStore):
    with write_lock(store.path):
        task = asyncio.create_task(echo.run("echo", {"order": "ORD-1001"}))
        await until(lambda: store.finished == 1, what="the run to reach the store")
        done, _ = await asyncio.wait({task}, timeout=0.3)
        assert not done, "run returned before its run was committed"
    result = await asyncio.wait_for(task, 10)
    assert stored_ids(store.path) == {result.run_id}


async def test_the_wait_for_the_commit_ends_at_the_runs_deadline(
    echo: Project, store: CountingStore, caplog: pytest.LogCaptureFixture
):
    """A store slower than the caller can wait (PostgreSQL down: its own timeout is 5 s, a
    platform's deadline may be shorter) must not cost the answer: the run answers at its
    deadline, stays queued, and is written once the store can."""
    with write_lock(store.path), caplog.at_level(logging.WARNING, "csflow.store"):
        task = asyncio.create_task(echo.run("echo", {"order": "ORD-1001"}, deadline=0.5))
        await until(lambda: store.finished == 1, what="the run to reach the store")
        # Long before the lock goes, and no later than the deadline's backstop would cut it.
        result = await asyncio.wait_for(task, 2)
        assert result.status == "completed" and result.reply == "Order ORD-1001"
        assert result.run_id not in stored_ids(store.path)
    assert f"run {result.run_id} was answered before the run store committed it" in caplog.text
    assert await asyncio.to_thread(store.flush, 10)
    assert stored_ids(store.path) == {result.run_id}


async def test_concurrent_finishes_share_one_transaction(echo: Project, store: CountingStore):
    await echo.run("echo", {"order": "ORD-0000"})  # the writer thread is up
    before = store.commits
    with write_lock(store.path):
        tasks = [asyncio.create_task(echo.run("echo", {"order": f"ORD-{i}"})) for i in range(200)]
        await until(lambda: store.finished == 201, what="every run to reach the store")
    results = await asyncio.wait_for(asyncio.gather(*tasks), 20)
    # At most the group the writer took before the lock held it up, then all the rest.
    assert store.commits - before <= 2
    assert {r.run_id for r in results} <= stored_ids(store.path)
    assert len(stored_ids(store.path)) == 201


async def test_a_run_cancelled_while_its_commit_waits_is_still_recorded(
    echo: Project, store: CountingStore
):
    with write_lock(store.path):
        task = asyncio.create_task(echo.run("echo", {"order": "ORD-1001"}, run_id="cut-01"))
        await until(lambda: store.finished == 1, what="the run to reach the store")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)  # the cancel is not held up by the lock
    assert await asyncio.to_thread(store.flush, 10)
    assert stored_ids(store.path) == {"cut-01"}


async def test_a_store_that_cannot_commit_fails_open_and_logs_the_run(
    caplog: pytest.LogCaptureFixture,
):
    class Failing:
        async def begin(self, record: RunRecord) -> None: ...

        def finish(self, record: RunRecord) -> Awaitable[None]:
            async def fail() -> None:
                raise StoreError("the disk is full")

            return fail()

        def flush(self, timeout: float | None = None) -> bool:
            return True

        def close(self) -> None: ...

    project = Project.load(ECHO, store=Failing())
    with caplog.at_level(logging.ERROR, "csflow.store"):
        result = await project.run("echo", {"order": "ORD-1001"}, run_id="lost-01")
    assert result.status == "completed"  # the customer still gets the answer
    assert "run lost-01 was answered but not recorded: the disk is full" in caplog.text


async def test_a_lone_surrogate_in_an_input_is_refused_before_the_run(
    echo: Project, store: CountingStore
):
    # The input check names it (a 4xx for a channel); the store never sees a run that never ran.
    with pytest.raises(UsageError, match="input 'order': holds characters that are not valid text"):
        await echo.run("echo", {"order": "ORD-1003\ud800"})
    assert store.list_runs() == []


# -- a file that is not a run store --------------------------------------------------------------


def test_csflow_runs_on_a_file_that_is_not_a_database_names_it(cli: Any, tmp_path: Path):
    corrupt = tmp_path / "corrupt.sqlite3"
    corrupt.write_bytes(b"this is not a database, just some bytes\n" * 100)
    out = CliRunner().invoke(cli, ["runs", "--store", str(corrupt)])
    assert out.exit_code == 2, out.output
    assert f"Error: {corrupt} is not a csflow run store" in out.output
    assert "internal error" not in out.output
    shown = CliRunner().invoke(cli, ["runs", "show", "abcd", "--store", str(corrupt)])
    assert shown.exit_code == 2 and "is not a csflow run store" in shown.output


def test_another_programs_database_is_not_taken_for_a_run_store(cli: Any, tmp_path: Path):
    other = tmp_path / "other.sqlite3"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    out = CliRunner().invoke(cli, ["runs", "--store", str(other)])
    assert out.exit_code == 2, out.output
    assert f"{other} is not a csflow run store: it has no runs and steps tables" in out.output
    ran = CliRunner().invoke(
        cli, ["run", "echo", "-p", str(ECHO), "-i", "order=A", "--store", str(other)]
    )
    assert ran.exit_code == 2, ran.output
    assert "is not a csflow run store" in ran.output
    tables = sqlite3.connect(other).execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("invoices",)]  # csflow added nothing to it


def test_a_group_larger_than_one_statement_takes_is_written_whole(tmp_path: Path):
    # 512 runs of 5 steps: 35,840 step parameters, over SQLite's 32,766 for one statement.
    store = SQLiteStore(tmp_path / "runs.sqlite3")
    steps = [{"id": f"s{i}", "verb": "set", "ok": True, "attempts": 1} for i in range(5)]
    with write_lock(store.path):
        for i in range(512):
            at = f"2026-11-20T10:{i // 60:02d}:{i % 60:02d}.000Z"
            store.finish(RunRecord(f"run-{i:03d}", "echo", "completed", at, steps=steps))
    assert store.flush(20)
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT count(*), count(DISTINCT run_id) FROM steps").fetchone() == (
        2560,
        512,
    )
    conn.close()
    assert store.commits <= 2
    store.close()


def test_an_empty_file_is_no_run_store_to_read_but_one_to_write(tmp_path: Path):
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    with pytest.raises(StoreError, match="is not a csflow run store: it has no runs"):
        open_store(empty, create=False)
    open_store(empty).close()  # `csflow run` makes it one
    assert open_store(empty, create=False).list_runs() == []
