"""Conversations, the run store's second port (§12): who is waiting, their saved run, turns.

A conversation is the platform's id with its status and, while it waits, the saved state of
its run (``engine.suspend``: plain JSON, never a pickle). Every message is one turn: one run
record of its own (``RunRecord.conversation_id`` and ``turn`` link them) and one ``Turn`` in
the transcript.

Messages of one conversation are taken one at a time and in order, across processes: a turn
runs inside ``async with store.take(conversation_id, wait=...) as slot``. ``take`` queues the
message behind the ones that arrived before it and enters once they are done; ``slot`` holds
the conversation as it stood then, and ``slot.save`` writes its new state and the turn in one
transaction. A turn still queued after ``wait`` seconds raises ``ConversationBusy``. A
process that dies inside a turn holds the conversation for at most the ``hold`` it was given
(its deadline), so the next message is never blocked forever.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from csflow.engine.errors import StoreError

WAITING = "waiting"
ENDED = frozenset({"completed", "failed", "handoff", "expired"})
MAX_ID = 128
MAX_TEXT = 4_000


class ConversationBusy(StoreError):
    """The conversation's earlier messages were still being answered when ``wait`` ran out."""


@dataclass(slots=True)
class Conversation:
    """A conversation as the store keeps it.

    ``status`` is that of its last turn: ``waiting`` (then ``state`` is the saved run and
    ``expires_at`` when the ask gives up), or an ended one (``completed``, ``failed``,
    ``handoff``, ``expired``): a new message then starts a new run under the same id.
    """

    id: str
    status: str
    started_at: str  # ISO 8601 UTC, as ``now_iso``
    updated_at: str
    flow: str | None = None
    intent: dict[str, Any] | None = None  # {"name", "confidence"} of its first message
    state: dict[str, Any] | None = None  # engine.suspend's saved run, while waiting
    expires_at: str | None = None
    handoff: dict[str, Any] | None = None  # {"reason", "note", "intent"} once handed over
    turns: int = 0
    last_run_id: str | None = None

    @property
    def waiting(self) -> bool:
        return self.status == WAITING

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "flow": self.flow,
            "intent": self.intent,
            "started_at": self.started_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
            "handoff": self.handoff,
            "turns": self.turns,
        }


@dataclass(slots=True)
class Turn:
    """One message and its answer: what a transcript shows."""

    seq: int  # 1, 2, ... within the conversation
    at: str
    text: str
    status: str
    reply: str | None = None
    run_id: str | None = None
    flow: str | None = None
    intent: dict[str, Any] | None = None  # on the turn that classified the message
    handoff: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"dry_run": true}

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "text": self.text,
            "status": self.status,
            "reply": self.reply,
            "run_id": self.run_id,
            "flow": self.flow,
            "intent": self.intent,
            "handoff": self.handoff,
            "error": self.error,
            **self.extra,
        }


class TurnSlot(Protocol):
    """The conversation's one open turn: granted by ``ConversationStore.take``."""

    @property
    def conversation(self) -> Conversation | None:
        """The conversation as stored when the turn began; None for a new id."""
        ...

    async def save(self, conversation: Conversation, turn: Turn) -> None:
        """Write the conversation's new state and the turn together; durable on return."""
        ...


class ConversationStore(Protocol):
    """Where conversations live: ``SQLiteStore``, ``PostgresStore`` and ``MemoryStore``
    (``engine.store.memory``) are three; ``engine.store.inbox.take_turn`` is their ``take``."""

    def take(
        self, conversation_id: str, *, wait: float, hold: float
    ) -> AbstractAsyncContextManager[TurnSlot]:
        """Enter the conversation's next turn, in arrival order (ConversationBusy after
        ``wait`` s); a holder that vanished is passed over ``hold`` s after it entered."""
        ...

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        """The most recently updated first. Synchronous, like ``RunReader``."""
        ...

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        """A conversation and its transcript, oldest turn first."""
        ...


__all__ = [
    "ENDED",
    "MAX_ID",
    "MAX_TEXT",
    "WAITING",
    "Conversation",
    "ConversationBusy",
    "ConversationStore",
    "Turn",
    "TurnSlot",
]
