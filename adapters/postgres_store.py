"""``PostgresStore``: the run store in PostgreSQL, shared by every csflow server that names it.

Everything runs on the store's own loop (``postgres_loop.StoreLoop``) over one psycopg async
pool. Writes are group commits, as SQLite's: ``finish`` puts the record on a queue and hands
back a future; the writer takes what has queued up, writes it in one transaction, and settles
the futures of all its runs with one call per caller's loop. ``begin`` awaits its commit.

PostgreSQL down or slow never hangs a caller (fail closed where a write would leave, open
where an answer is due):

- every statement, connection and pool wait is bounded by ``timeout``, and so is every wait of
  a caller (a timer on its own loop), whatever the store's loop is doing;
- a run that cannot be committed stays queued and is written once the server is back (the
  pool reconnects by itself); its ``finish`` fails after ``timeout`` (``Project.run`` logs it
  and answers), its ``begin`` fails (the write is not sent);
- at most ``max_queued`` runs wait: a run past that is lost, and so is one still queued when
  the process exits; each is logged at ERROR with its id.

A store's messages name it by ``describe(url)``, never with the URL's password.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from csflow.adapters import postgres_schema as sql
from csflow.adapters.commits import Outcome, Write, settle, write_for
from csflow.adapters.postgres_loop import StoreLoop, conninfo, describe, password
from csflow.adapters.postgres_turns import PostgresTurns
from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord
from csflow.engine.store.codec import (
    found_run,
    run_filters,
    run_from,
    run_row,
    step_rows,
    where,
)
from csflow.engine.store.conversations import Conversation, Turn, TurnSlot
from csflow.engine.store.inbox import take_turn
from csflow.engine.store.retention import KEEP_DEFAULT, Keep, PruneSchedule

log = logging.getLogger("csflow.store")

T = TypeVar("T")
BATCH = 512
RETRY_FIRST, RETRY_LAST = 0.05, 2.0  # the writer's back-off while the server is away
# The server is away or slow: what is queued stays queued and is tried again.
TRANSIENT = (psycopg.OperationalError, TimeoutError)


def _expire(future: asyncio.Future[Any] | Future[Any], error: StoreError) -> None:
    if not future.done():
        future.set_exception(error)


class PostgresStore:
    """The run store in the PostgreSQL database of ``url`` (``postgresql://...``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        max_queued: int = 10_000,
        keep: Keep = KEEP_DEFAULT,
        pool_size: int = 4,
    ) -> None:
        self.name = describe(url)
        self.timeout = timeout
        self.max_queued = max_queued
        self.keep = keep
        self.prunes = PruneSchedule()
        self._pruning = False
        self.commits = 0
        self.turns = PostgresTurns(self)
        self._secret = password(url)
        self._pending: deque[Write] = deque()
        self._signalled = False
        self.closed = False
        self._away = False
        self.loop = StoreLoop("csflow-postgres")
        try:
            # Connecting, then migrating: it may wait on another server's migration.
            self.loop.call(self._start(conninfo(url, timeout), pool_size), 3 * timeout)
        except BaseException as exc:
            self.loop.call(self._stop(), timeout)
            self.loop.stop()
            if isinstance(exc, StoreError):
                raise
            raise self.error("be opened", exc) from None
        _OPEN.add(self)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            return f"no answer within {self.timeout:g} s"
        text = " ".join(str(exc).split()) or type(exc).__name__
        return text.replace(self._secret, "***") if self._secret else text

    def error(self, what: str, exc: BaseException, within: float | None = None) -> StoreError:
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, TimeoutError):
            seconds = self.timeout if within is None else within
            return StoreError(f"the run store {self.name} did not answer within {seconds:g} s")
        return StoreError(f"the run store {self.name} could not {what}: {self._reason(exc)}")

    async def _start(self, info: str, pool_size: int) -> None:
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            info,
            min_size=1,
            max_size=pool_size,
            open=False,
            timeout=self.timeout,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,  # a connection the server cut is dropped
            # A failed connection is tried again after 1 s, 2 s, 4 s, ...: giving up soon lets
            # the next caller start again at once, so that a server back is found within ~2 s.
            reconnect_timeout=max(2.0, self.timeout),
            name="csflow-store",
        )
        await self._pool.open(wait=True, timeout=self.timeout)
        async with self._pool.connection() as conn:
            await sql.migrate(conn, self.name)
        self._writer = asyncio.create_task(self._write_loop())

    async def _stop(self) -> None:
        writer = getattr(self, "_writer", None)
        if writer is not None:
            writer.cancel()
        pool = getattr(self, "_pool", None)
        if pool is not None:
            await pool.close(timeout=self.timeout)

    # -- RunWriter -----------------------------------------------------------------------------

    def _queue(self, record: RunRecord) -> Awaitable[None]:
        job, committed = write_for(record)
        if self.closed:
            raise StoreError(f"the run store {self.name} is closed")
        if len(self._pending) >= self.max_queued:
            log.error(
                "the run store %s has %d runs queued, unwritten: run %s is lost",
                self.name,
                len(self._pending),
                record.id,
            )
            settle([job], [(None, StoreError(f"the run store {self.name} is full"))])
            return committed
        late = StoreError(
            f"the run store {self.name} did not commit within {self.timeout:g} s; the run"
            " stays queued until it can"
        )
        if isinstance(committed, asyncio.Future) and job.loop is not None:
            # A timer on the caller's own loop: it fires whatever the store's loop is doing.
            timer = job.loop.call_later(self.timeout, _expire, committed, late)
            committed.add_done_callback(lambda _: timer.cancel())
        elif isinstance(job.waiter, Future):  # a caller with no loop: the store's loop times it
            waiter = job.waiter
            self.loop.loop.call_soon_threadsafe(
                self.loop.loop.call_later, self.timeout, _expire, waiter, late
            )
        self._pending.append(job)
        if not self._signalled:  # the writer sleeps: wake it (once, however many come now)
            self._signalled = True
            self.loop.loop.call_soon_threadsafe(self._wake.set)
        return committed

    async def begin(self, record: RunRecord) -> None:
        """Queue ``record`` (``in_flight``) and return once it is committed (StoreError after
        ``timeout``: the write it stands before is then not sent)."""
        await self._queue(record)

    def finish(self, record: RunRecord) -> Awaitable[None]:
        return self._queue(record)

    async def _write_loop(self) -> None:
        delay = RETRY_FIRST
        while True:
            if not self._pending:
                self._signalled = False  # before looking again: a run queued now wakes us
                if not self._pending:
                    await self._wake.wait()
                self._wake.clear()
                continue
            group = [self._pending[i] for i in range(min(BATCH, len(self._pending)))]
            try:
                outcomes = await self._write_group(group)
            except TRANSIENT as exc:
                if not self._away:
                    self._away = True
                    log.warning(
                        "the run store %s is unreachable (%s): runs stay queued until it is back",
                        self.name,
                        self._reason(exc),
                    )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_LAST)
                continue
            if self._away:
                self._away = False
                log.warning("the run store %s is back: queued runs are written", self.name)
            delay = RETRY_FIRST
            for _ in group:
                self._pending.popleft()
            settle(group, outcomes)
            if self.prunes.finished(sum(1 for w in group if w.record.status != IN_FLIGHT)):
                self._pruning = True
                try:
                    await self._prune()
                finally:
                    self._pruning = False
            self._changed.set()  # after the prune: a flush (and close) sees it done

    async def _write_group(self, group: list[Write]) -> list[Outcome]:
        try:
            await self._commit(group)
            return [(None, None)] * len(group)
        except TRANSIENT:
            raise
        except psycopg.Error:  # one bad record must not lose the others: one at a time
            outcomes: list[Outcome] = []
            for write in group:
                try:
                    await self._commit([write])
                    outcomes.append((None, None))
                except TRANSIENT:
                    raise
                except psycopg.Error as exc:
                    log.error("the run store could not record run %s: %s", write.record.id, exc)
                    outcomes.append((None, self.error("record a run", exc)))
            return outcomes

    async def _commit(self, group: list[Write]) -> None:
        # The last record of a run in the group is all of it: the group commits atomically.
        latest = {w.record.id: w.record for w in group}
        encoded = [record.encoded() for record in latest.values()]
        runs = [sql.no_nul(run_row(e)) for e in encoded]
        steps = [sql.no_nul(row) for e in encoded for row in step_rows(e)]
        async with asyncio.timeout(self.timeout):
            async with self._pool.connection() as conn, conn.transaction():
                cur = conn.cursor()
                await cur.executemany(sql.UPSERT_RUN, runs)
                # A run's steps are replaced whole: the in_flight record before, or an earlier
                # turn of a conversation, possibly written by another server.
                await cur.execute(sql.DELETE_STEPS, ([r["id"] for r in runs],))
                if steps:
                    await cur.executemany(sql.INSERT_STEP, steps)
        self.commits += 1

    async def _prune(self) -> None:
        # Waiting runs and waiting conversations are kept whatever their age: they go on.
        try:
            async with asyncio.timeout(self.timeout), self._pool.connection() as conn:
                for statement, args in sql.prune_statements(self.keep):
                    await conn.execute(statement, args)
                await conn.execute(sql.SWEEP_INBOX)
        except (psycopg.Error, TimeoutError) as exc:
            log.warning("the run store %s could not prune old runs: %s", self.name, exc)

    async def _drained(self) -> bool:
        while True:
            self._changed.clear()
            if not self._pending and not self._pruning:
                return True
            await self._changed.wait()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued is written; False when ``timeout`` passed first."""
        if self.closed:
            return not self._pending
        try:
            return self.loop.call(self._drained(), timeout)
        except TimeoutError:
            return False

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued (for ``timeout`` s at most); log each run that could not be."""
        if self.closed:
            return
        self.flush(timeout)
        self.turns.wait_for_leaving(timeout)
        self.closed = True
        lost = list(self._pending)
        for write in lost:
            log.error(
                "run %s was never written to the run store %s: it was still queued when the"
                " store closed",
                write.record.id,
                self.name,
            )
        settle(lost, [(None, StoreError(f"the run store {self.name} closed"))] * len(lost))
        try:
            self.loop.call(self._stop(), self.timeout)
        except Exception as exc:
            log.warning("the run store %s did not close cleanly: %s", self.name, exc)
        self.loop.stop()
        _OPEN.discard(self)

    # -- reading (synchronous: RunReader, ConversationStore's readers) ---------------------------

    async def fetch(self, query: str, args: Any) -> list[dict[str, Any]]:
        async with asyncio.timeout(self.timeout), self._pool.connection() as conn:
            cur = conn.cursor(row_factory=dict_row)
            await cur.execute(query, args)
            rows: list[dict[str, Any]] = await cur.fetchall()
            return rows

    def read(self, query: str, args: Any = ()) -> list[dict[str, Any]]:
        try:
            return self.loop.call(self.fetch(query, args), self.timeout + 1)
        except (psycopg.Error, TimeoutError) as exc:
            raise self.error("be read", exc) from None

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
        filters = run_filters(
            flow=flow,
            failed=failed,
            status=status,
            since=since,
            until=until,
            conversation_id=conversation_id,
        )
        query = f"SELECT * FROM runs{where(filters, '%s')}"
        query += " ORDER BY started_at DESC, n DESC LIMIT %s OFFSET %s"
        rows = self.read(query, (*(value for _, _, value in filters), limit, offset))
        return [run_from(row) for row in rows]

    def last_failures(self) -> dict[str, RunRecord]:
        rows = self.read(
            "SELECT DISTINCT ON (flow) * FROM runs WHERE status = 'failed'"
            " ORDER BY flow, started_at DESC, n DESC"
        )
        return {row["flow"]: run_from(row) for row in rows}

    def get_run(self, run_id: str) -> RunRecord | None:
        where = {"exact": "id = %s", "prefix": "id LIKE %s ESCAPE '\\' LIMIT 2"}
        return found_run(
            run_id,
            lambda how, value: self.read(f"SELECT * FROM runs WHERE {where[how]}", (value,)),
            lambda rid: self.read("SELECT * FROM steps WHERE run_id = %s ORDER BY seq", (rid,)),
        )

    # -- conversations (ConversationStore: postgres_turns) --------------------------------------

    def take(
        self, conversation_id: str, *, wait: float, hold: float
    ) -> AbstractAsyncContextManager[TurnSlot]:
        return take_turn(self.turns, conversation_id, wait=wait, hold=hold)

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        return self.turns.listed(status, limit, offset)

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        return self.turns.transcript(conversation_id)

    # -- for postgres_turns: work on the store's loop, bounded ----------------------------------

    async def ask(
        self, coroutine: Coroutine[Any, Any, T], what: str, within: float | None = None
    ) -> T:
        """``coroutine`` on the store's loop, awaited from the caller's, within ``timeout``,
        or within ``within`` when the caller can wait less (a platform's deadline): the store
        must answer, if only with a StoreError, while the caller still can."""
        if self.closed:
            coroutine.close()
            raise StoreError(f"the run store {self.name} is closed")
        bound = self.timeout + 1 if within is None else min(self.timeout + 1, within)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.loop.submit(coroutine)), bound)
        except (psycopg.Error, TimeoutError) as exc:
            raise self.error(what, exc, None if within is None else bound) from None

    async def bounded(self, work: Callable[[Any], Awaitable[T]]) -> T:
        async with asyncio.timeout(self.timeout), self._pool.connection() as conn:
            return await work(conn)


_OPEN: set[PostgresStore] = set()


@atexit.register
def _close_open_stores() -> None:
    """A process that ends without closing its store still writes what it queued, or says
    which runs it could not."""
    for store in list(_OPEN):
        store.close(timeout=5.0)


__all__ = ["PostgresStore"]
