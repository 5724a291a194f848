"""The PostgreSQL store's conversations: its inbox (``engine.store.inbox.Inbox``) and readers.

Every statement runs on the store's loop (``PostgresStore.ask``: bounded, errors named
without the password). A ticket is queued under an advisory transaction lock on the
conversation's hash, so that across servers ticket numbers commit in their order; within one
process a FIFO lock per conversation keeps them in the order ``take`` was called.
"""

from __future__ import annotations

import logging
from concurrent import futures
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

import psycopg

from csflow.adapters import postgres_schema as sql
from csflow.adapters.postgres_loop import KeyedLocks
from csflow.engine.store.codec import conversation_from, conversation_row, turn_from, turn_row
from csflow.engine.store.conversations import Conversation, Turn
from csflow.engine.store.inbox import Wakeups, entering, lapsed_turn

if TYPE_CHECKING:
    from csflow.adapters.postgres_store import PostgresStore

log = logging.getLogger("csflow.store")
ENTER_FLOOR = 0.5  # seconds: the least a ticket's write is given, whatever the caller's wait


class PostgresTurns:
    """The inbox of one ``PostgresStore``."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self.wakeups = Wakeups()
        self._entering = KeyedLocks()  # used on the store's loop only
        self._leaving: set[Future[None]] = set()

    async def _queue_ticket(
        self, conversation_id: str, wait: float, hold: float
    ) -> tuple[int, bool]:
        # One at a time per conversation in this process, so that its tickets are numbered in
        # the order take() was called; the advisory lock does the same across servers, and
        # makes the order of the numbers the order of the commits.
        async def queue(conn: Any) -> tuple[int, bool]:
            async with conn.transaction():
                await conn.execute(sql.NOT_DURABLE)
                await conn.execute(sql.ENTER_LOCK, (sql.INBOX_SPACE, conversation_id))
                await conn.execute(sql.DROP_LAPSED, (conversation_id,))
                row = await (
                    await conn.execute(sql.QUEUE, (conversation_id, wait + hold))
                ).fetchone()
                claimed = await conn.execute(
                    sql.CLAIM, {"hold": hold, "ticket": row[0], "id": conversation_id}
                )
                return int(row[0]), claimed.rowcount == 1

        async with self._entering.one_at_a_time(conversation_id):
            return await self.store.bounded(queue)

    async def enter(self, conversation_id: str, wait: float, hold: float) -> tuple[int, bool]:
        # ``wait`` is what the caller can wait in all (its turn's deadline): a server that is
        # down is a StoreError by then, not after the store's own, maybe longer, timeout. At
        # least ENTER_FLOOR: ``wait=0`` means "behind nobody", and the ticket's write still
        # takes its round trip.
        return await self.store.ask(
            entering(self._queue_ticket(conversation_id, wait, hold), self, conversation_id),
            f"queue a message of conversation {conversation_id}",
            within=max(wait, ENTER_FLOOR),
        )

    async def claim(self, conversation_id: str, ticket: int, hold: float) -> bool:
        async def claim(conn: Any) -> bool:
            args = {"hold": hold, "ticket": ticket, "id": conversation_id}
            return bool((await conn.execute(sql.CLAIM, args)).rowcount == 1)

        return await self.store.ask(
            self.store.bounded(claim), f"take conversation {conversation_id}"
        )

    async def load(self, conversation_id: str) -> Conversation | None:
        query = "SELECT * FROM conversations WHERE id = %s"
        rows = await self.store.ask(
            self.store.fetch(query, (conversation_id,)), "read a conversation"
        )
        return conversation_from(rows[0]) if rows else None

    async def save(
        self, conversation_id: str, ticket: int, conversation: Conversation, turn: Turn
    ) -> None:
        row = sql.no_nul(conversation_row(conversation))
        turned = sql.no_nul(turn_row(conversation_id, turn))

        async def save(conn: Any) -> None:
            async with conn.transaction():
                if await (await conn.execute(sql.LIVE, (ticket,))).fetchone() is None:
                    raise lapsed_turn(conversation_id)
                await conn.execute(sql.UPSERT_CONVERSATION, row)
                await conn.execute(sql.UPSERT_TURN, turned)

        await self.store.ask(self.store.bounded(save), f"save conversation {conversation_id}")

    async def _leave(self, conversation_id: str, ticket: int) -> None:
        try:

            async def leave(conn: Any) -> None:
                async with conn.transaction():
                    await conn.execute(sql.NOT_DURABLE)
                    await conn.execute(sql.LEAVE, (ticket,))

            await self.store.bounded(leave)
        except (psycopg.Error, TimeoutError) as exc:  # it lapses by itself
            log.warning(
                "conversation %s: its ticket stays until it lapses: %s", conversation_id, exc
            )
        finally:
            self.wakeups.wake(conversation_id)

    def leave(self, conversation_id: str, ticket: int) -> None:
        if not self.store.closed:
            leaving = self.store.loop.submit(self._leave(conversation_id, ticket))
            self._leaving.add(leaving)  # close() waits for it: a ticket left behind holds up
            leaving.add_done_callback(self._leaving.discard)  # the next message till it lapses

    # Strong references: the writer's task is only weakly held by its loop, so a store dropped
    # unclosed would be collected with its queue; it stays here until closed (atexit at the end).

    def wait_for_leaving(self, timeout: float | None) -> None:
        """Until the tickets being taken out are out: one left behind would hold up the next
        message (of another process) until it lapsed."""
        futures.wait(list(self._leaving), timeout)

    # -- readers (synchronous) ----------------------------------------------------------------

    def listed(self, status: str | None, limit: int, offset: int) -> list[Conversation]:
        filtered = "" if status is None else " WHERE status = %s"
        rows = self.store.read(
            f"SELECT * FROM conversations{filtered} ORDER BY updated_at DESC, n DESC"
            " LIMIT %s OFFSET %s",
            (*(() if status is None else (status,)), limit, offset),
        )
        return [conversation_from(row) for row in rows]

    def transcript(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        rows = self.store.read("SELECT * FROM conversations WHERE id = %s", (conversation_id,))
        if not rows:
            return None
        turns = self.store.read(
            "SELECT * FROM turns WHERE conversation_id = %s ORDER BY seq", (conversation_id,)
        )
        return conversation_from(rows[0]), [turn_from(row) for row in turns]


__all__ = ["PostgresTurns"]
