"""Taking a conversation's turns one at a time, in arrival order: the loop every store shares.

A store keeps an inbox: one ticket per message that is queued or being answered, numbered in
the order the messages came (across processes, where the store is shared). A store gives the
primitives (``Inbox``), and ``take_turn`` is the rest, the same for all of them:

1. ``enter`` queues the message: its ticket is live until ``wait + hold`` seconds from now
   (it may wait that long, then hold the turn that long), and it enters at once when no live
   ticket is before it;
2. else it asks again (``claim``) until every earlier ticket is gone or has lapsed: a local
   turn that ends wakes the waiters of its conversation at once, and a turn that ends in
   another process is seen by polling, every 10 ms at first, then every 50 ms;
3. entering makes the ticket live for ``hold`` seconds from then: a holder that vanished
   (a process killed mid-turn) is passed over once that has run out;
4. ``leave`` takes the ticket out, whatever happened: on return, on an error, on a cancel
   (also one that came while the ticket was being written).

``ConversationBusy`` is raised when the ticket is still queued after ``wait`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Protocol

from csflow.engine.errors import StoreError
from csflow.engine.store.conversations import (
    MAX_ID,
    Conversation,
    ConversationBusy,
    Turn,
    TurnSlot,
)

FIRST_POLL = 0.01
LAST_POLL = 0.05
_ID = re.compile(r"[A-Za-z0-9._:-]+")


class Wakeups:
    """The waiters of each conversation in this process, woken when a turn of it ends here.

    Thread-safe: a store's writer thread (or its own loop) wakes waiters on any loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[str, dict[asyncio.Event, asyncio.AbstractEventLoop]] = {}

    def listen(self, conversation_id: str) -> asyncio.Event:
        event = asyncio.Event()
        with self._lock:
            self._waiting.setdefault(conversation_id, {})[event] = asyncio.get_running_loop()
        return event

    def forget(self, conversation_id: str, event: asyncio.Event) -> None:
        with self._lock:
            waiting = self._waiting.get(conversation_id, {})
            waiting.pop(event, None)
            if not waiting:
                self._waiting.pop(conversation_id, None)

    def wake(self, conversation_id: str) -> None:
        with self._lock:
            waiting = list(self._waiting.get(conversation_id, {}).items())
        for event, loop in waiting:
            # RuntimeError: that loop has closed; its waiter is gone with it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)


class Inbox(Protocol):
    """What a store does for ``take_turn``: its tickets, and the turn's one transaction."""

    wakeups: Wakeups

    async def enter(self, conversation_id: str, wait: float, hold: float) -> tuple[int, bool]:
        """Queue a ticket; (its number, whether it is the first live one and so entered)."""
        ...

    async def claim(self, conversation_id: str, ticket: int, hold: float) -> bool:
        """Enter the turn if no live ticket is before ``ticket`` (and it is live itself)."""
        ...

    async def load(self, conversation_id: str) -> Conversation | None: ...

    async def save(
        self, conversation_id: str, ticket: int, conversation: Conversation, turn: Turn
    ) -> None:
        """The conversation and its turn in one transaction; StoreError once the ticket lapsed."""
        ...

    def leave(self, conversation_id: str, ticket: int) -> None:
        """Take the ticket out without blocking; wake the local waiters once it is out."""
        ...


def check_id(conversation_id: str) -> None:
    """StoreError unless ``conversation_id`` is 1 to 128 of ``[A-Za-z0-9._:-]`` (§12)."""
    if len(conversation_id) > MAX_ID or not _ID.fullmatch(conversation_id):
        raise StoreError(
            f"a conversation id is 1 to {MAX_ID} characters of [A-Za-z0-9._:-], not"
            f" {conversation_id[:40]!r}"
        )


def lapsed_turn(conversation_id: str) -> StoreError:
    """What ``save`` raises once the turn held its conversation past its ``hold``."""
    return StoreError(
        f"the turn of conversation {conversation_id} ran past its hold: another message may"
        " be answered now, so its state was not saved"
    )


class Slot:
    """The open turn ``take_turn`` yields (``TurnSlot``)."""

    __slots__ = ("_conversation", "_id", "_inbox", "_ticket")

    def __init__(
        self, inbox: Inbox, conversation_id: str, ticket: int, conversation: Conversation | None
    ) -> None:
        self._inbox = inbox
        self._id = conversation_id
        self._ticket = ticket
        self._conversation = conversation

    @property
    def conversation(self) -> Conversation | None:
        return self._conversation

    async def save(self, conversation: Conversation, turn: Turn) -> None:
        if conversation.id != self._id:
            raise StoreError(
                f"the turn of conversation {self._id} cannot save conversation {conversation.id}"
            )
        await self._inbox.save(self._id, self._ticket, conversation, turn)
        self._conversation = conversation


async def entering(
    queued: Awaitable[tuple[int, bool]], inbox: Inbox, conversation_id: str
) -> tuple[int, bool]:
    """``await queued`` (a ticket being written); cancelled meanwhile, the ticket may be
    written all the same: it is taken out again once it is, or it would hold up the messages
    behind it until it lapsed."""
    task = asyncio.ensure_future(queued)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def take_out(done: asyncio.Future[tuple[int, bool]]) -> None:
            if not done.cancelled() and done.exception() is None:
                inbox.leave(conversation_id, done.result()[0])

        task.add_done_callback(take_out)
        raise


async def _turn_comes(
    inbox: Inbox, conversation_id: str, ticket: int, *, wait: float, hold: float, since: float
) -> None:
    delay = FIRST_POLL
    while True:
        woken = inbox.wakeups.listen(conversation_id)  # before asking: no wake-up is missed
        try:
            if await inbox.claim(conversation_id, ticket, hold):
                return
            left = since + wait - time.monotonic()
            if left <= 0:
                raise ConversationBusy(
                    f"conversation {conversation_id} is still answering its earlier messages"
                    f" after {wait:g} s"
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay, left)):
                    await woken.wait()
        finally:
            inbox.wakeups.forget(conversation_id, woken)
        delay = min(delay * 2, LAST_POLL)


@contextlib.asynccontextmanager
async def take_turn(
    inbox: Inbox, conversation_id: str, *, wait: float, hold: float
) -> AsyncIterator[TurnSlot]:
    """``ConversationStore.take`` over ``inbox``'s primitives (see the module's docstring)."""
    check_id(conversation_id)
    since = time.monotonic()
    queued = inbox.enter(conversation_id, wait, hold)
    ticket, entered = await entering(queued, inbox, conversation_id)
    try:
        if not entered:
            await _turn_comes(inbox, conversation_id, ticket, wait=wait, hold=hold, since=since)
        yield Slot(inbox, conversation_id, ticket, await inbox.load(conversation_id))
    finally:
        inbox.leave(conversation_id, ticket)


__all__ = ["Inbox", "Slot", "Wakeups", "check_id", "entering", "lapsed_turn", "take_turn"]
