"""``SQLiteStore``: the run store in one SQLite file, written by one thread, in group commits.

The event loop never touches the database. ``finish`` and ``begin`` put the record on a
queue; the writer thread takes everything that has queued up, JSON-encodes and redacts it
(``RunRecord.encoded``), writes it in one transaction and commits once. Then it settles the
futures of all the runs in that commit with one call per event loop, so that a hundred
concurrent runs cost one commit and one wake-up of the loop, not a hundred of each. The
queue keeps the records of one run in order.

WAL mode with ``synchronous=NORMAL``: a commit survives the process crashing (SIGKILL, the
case the ``in_flight`` record and the awaited ``finish`` are for), not the machine losing
power mid-write. Readers (``csflow runs``) open their own connection and never wait for the
writer. The file keeps what ``keep`` says (``engine.store.retention``: by default the newest
100,000 runs); open ones (``in_flight``, ``waiting``) are never pruned.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import queue
import sqlite3
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from csflow.adapters import sqlite_turns
from csflow.adapters.commits import Job, Outcome, Write, settle, write_for
from csflow.adapters.sqlite_schema import (
    check_is_a_run_store,
    chunks,
    connect,
    delete_steps,
    insert_steps,
    migrate,
    prune_statements,
    upsert_runs,
)
from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord
from csflow.engine.store.codec import (
    RUN_COLUMNS,
    STEP_COLUMNS,
    found_run,
    run_filters,
    run_from,
    run_row,
    step_rows,
    values,
    where,
)
from csflow.engine.store.conversations import Conversation, Turn, TurnSlot
from csflow.engine.store.inbox import Wakeups, take_turn
from csflow.engine.store.retention import KEEP_DEFAULT, Keep, PruneSchedule

log = logging.getLogger("csflow.store")

# A bound on one transaction, so that the first waiter of a very long queue is not held for
# all of it; at the loads that bench/store.py measures, a group is far smaller.
BATCH = 512
T = TypeVar("T")


@dataclass(slots=True)
class _Call(Job):
    """A conversation's statements (``sqlite_turns``): ``apply`` runs in a transaction on the
    writer's connection, its value goes to ``waiter``, then ``after`` runs (a wake-up)."""

    apply: Callable[[sqlite3.Connection], Any]
    after: Callable[[], None] | None = None


@dataclass(slots=True)
class _Flush:
    done: threading.Event


class _Close:
    pass


