"""Conversations, the same on every store: take, save, read back, and the order of turns.

No test sleeps: a turn that must wait is seen waiting (its ``take`` has not entered) by
awaiting the holder's own events, and the times asserted are lower bounds the store must
honour (a ``wait``, a ``hold``), with generous upper ones.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from support import within

from csflow.engine.errors import StoreError
from csflow.engine.store.conversations import Conversation, ConversationBusy, Turn

AT = "2026-11-20T10:00:00.000Z"


def conversation(cid: str = "chat-1", turns: int = 1, **kw: Any) -> Conversation:
    fields: dict[str, Any] = {"status": "waiting", "started_at": AT, "updated_at": AT, **kw}
    return Conversation(id=cid, turns=turns, **fields)


def turn(seq: int = 1, text: str = "where is my order?", **kw: Any) -> Turn:
    return Turn(seq=seq, at=AT, text=text, status=kw.pop("status", "waiting"), **kw)


async def test_a_turn_saves_the_conversation_and_its_transcript(store: Any) -> None:
    state = {"frames": [{"flow": "wismo", "step": 2, "vars": {"email": "a@b.co"}}]}
    async with store.take("chat-1", wait=5, hold=5) as slot:
        assert slot.conversation is None  # a new id
        first = conversation(
            flow="wismo",
            intent={"name": "wismo", "confidence": 0.91},
            state=state,
            expires_at="2026-11-20T10:30:00.000Z",
            last_run_id="run-1",
        )
        await slot.save(
            first,
            turn(1, reply="Which order?", run_id="run-1", flow="wismo",
                 intent={"name": "wismo", "confidence": 0.91}, extra={"dry_run": True}),
        )  # fmt: skip
        assert slot.conversation == first
    async with store.take("chat-1", wait=5, hold=5) as slot:
        assert slot.conversation == first  # as the last turn left it
        handoff = {"reason": "asked", "note": "wants a person", "intent": "wismo"}
        await slot.save(
            conversation(status="handoff", turns=2, flow="wismo", handoff=handoff,
                         updated_at="2026-11-20T10:01:00.000Z"),
            turn(2, text="a person please", status="handoff", handoff=handoff),
        )  # fmt: skip
    found = await asyncio.to_thread(store.get_conversation, "chat-1")
    assert found is not None
    stored, turns = found
    assert (stored.status, stored.turns, stored.handoff["note"], stored.state) == (
        "handoff",
        2,
        "wants a person",
        None,
    )
    assert [t.as_dict() for t in turns] == [
        {"seq": 1, "at": AT, "text": "where is my order?", "status": "waiting",
         "reply": "Which order?", "run_id": "run-1", "flow": "wismo",
         "intent": {"name": "wismo", "confidence": 0.91}, "handoff": None, "error": None,
         "dry_run": True},
        {"seq": 2, "at": AT, "text": "a person please", "status": "handoff", "reply": None,
         "run_id": None, "flow": None, "intent": None, "handoff": handoff, "error": None},
    ]  # fmt: skip
    assert store.get_conversation("nobody") is None


async def test_conversations_are_listed_most_recent_first_by_status(store: Any) -> None:
    for i, status in enumerate(["waiting", "completed", "waiting"]):
        cid = f"chat-{i}"
        async with store.take(cid, wait=5, hold=5) as slot:
            at = f"2026-11-20T10:0{i}:00.000Z"
            await slot.save(conversation(cid, status=status, updated_at=at), turn())
    listed = await asyncio.to_thread(store.list_conversations)
    assert [c.id for c in listed] == ["chat-2", "chat-1", "chat-0"]
    assert [c.id for c in store.list_conversations(status="waiting")] == ["chat-2", "chat-0"]
    assert [c.id for c in store.list_conversations(limit=1, offset=1)] == ["chat-1"]
    assert listed[0].summary()["turns"] == 1


async def test_turns_of_one_conversation_enter_one_at_a_time_in_arrival_order(store: Any) -> None:
    log: list[tuple[str, int]] = []
    inside = 0

    async def message(i: int) -> None:
        nonlocal inside
        async with store.take("chat-1", wait=30, hold=30) as slot:
            inside += 1
            log.append(("in", i))
            assert inside == 1, f"message {i} entered while another turn was open"
            seen = slot.conversation.turns if slot.conversation else 0
            await slot.save(conversation(turns=seen + 1), turn(seen + 1, f"message {i}"))
            inside -= 1
            log.append(("out", i))

    await within(asyncio.gather(*(message(i) for i in range(8))), what="8 turns")
    assert log == [step for i in range(8) for step in (("in", i), ("out", i))]
    found = store.get_conversation("chat-1")
    assert found is not None
    assert found[0].turns == 8  # each turn saw the one before: none overlapped
    assert [t.text for t in found[1]] == [f"message {i}" for i in range(8)]


async def test_two_conversations_do_not_wait_for_each_other(store: Any) -> None:
    # wait=0: chat-2 enters at once or fails at once
    async with store.take("chat-1", wait=5, hold=30), store.take("chat-2", wait=0, hold=5) as other:
        assert other.conversation is None


async def test_a_turn_queued_past_its_wait_is_busy_and_leaves_the_queue(store: Any) -> None:
    async with store.take("chat-1", wait=5, hold=30):
        started = time.monotonic()
        with pytest.raises(ConversationBusy, match="chat-1 is still answering"):
            async with store.take("chat-1", wait=0.3, hold=5):
                pytest.fail("entered while the conversation was held")
        assert time.monotonic() - started >= 0.3
    # The busy message's ticket is gone: the next one enters at once, held up by nothing.
    async with store.take("chat-1", wait=0, hold=5):
        pass


async def test_a_waiter_cancelled_in_the_queue_holds_up_nobody(store: Any) -> None:
    queued = asyncio.Event()

    async def waiter() -> None:
        queued.set()
        async with store.take("chat-1", wait=30, hold=30):
            pytest.fail("entered while the conversation was held")

    async with store.take("chat-1", wait=5, hold=30):
        task = asyncio.create_task(waiter())
        # The waiter runs on into take() until the ticket's write suspends it: cancelled then.
        await within(queued.wait(), what="the waiter to queue")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    async with store.take("chat-1", wait=2, hold=5):
        pass


async def test_a_holder_that_vanished_is_passed_over_after_its_hold(backing: Any) -> None:
    store = backing.open()
    other = backing.open()  # another store object on the same backing: another process
    abandoned = other.take("chat-1", wait=5, hold=0.5)
    slot = await abandoned.__aenter__()  # entered, and never left: its process died
    started = time.monotonic()
    async with store.take("chat-1", wait=20, hold=5) as next_turn:
        waited = time.monotonic() - started
        assert next_turn.conversation is None
        await next_turn.save(conversation(), turn(1, "after the vanished one"))
    assert 0.3 <= waited < 15
    with pytest.raises(StoreError, match="ran past its hold"):  # its late answer is refused
        await slot.save(conversation(turns=9), turn(9, "too late"))
    found = store.get_conversation("chat-1")
    assert found is not None and [t.text for t in found[1]] == ["after the vanished one"]


async def test_a_save_is_one_transaction_conversation_and_turn(store: Any) -> None:
    async with store.take("chat-1", wait=5, hold=5) as slot:
        await slot.save(conversation(turns=1), turn(1, "first"))
    async with store.take("chat-1", wait=5, hold=5) as slot:
        broken = Turn(seq=2, at=None, text="second", status="waiting")  # type: ignore[arg-type]
        with pytest.raises(StoreError):
            await slot.save(conversation(status="completed", turns=2), broken)
    found = store.get_conversation("chat-1")
    assert found is not None
    assert (found[0].status, found[0].turns) == ("waiting", 1)  # not half saved
    assert [t.text for t in found[1]] == ["first"]


async def test_a_lone_surrogate_in_a_customers_text_is_kept_as_its_escape(store: Any) -> None:
    async with store.take("chat-1", wait=5, hold=5) as slot:
        state = {"vars": {"said": "ORD-1003\ud800"}}
        await slot.save(conversation(state=state), turn(1, "ORD-1003\ud800 \U0001f600"))
    found = store.get_conversation("chat-1")
    assert found is not None
    assert found[0].state == state  # JSON: the escape reads back as the same string
    assert found[1][0].text == "ORD-1003\\ud800 \U0001f600"


@pytest.mark.parametrize("bad", ["", "x" * 129, "chat 1", "chat/1"])
async def test_a_conversation_id_outside_the_spec_is_refused(store: Any, bad: str) -> None:
    with pytest.raises(StoreError, match="a conversation id is 1 to 128"):
        async with store.take(bad, wait=1, hold=1):
            pass
