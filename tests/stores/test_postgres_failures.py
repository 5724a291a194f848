"""PostgreSQL down or slow: no caller hangs, nothing is lost quietly, and the store recovers.

Each test has a server of its own that it stops and starts (``own_postgres``). The store's
``timeout`` is 1 s, so every "raises within" below is a bound the store promises; the password
of the URL (ignored by the trust authentication) must never show in an error or a log line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from services.postgres import PostgresServer, create_database
from support import wait_until

from csflow.adapters.postgres_store import PostgresStore
from csflow.adapters.stores import open_store
from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord

SECRET = "s3cret-pw"
TIMEOUT = 1.0


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@")


def record(rid: str, status: str = "completed") -> RunRecord:
    return RunRecord(rid, "wismo", status, f"2026-11-20T10:00:{rid[-2:]}.000Z")


@pytest.fixture
def url(own_postgres: PostgresServer) -> str:
    return with_password(own_postgres.create_database())


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(url, timeout=TIMEOUT)
    yield opened
    opened.close(timeout=10)


def fails_fast(call: Any, bound: float = TIMEOUT) -> StoreError:
    """``call()``'s StoreError, raised within ``bound`` (plus slack for a slow CI)."""
    started = time.monotonic()
    with pytest.raises(StoreError) as caught:
        call()
    assert time.monotonic() - started < bound + 3
    assert SECRET not in str(caught.value)
    assert "postgresql://postgres@127.0.0.1" in str(caught.value)  # it names the store
    return caught.value


def test_a_server_that_is_down_at_start_is_a_store_error_without_the_password(
    own_postgres: PostgresServer, url: str
) -> None:
    own_postgres.stop()
    fails_fast(lambda: PostgresStore(url, timeout=TIMEOUT))
    fails_fast(lambda: open_store(url), bound=5.0)  # as CSFLOW_STORE or --store: 5 s


def test_with_the_server_down_nothing_hangs_and_nothing_shows_the_password(
    own_postgres: PostgresServer, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    own_postgres.stop()
    with caplog.at_level(logging.DEBUG):
        fails_fast(lambda: asyncio.run(store.begin(record("run-01", IN_FLIGHT))))

        async def finished() -> None:
            await store.finish(record("run-02"))

        fails_fast(lambda: asyncio.run(finished()))
        fails_fast(store.list_runs)
        fails_fast(lambda: store.get_run("run-01"))
        fails_fast(store.last_failures)
        fails_fast(store.list_conversations)
        fails_fast(lambda: store.get_conversation("chat-1"))

        async def turn() -> None:
            async with store.take("chat-1", wait=5, hold=5):
                pytest.fail("a turn entered with the server down")

        fails_fast(lambda: asyncio.run(turn()))
    assert SECRET not in caplog.text


def test_a_turn_that_can_wait_less_than_the_stores_timeout_fails_within_its_wait(
    own_postgres: PostgresServer, url: str
) -> None:
    """A platform's deadline may be shorter than the store's 5 s: taking a conversation must
    fail while the platform still waits, so that the channel answers "could not check"."""
    patient = PostgresStore(url, timeout=5.0)
    try:
        own_postgres.stop()

        async def turn() -> None:
            async with patient.take("chat-1", wait=0.5, hold=5):
                pytest.fail("a turn entered with the server down")

        error = fails_fast(lambda: asyncio.run(turn()), bound=0.5)
        assert "within 0.5 s" in str(error)
    finally:
        patient.close(timeout=1)


def test_runs_finished_while_the_server_is_down_are_written_once_it_is_back(
    own_postgres: PostgresServer, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    asyncio.run(store.begin(record("run-00", IN_FLIGHT)))  # the pool holds a live connection
    own_postgres.stop()

    async def answered_while_down() -> None:
        committed = [store.finish(record(f"run-{i:02d}")) for i in range(1, 4)]
        for waited in committed:
            with pytest.raises(StoreError, match="stays queued"):
                await waited

    with caplog.at_level(logging.WARNING, "csflow.store"):
        asyncio.run(answered_while_down())
        assert not store.flush(0.5)  # still queued: nothing to write them to
        own_postgres.start()
        wait_until(lambda: store.flush(1), what="the queued runs to be written")
    assert [r.id for r in store.list_runs()] == ["run-03", "run-02", "run-01", "run-00"]
    assert store.get_run("run-00").status == IN_FLIGHT  # type: ignore[union-attr]
    assert "is unreachable" in caplog.text and "is back" in caplog.text
    # The pool recovered by itself: a write awaited now commits.
    asyncio.run(store.begin(record("run-04", IN_FLIGHT)))
    assert store.get_run("run-04") is not None


def test_past_its_bound_the_queue_loses_runs_and_logs_each_id(
    own_postgres: PostgresServer, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresStore(url, timeout=TIMEOUT, max_queued=2)
    own_postgres.stop()
    with caplog.at_level(logging.ERROR, "csflow.store"):
        for i in range(4):
            store.finish(record(f"run-{i:02d}"))
        store.close(timeout=0.5)
    lost = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("run run-02 is lost" in m for m in lost)
    assert any("run run-03 is lost" in m for m in lost)
    # and the two that were queued when the store closed (the process exits: atexit)
    assert any("run run-00 was never written" in m for m in lost)
    assert any("run run-01 was never written" in m for m in lost)
    assert SECRET not in caplog.text


def test_a_slow_server_fails_a_write_in_time_and_takes_the_run_later(
    store: PostgresStore, url: str
) -> None:
    # Another session holds the table: the store's statements wait, as on an overloaded server.
    blocker = psycopg.connect(url, autocommit=False)
    blocker.execute("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE")
    try:
        fails_fast(lambda: asyncio.run(store.begin(record("run-01", IN_FLIGHT))))
    finally:
        blocker.rollback()
        blocker.close()
    wait_until(lambda: store.flush(1), what="the held-up run to be written")
    assert store.get_run("run-01") is not None


def test_the_store_error_of_a_database_that_does_not_exist_names_it(
    own_postgres: PostgresServer,
) -> None:
    missing = with_password(own_postgres.url("nowhere"))
    error = fails_fast(lambda: PostgresStore(missing, timeout=TIMEOUT))
    assert "nowhere" in str(error)
    create_database(own_postgres.url(), "somewhere")  # the server itself was fine
