"""A run store in memory: for a ``Project`` loaded without one, and for unit tests.

It keeps everything in this process, so a conversation ends with the process; a project
that must survive restarts or span workers uses SQLite or PostgreSQL (``adapters.stores``).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

from csflow.engine.store import RunRecord
from csflow.engine.store.conversations import Conversation, ConversationBusy, Turn


class _Slot:
    __slots__ = ("_store", "conversation")

    def __init__(self, store: MemoryStore, conversation: Conversation | None) -> None:
        self._store = store
        self.conversation = conversation

    async def save(self, conversation: Conversation, turn: Turn) -> None:
        self._store._conversations[conversation.id] = copy.deepcopy(conversation)
        self._store._turns.setdefault(conversation.id, []).append(copy.deepcopy(turn))


async def _done() -> None:
    return None


class MemoryStore:
    """Runs and conversations in dicts; turns of one conversation in arrival order."""

    def __init__(self, max_runs: int = 10_000) -> None:
        self.max_runs = max_runs
        self._runs: dict[str, RunRecord] = {}
        self._conversations: dict[str, Conversation] = {}
        self._turns: dict[str, list[Turn]] = {}
        # asyncio.Lock wakes its waiters first come, first served: arrival order.
        self._locks: dict[str, asyncio.Lock] = {}

    # -- RunWriter --------------------------------------------------------------------------

    async def begin(self, record: RunRecord) -> None:
        self._keep(record)

    def finish(self, record: RunRecord) -> Awaitable[None]:
        self._keep(record)
        return _done()

    def _keep(self, record: RunRecord) -> None:
        self._runs.pop(record.id, None)
        self._runs[record.id] = record
        while len(self._runs) > self.max_runs:
            del self._runs[next(iter(self._runs))]

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        return None

    # -- RunReader --------------------------------------------------------------------------

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
        wanted = "failed" if failed else status
        found = [
            r
            for r in reversed(self._runs.values())
            if (flow is None or r.flow == flow)
            and (wanted is None or r.status == wanted)
            and (since is None or r.started_at >= since)
            and (until is None or r.started_at < until)
            and (conversation_id is None or r.conversation_id == conversation_id)
        ]
        found.sort(key=lambda r: r.started_at, reverse=True)
        return [_summary(r) for r in found[offset : offset + limit]]

    def last_failures(self) -> dict[str, RunRecord]:
        out: dict[str, RunRecord] = {}
        for r in self._runs.values():
            if r.status == "failed" and (
                r.flow not in out or r.started_at >= out[r.flow].started_at
            ):
                out[r.flow] = r
        return dict(sorted(out.items()))

    def get_run(self, run_id: str) -> RunRecord | None:
        record = self._runs.get(run_id)
        if record is None and len(run_id) >= 4:
            matches = [r for i, r in self._runs.items() if i.startswith(run_id)]
            record = matches[0] if len(matches) == 1 else None
        return record

    # -- ConversationStore ------------------------------------------------------------------

    @asynccontextmanager
    async def take(self, conversation_id: str, *, wait: float, hold: float) -> AsyncIterator[_Slot]:
        lock = self._locks.setdefault(conversation_id, asyncio.Lock())
        try:
            await asyncio.wait_for(lock.acquire(), wait)
        except TimeoutError:
            raise ConversationBusy(
                f"conversation '{conversation_id}' is still answering an earlier message"
            ) from None
        try:
            yield _Slot(self, copy.deepcopy(self._conversations.get(conversation_id)))
        finally:
            lock.release()

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        found = [c for c in self._conversations.values() if status is None or c.status == status]
        found.sort(key=lambda c: c.updated_at, reverse=True)
        return [copy.deepcopy(c) for c in found[offset : offset + limit]]

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            return None
        return copy.deepcopy(conversation), copy.deepcopy(self._turns.get(conversation_id, []))


def _summary(record: RunRecord) -> RunRecord:
    out: RunRecord = copy.copy(record)
    out.steps = []
    return out


__all__ = ["MemoryStore"]