def _when_free(step: Callable[[], object], wait: float = 10.0) -> None:
    """``step`` (a setting or a migration when opening), asked again while another process
    holds the file.

    Some of SQLite's answers of "database is locked" come at once rather than through the
    busy timeout: switching a file to WAL while another process makes its tables (workers
    of ``csflow serve`` starting on a new project), or a lock held through the busy timeout
    by a loaded machine's other process. Opening is rare, so waiting a little longer is
    better than a server that does not start.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _not_a_database(exc: sqlite3.Error) -> bool:
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB"


class SQLiteStore:
    """The run store in ``path`` (created with its folder unless ``create=False``).

    ``commits`` counts the transactions written, so that tests and the bench can see how
    many runs shared one. Conversations' turns (``take``) go through the same writer thread,
    so that the tickets of one process are numbered in the order ``take`` was called.
    """

    def __init__(self, path: Path, *, create: bool = True, keep: Keep = KEEP_DEFAULT) -> None:
        self.path = Path(path)
        self.keep = keep
        self.prunes = PruneSchedule()
        self.commits = 0
        if not create and not self.path.is_file():
            raise StoreError(f"no runs recorded yet: {self.path} does not exist")
        self._conn = self._open(create)
        self._queue: queue.SimpleQueue[Write | _Call | _Flush | _Close] = queue.SimpleQueue()
        self.wakeups = Wakeups()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._closed = False
        _OPEN.add(self)

    def _open(self, create: bool) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path)
            if not create:  # a reader: no tables of csflow's is no run store, not a new one
                check_is_a_run_store(conn, self.path)
            else:
                _when_free(lambda: conn.execute("PRAGMA journal_mode = WAL"))
            # Under the write lock: of two processes opening a new file, one makes the tables
            # and the other finds them. Readers too: an older file is migrated.
            _when_free(lambda: migrate(conn, self.path))
            conn.execute("PRAGMA synchronous = NORMAL")
            return conn
        except (OSError, sqlite3.Error, StoreError) as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, StoreError):
                raise
            if isinstance(exc, sqlite3.Error) and _not_a_database(exc):
                raise StoreError(f"{self.path} is not a csflow run store ({exc})") from None
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from None

    # -- writing ------------------------------------------------------------------------------

    def _put(self, job: Write | _Call | _Flush | _Close) -> None:
        if self._closed:
            raise StoreError(f"the run store {self.path} is closed")
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="csflow-store", daemon=True
                    )
                    self._thread.start()
        self._queue.put(job)

    async def begin(self, record: RunRecord) -> None:
        """Store ``record`` (``in_flight``) and return once it is committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._put(Write(loop, done, record))
        await done

    def finish(self, record: RunRecord) -> Awaitable[None]:
        """Queue ``record``; the awaitable resolves once it is committed (StoreError if not)."""
        job, committed = write_for(record)
        self._put(job)
        return committed

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued is written; False when ``timeout`` passed first."""
        if self._thread is None or self._closed:
            return True
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        if self._closed:
            return
        if self._thread is not None:
            self._queue.put(_Close())
            self._thread.join(timeout)
        self._closed = True
        if self._thread is None or not self._thread.is_alive():
            self._conn.close()
        _OPEN.discard(self)

    def _work(self) -> None:
        while True:
            jobs = [self._queue.get()]  # blocks until there is work: no polling, no delay
            while len(jobs) < BATCH:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [job for job in jobs if isinstance(job, Write)]
            if writes:
                self._write_group(writes)
            calls = [job for job in jobs if isinstance(job, _Call)]
            if calls:
                self._call_group(calls)
            for job in jobs:
                if isinstance(job, _Flush):
                    job.done.set()
            if any(isinstance(job, _Close) for job in jobs):
                return

    def _write_group(self, writes: list[Write]) -> None:
        try:
            self._transaction(writes)
            outcomes: list[Outcome] = [(None, None)] * len(writes)
        except Exception:  # one bad record must not lose the others: one at a time
            outcomes = []
            for write in writes:
                try:
                    self._transaction([write])
                    outcomes.append((None, None))
                except Exception as exc:
                    log.error("the run store could not record run %s: %s", write.record.id, exc)
                    outcomes.append((None, StoreError(f"the run store {self.path} failed: {exc}")))
        settle(writes, outcomes)
        if self.prunes.finished(sum(1 for w in writes if w.record.status != IN_FLIGHT)):
            self._prune()

    def _call_group(self, calls: list[_Call]) -> None:
        """The conversations' statements of one batch, in their order, in one transaction."""
        try:
            outcomes: list[Outcome] = self._in_transaction([c.apply for c in calls])
        except Exception:  # one that fails (a lapsed turn's save) must not fail the others
            outcomes = []
            for call in calls:
                try:
                    outcomes.extend(self._in_transaction([call.apply]))
                except StoreError as exc:
                    outcomes.append((None, exc))
                except Exception as exc:
                    outcomes.append((None, StoreError(f"the run store {self.path} failed: {exc}")))
        settle(calls, outcomes)
        for call, (_, error) in zip(calls, outcomes, strict=True):
            if call.after is not None and error is None:
                call.after()

    def _in_transaction(self, applies: list[Callable[[sqlite3.Connection], Any]]) -> list[Outcome]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            found: list[Outcome] = [(apply(conn), None) for apply in applies]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1
        return found

    def _transaction(self, writes: list[Write]) -> None:
        # The last record of a run in the group is all of it: the group commits atomically.
        latest = {w.record.id: w.record for w in writes}
        encoded = [record.encoded() for record in latest.values()]
        runs = [values(run_row(e), RUN_COLUMNS) for e in encoded]
        steps = [values(row, STEP_COLUMNS) for e in encoded for row in step_rows(e)]
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for part in chunks(runs, len(RUN_COLUMNS)):
                conn.execute(upsert_runs(len(part)), [v for row in part for v in row])
            # A run's steps are replaced whole: the in_flight record before, or an earlier
            # turn of a conversation, possibly written by another process.
            for part in chunks([(e["id"],) for e in encoded], 1):
                conn.execute(delete_steps(len(part)), [row[0] for row in part])
            for part in chunks(steps, len(STEP_COLUMNS)):
                conn.execute(insert_steps(len(part)), [v for row in part for v in row])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.commits += 1

    def _prune(self) -> None:
        # Waiting runs and waiting conversations are kept whatever their age: they go on.
        try:
            for statement, args in prune_statements(self.keep):
                self._conn.execute(statement, args)
            sqlite_turns.sweep(self._conn)
        except sqlite3.Error as exc:
            log.warning("the run store could not prune old runs: %s", exc)

    # -- reading ------------------------------------------------------------------------------

    def _reading(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """``read`` on a connection of its own: readers never wait for the writer (WAL)."""
        try:
            conn = connect(self.path)
            try:
                conn.row_factory = sqlite3.Row
                return read(conn)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the run store {self.path}: {exc}") from None

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        return self._reading(lambda conn: conn.execute(sql, args).fetchall())

    def list_runs(
        self,
        *,
        flow: str | None = None,
        failed: bool = False,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        conversation_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[RunRecord]:
        """The newest runs first, with their summary fields (no steps)."""
        filters = run_filters(
            flow=flow,
            failed=failed,
            status=status,
            since=since,
            until=until,
            conversation_id=conversation_id,
        )
        sql = f"SELECT * FROM runs{where(filters, '?')}"
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ? OFFSET ?"
        args = (*(value for _, _, value in filters), limit, offset)
        return [run_from(row) for row in self._read(sql, args)]

    def last_failures(self) -> dict[str, RunRecord]:
        """Each flow's most recent failed run."""
        rows = self._read(
            "SELECT r.* FROM runs r JOIN (SELECT flow, MAX(started_at) AS at FROM runs"
            " WHERE status = 'failed' GROUP BY flow) f ON r.flow = f.flow"
            " AND r.started_at = f.at AND r.status = 'failed' ORDER BY r.flow",
            (),
        )
        return {row["flow"]: run_from(row) for row in rows}

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or the one run whose id starts with it (4+ characters)."""
        where = {"exact": "id = ?", "prefix": "id LIKE ? ESCAPE '\\' LIMIT 2"}
        return found_run(
            run_id,
            lambda how, value: self._read(f"SELECT * FROM runs WHERE {where[how]}", (value,)),
            lambda rid: self._read("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (rid,)),
        )

    # -- conversations (ConversationStore; the Inbox of engine.store.inbox) --------------------

    def take(
        self, conversation_id: str, *, wait: float, hold: float
    ) -> AbstractAsyncContextManager[TurnSlot]:
        return take_turn(self, conversation_id, wait=wait, hold=hold)

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        return self._reading(lambda conn: sqlite_turns.listed(conn, status, limit, offset))

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        return self._reading(lambda conn: sqlite_turns.transcript(conn, conversation_id))

    async def _call(
        self, apply: Callable[[sqlite3.Connection], T], after: Callable[[], None] | None = None
    ) -> T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._put(_Call(loop, done, apply, after))
        return await done

    async def enter(self, conversation_id: str, wait: float, hold: float) -> tuple[int, bool]:
        return await self._call(lambda conn: sqlite_turns.enter(conn, conversation_id, wait, hold))

    async def claim(self, conversation_id: str, ticket: int, hold: float) -> bool:
        now = time.time()
        return await self._call(
            lambda conn: sqlite_turns.claim(conn, conversation_id, ticket, hold, now)
        )

    async def load(self, conversation_id: str) -> Conversation | None:
        return await asyncio.to_thread(
            self._reading, lambda conn: sqlite_turns.load(conn, conversation_id)
        )

    async def save(
        self, conversation_id: str, ticket: int, conversation: Conversation, turn: Turn
    ) -> None:
        await self._call(
            lambda conn: sqlite_turns.save(conn, conversation_id, ticket, conversation, turn)
        )

    def leave(self, conversation_id: str, ticket: int) -> None:
        try:
            self._put(
                _Call(
                    None,
                    None,
                    lambda conn: sqlite_turns.leave(conn, ticket),
                    lambda: self.wakeups.wake(conversation_id),
                )
            )
        except StoreError:  # closed: the ticket lapses by itself
            log.warning("conversation %s: its turn ended after the store closed", conversation_id)


_OPEN: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


@atexit.register
def _flush_open_stores() -> None:
    """A process that ends without closing its store still writes what it queued."""
    for store in list(_OPEN):
        store.close(timeout=5.0)
