"""``MemoryStore``: the whole run store in this process, for a project with no store and tests.

Runs, conversations and turns are kept as the rows a database store writes (``codec``), so a
record reads back exactly as it would from SQLite or PostgreSQL: redacted, JSON round-tripped.
Nothing outlives the process, and nothing is shared with another one: a ``csflow serve``
with several workers needs a real store for its conversations.

The inbox is a dict of tickets per conversation, in arrival order; ``take`` is the same loop as
every store's (``inbox.take_turn``), woken at once when a turn ends.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Awaitable, Container, Generator, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord
from csflow.engine.store.codec import (
    conversation_from,
    conversation_row,
    matches,
    missing,
    run_filters,
    run_from,
    run_row,
    step_from,
    step_rows,
    turn_from,
    turn_row,
)
from csflow.engine.store.conversations import WAITING, Conversation, Turn, TurnSlot
from csflow.engine.store.inbox import Wakeups, lapsed_turn, take_turn
from csflow.engine.store.retention import KEEP_DEFAULT, Keep, PruneSchedule

OPEN = (IN_FLIGHT, WAITING)  # never pruned, as in every store


def _let_go(rows: Iterable[dict[str, Any]], keep: Keep, at: str, kept: Container[str]) -> list[str]:
    """The ids ``keep`` lets go, as the SQL stores choose them: of the rows newest first,
    those past the newest ``keep.runs`` or older than its age, except the open ones."""
    cutoff = keep.cutoff()
    newest = sorted(rows, key=lambda r: (r[at], r["_order"]), reverse=True)
    return [
        r["id"]
        for i, r in enumerate(newest)
        if r["status"] not in kept
        and ((keep.runs is not None and i >= keep.runs) or (cutoff is not None and r[at] < cutoff))
    ]


class _Done:
    """What ``finish`` returns: the record is already kept when it is called."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class MemoryStore:
    """A ``RunStore`` in memory, keeping what ``keep`` says of runs and conversations."""

    def __init__(self, *, keep: Keep = KEEP_DEFAULT) -> None:
        self.keep = keep
        self.prunes = PruneSchedule()
        self.wakeups = Wakeups()
        self._lock = threading.Lock()  # readers may be called from a thread, as for any store
        self._order = itertools.count()
        self._runs: dict[str, dict[str, Any]] = {}
        self._steps: dict[str, list[dict[str, Any]]] = {}
        self._conversations: dict[str, dict[str, Any]] = {}
        self._turns: dict[str, dict[int, dict[str, Any]]] = {}
        self._tickets: dict[str, dict[int, float]] = {}  # id -> ticket -> when it lapses
        self._next_ticket = itertools.count(1)

    # -- RunWriter -----------------------------------------------------------------------------

    def _keep(self, record: RunRecord) -> None:
        encoded = record.encoded()
        row = run_row(encoded)
        with self._lock:
            known = self._runs.get(row["id"])
            row["_order"] = next(self._order) if known is None else known["_order"]
            self._runs[row["id"]] = row
            self._steps[row["id"]] = step_rows(encoded)
            limit = self.keep.runs
            # A tenth's slack over the count, so that a full store does not sort every run.
            over = limit is not None and len(self._runs) > limit * 1.1
            if over or self.prunes.finished(row["status"] not in OPEN):
                self._prune_runs()
                self._prune_conversations()

    def _prune_runs(self) -> None:
        for rid in _let_go(self._runs.values(), self.keep, "started_at", OPEN):
            del self._runs[rid]
            del self._steps[rid]

    async def begin(self, record: RunRecord) -> None:
        self._keep(record)

    def finish(self, record: RunRecord) -> Awaitable[None]:
        self._keep(record)
        return _Done()

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass

    # -- RunReader -----------------------------------------------------------------------------

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
        with self._lock:
            found = [r for r in self._runs.values() if matches(r, filters)]
        found.sort(key=lambda r: (r["started_at"], r["_order"]), reverse=True)
        return [run_from(r) for r in found[offset : offset + limit]]

    def last_failures(self) -> dict[str, RunRecord]:
        latest: dict[str, dict[str, Any]] = {}
        with self._lock:
            for row in self._runs.values():
                if row["status"] != "failed":
                    continue
                known = latest.get(row["flow"])
                if known is None or (row["started_at"], row["_order"]) > (
                    known["started_at"],
                    known["_order"],
                ):
                    latest[row["flow"]] = row
        return {flow: run_from(latest[flow]) for flow in sorted(latest)}

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            row = self._runs.get(run_id)
            if row is None and len(run_id) >= 4:
                found = [r for rid, r in self._runs.items() if rid.startswith(run_id)]
                if len(found) > 1:
                    raise StoreError(f"more than one run id starts with '{run_id}'")
                row = found[0] if found else None
            if row is None:
                return None
            steps = list(self._steps[row["id"]])
        record = run_from(row)
        record.steps = [step_from(s) for s in steps]
        return record

    # -- ConversationStore ---------------------------------------------------------------------

    def take(
        self, conversation_id: str, *, wait: float, hold: float
    ) -> AbstractAsyncContextManager[TurnSlot]:
        return take_turn(self, conversation_id, wait=wait, hold=hold)

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        with self._lock:
            rows = [
                row
                for row in self._conversations.values()
                if status is None or row["status"] == status
            ]
        rows.sort(key=lambda r: (r["updated_at"], r["_order"]), reverse=True)
        return [conversation_from(r) for r in rows[offset : offset + limit]]

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        with self._lock:
            row = self._conversations.get(conversation_id)
            turns = sorted(self._turns.get(conversation_id, {}).items())
        if row is None:
            return None
        return conversation_from(row), [turn_from(t) for _, t in turns]

    # -- the inbox (engine.store.inbox.Inbox) --------------------------------------------------

    def _claim(self, conversation_id: str, ticket: int, hold: float) -> bool:
        now = time.monotonic()
        tickets = self._tickets.get(conversation_id, {})
        live = [t for t, lapses in tickets.items() if lapses > now]
        if ticket not in live or min(live) != ticket:
            return False
        tickets[ticket] = now + hold
        return True

    async def enter(self, conversation_id: str, wait: float, hold: float) -> tuple[int, bool]:
        now = time.monotonic()
        with self._lock:
            tickets = self._tickets.setdefault(conversation_id, {})
            for lapsed in [t for t, lapses in tickets.items() if lapses <= now]:
                del tickets[lapsed]
            ticket = next(self._next_ticket)
            tickets[ticket] = now + wait + hold
            return ticket, self._claim(conversation_id, ticket, hold)

    async def claim(self, conversation_id: str, ticket: int, hold: float) -> bool:
        with self._lock:
            return self._claim(conversation_id, ticket, hold)

    async def load(self, conversation_id: str) -> Conversation | None:
        with self._lock:
            row = self._conversations.get(conversation_id)
        return None if row is None else conversation_from(row)

    async def save(
        self, conversation_id: str, ticket: int, conversation: Conversation, turn: Turn
    ) -> None:
        row = conversation_row(conversation)
        turned = turn_row(conversation_id, turn)
        empty = missing(row, "conversations") + missing(turned, "turns")
        if empty:  # as a database's NOT NULL would refuse them, before anything is written
            raise StoreError(f"conversation {conversation_id}: no value for {', '.join(empty)}")
        with self._lock:
            lapses = self._tickets.get(conversation_id, {}).get(ticket, 0.0)
            if lapses <= time.monotonic():
                raise lapsed_turn(conversation_id)
            known = self._conversations.get(conversation_id)
            row["_order"] = next(self._order) if known is None else known["_order"]
            self._conversations[conversation_id] = row
            self._turns.setdefault(conversation_id, {})[turn.seq] = turned
            limit = self.keep.runs
            if limit is not None and len(self._conversations) > limit * 1.1:
                self._prune_conversations()

    def _prune_conversations(self) -> None:
        for cid in _let_go(self._conversations.values(), self.keep, "updated_at", (WAITING,)):
            del self._conversations[cid]
            self._turns.pop(cid, None)

    def leave(self, conversation_id: str, ticket: int) -> None:
        with self._lock:
            tickets = self._tickets.get(conversation_id, {})
            tickets.pop(ticket, None)
            if not tickets:
                self._tickets.pop(conversation_id, None)
        self.wakeups.wake(conversation_id)


__all__ = ["MemoryStore"]
