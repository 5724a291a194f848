"""``ask`` and ``handoff`` (§12): a run that waits, is saved as JSON, and goes on exactly there.

Conversations here are kept in memory (``Project.say`` without a store); the stores' own
tests check that SQLite and PostgreSQL keep them the same way.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from unit_support import ProjectFiles

from csflow import Problem, UsageError
from csflow.engine.conversation import EXPIRED, REPHRASE, RESTARTED
from csflow.engine.suspend import Suspended

INTENTS = """
    threshold: 0.6
    entities:
      order_number: {pattern: '(?i)\\b(?:ord-?)?(\\d{4,6})\\b', format: "ORD-{1}"}
      email: {type: email}
    intents:
      wismo:
        flow: wismo
        examples: [where is my order, has my parcel shipped, track my order, wheres my stuff, order status]
      refund:
        flow: refund
        examples: [I want a refund, money back please, refund my charge, give me a refund, refund it]
"""

# The write before the ask appends to a file: the test counts how often it really ran.
ACTIONS = """
    from pathlib import Path
    from csflow import action

    @action("note.write")
    async def write(path: str, text: str) -> dict:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text + "\\n")
        return {"written": text}

    @action("note.opaque")
    async def opaque() -> object:
        return {"handle": object()}
"""

FIND = """
    name: find
    inputs:
      order_number: {type: string, required: false}
    outputs:
      order_number: string
      email: string
    steps:
      - id: ask_number
        if: order_number is none
        ask: "What's your order number?"
        entity: order_number
        reprompt: "I need an order number, like ORD-1001."
        attempts: 2
        on_error: give_up
      - id: ask_email
        ask: "And your email?"
        entity: email
      - return: {}
      - id: give_up
        handoff: {reason: order_not_identified, note: "No order number after {{ 2 }} answers."}
"""

WISMO = """
    name: wismo
    inputs:
      order_number: {type: string, required: false}
      log: {type: string, required: false}
    outputs:
      order_number: string
      email: string
      counter: integer
    steps:
      - set: {counter: 1, log: "{{ log or 'none' }}"}
      - id: wrote
        if: log != "none"
        call: note.write
        with: {path: "{{ log }}", text: "written once"}
      - id: found
        flow: find
        with: {order_number: "{{ order_number }}"}
      - set: {counter: "{{ counter + 1 }}"}
      - reply: "Order {{ order_number }} for {{ email }} ({{ steps.wrote.data.written if steps.wrote is defined else 'no write' }}, {{ counter }})"
"""

REFUND = """
    name: refund
    inputs:
      amount: {type: integer, required: false}
    steps:
      - id: why
        ask: "Why would you like a refund?"
        into: reason
      - handoff: {reason: refund_review, note: "Customer says: {{ reason }}"}
"""


@pytest.fixture
def project(proj: ProjectFiles) -> Any:
    proj.write(
        flows={"wismo": WISMO, "find": FIND, "refund": REFUND},
        actions={"note": ACTIONS},
        files={"intents.yaml": INTENTS},
    )
    return proj.load(environ={})


def say(project: Any, cid: str, text: str, **kwargs: Any) -> Any:
    return asyncio.run(project.say(cid, text, **kwargs))


def test_a_run_asks_in_a_sub_flow_and_goes_on_exactly_there(project: Any, tmp_path: Path) -> None:
    log = tmp_path / "writes.txt"
    first = say(project, "c1", "where is my order?", context={"log": str(log)})
    assert (first.status, first.reply) == ("waiting", "What's your order number?")
    assert first.intent is not None and first.intent["name"] == "wismo"
    assert first.path == ["wrote", "found", "found.ask_number"]

    second = say(project, "c1", "it's ord 1004")
    assert (second.status, second.reply) == ("waiting", "And your email?")
    assert second.path == ["found", "found.ask_number", "found.ask_email"]

    third = say(project, "c1", "jane@example.com please")
    assert third.status == "completed"
    assert third.outputs == {"order_number": "ORD-1004", "email": "jane@example.com", "counter": 2}
    # steps.wrote, from the first turn, is still there in the third; the write ran once.
    assert third.reply == "Order ORD-1004 for jane@example.com (written once, 2)"
    assert log.read_text() == "written once\n"
    assert len({first.run_id, second.run_id, third.run_id}) == 3  # a run per turn


def test_an_answer_without_the_entity_is_asked_again_then_the_step_fails(project: Any) -> None:
    assert say(project, "c2", "where is my order").status == "waiting"
    again = say(project, "c2", "I don't know it")
    assert (again.status, again.reply) == ("waiting", "I need an order number, like ORD-1001.")
    over = say(project, "c2", "still no idea")
    assert over.status == "handoff"
    assert over.handoff == {
        "reason": "order_not_identified",
        "note": "No order number after 2 answers.",
        "intent": "wismo",
    }
    failed = next(s for s in over.steps if s.id == "found.ask_number")
    assert failed.ok is False and failed.error is not None
    assert failed.error["kind"] == "validation"


def test_an_ask_without_entity_takes_the_trimmed_text(project: Any) -> None:
    first = say(project, "c3", "I want a refund")
    assert (first.status, first.reply) == ("waiting", "Why would you like a refund?")
    done = say(project, "c3", "   it arrived broken  ")
    assert done.status == "handoff"
    assert done.handoff is not None and done.handoff["note"] == "Customer says: it arrived broken"


def test_a_conversation_that_ended_starts_anew_under_the_same_id(project: Any) -> None:
    say(project, "c4", "I want a refund")
    say(project, "c4", "broken")
    again = say(project, "c4", "where is my order")
    assert again.status == "waiting" and again.intent is not None
    assert again.intent["name"] == "wismo"
    found = project.conversations.get_conversation("c4")
    assert found is not None
    conversation, turns = found
    assert [t.seq for t in turns] == [1, 2, 3]
    assert [t.status for t in turns] == ["waiting", "handoff", "waiting"]
    assert conversation.flow == "wismo"


def test_past_its_timeout_a_waiting_conversation_expires(project: Any) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    say(project, "c5", "where is my order", now=start)
    late = say(project, "c5", "ORD-1004", now=start + dt.timedelta(minutes=31))
    assert (late.status, late.reply) == ("expired", EXPIRED)
    fresh = say(project, "c5", "where is my order", now=start + dt.timedelta(minutes=32))
    assert fresh.status == "waiting" and fresh.path[-1] == "found.ask_number"


def test_within_its_timeout_it_does_not_expire(project: Any) -> None:
    start = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    say(project, "c6", "where is my order", now=start)
    assert say(project, "c6", "ORD-1004", now=start + dt.timedelta(minutes=29)).status == "waiting"


def test_a_flow_changed_while_waiting_is_not_resumed(proj: ProjectFiles, project: Any) -> None:
    say(project, "c7", "where is my order")
    stored = project.conversations
    proj.write(flows={"find": FIND.replace("And your email?", "Your e-mail, please?")})
    changed = proj.load(environ={})
    changed._memory = stored  # the same conversations, a new version of the flows
    result = say(changed, "c7", "ORD-1004")
    assert (result.status, result.reply) == ("failed", RESTARTED)
    assert result.error is not None and result.error["kind"] == "flow_changed"
    assert "find" in result.error["message"]
    assert say(changed, "c7", "where is my order").status == "waiting"  # afresh


def test_a_flow_changed_only_in_comments_still_resumes(proj: ProjectFiles, project: Any) -> None:
    say(project, "c8", "where is my order")
    stored = project.conversations
    proj.write(flows={"find": FIND + "\n# a comment only\n"})
    changed = proj.load(environ={})
    changed._memory = stored
    assert say(changed, "c8", "ORD-1004").reply == "And your email?"


def test_the_saved_state_is_plain_json(project: Any) -> None:
    first = say(project, "c9", "where is my order", context={"order_number": None})
    assert first.suspended is not None
    text = json.dumps(first.suspended.to_json())
    back = Suspended.from_json(json.loads(text))
    assert [f.flow for f in back.frames] == ["wismo", "find"]
    assert back.frames[0].variables["counter"] == 1


def test_a_value_that_cannot_be_kept_fails_the_ask(proj: ProjectFiles) -> None:
    proj.write(
        flows={
            "keeps": """
                name: keeps
                steps:
                  - id: opaque
                    call: note.opaque
                  - id: question
                    ask: "Anything else?"
                    into: more
                    on_error: told
                  - reply: "no"
                  - id: told
                    reply: "I can't wait for an answer here."
            """
        },
        actions={"note": ACTIONS},
    )
    result = asyncio.run(proj.load(environ={}).say("k1", "hi", flow="keeps"))
    assert (result.status, result.reply) == ("completed", "I can't wait for an answer here.")
    step = next(s for s in result.steps if s.id == "question")
    assert step.error is not None
    assert step.error["message"].startswith("'opaque.data.handle' holds a Python object value")


def test_two_messages_at_once_take_turns(project: Any) -> None:
    async def both() -> list[Any]:
        await project.say("c10", "where is my order")
        return list(
            await asyncio.gather(
                project.say("c10", "ORD-1004"), project.say("c10", "jane@example.com")
            )
        )

    first, second = asyncio.run(both())
    assert (first.status, first.reply) == ("waiting", "And your email?")
    assert second.status == "completed"
    assert second.outputs["email"] == "jane@example.com"


def test_a_message_not_understood_without_a_fallback_is_asked_to_rephrase(project: Any) -> None:
    result = say(project, "c11", "asdf")
    assert (result.status, result.reply) == ("completed", REPHRASE)
    assert result.intent is not None and result.intent["name"] is None


def test_a_flow_that_needs_more_than_words_hands_over(proj: ProjectFiles) -> None:
    proj.write(
        flows={
            "needs": "name: needs\ninputs: {city: string}\nsteps:\n  - reply: '{{ city }}'\n",
        },
        files={"intents.yaml": INTENTS.replace("flow: refund", "flow: needs")},
    )
    flows = dict(wismo=WISMO, find=FIND)
    proj.write(flows=flows, actions={"note": ACTIONS})
    result = asyncio.run(proj.load(environ={}).say("n1", "I want a refund"))
    assert result.status == "handoff"
    assert result.handoff is not None and result.handoff["reason"] == "missing_details"
    assert "city" in result.handoff["note"]


@pytest.mark.parametrize(
    ("cid", "text", "context", "message"),
    [
        ("x" * 129, "hi", None, "1 to 128 characters"),
        ("has space", "hi", None, "1 to 128 characters"),
        ("ok", "   ", None, "text is empty"),
        ("ok", "a" * 4001, None, "4001 characters; at most 4000"),
        ("ok", "hi", ["not", "an", "object"], "context must be an object"),
    ],
)
def test_a_bad_message_is_a_usage_error(
    project: Any, cid: str, text: str, context: Any, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        say(project, cid, text, context=context)


def test_run_of_a_flow_that_asks_ends_waiting_and_is_ok(project: Any) -> None:
    result = project.run_sync("find", {})
    assert (result.status, result.ok, result.reply) == (
        "waiting",
        True,
        "What's your order number?",
    )


# -- load-time checks -----------------------------------------------------------------------


def test_ask_problems_are_placed(proj: ProjectFiles) -> None:
    proj.write(
        flows={
            "bad": """
                name: bad
                inputs:
                  count: {type: integer, required: false}
                steps:
                  - ask: "Your order?"
                    entity: order_numbr
                  - ask: "Anything?"
                  - ask: "How many?"
                    into: count
                  - ask: "Hm?"
                    into: x
                    with: {a: 1}
            """
        },
        files={"intents.yaml": BAD_INTENTS},
    )
    found = proj.problems()
    messages = {(p.line, p.message) for p in found}
    path, line, col = proj.at("flows/bad.yaml", "order_numbr")
    assert Problem(path, line, col, _unknown_entity()) in found
    assert any("needs 'into:'" in m for _, m in messages)
    assert any("'count' is an input of type integer" in m for _, m in messages)
    assert any("'with' belongs to" in m for _, m in messages)


BAD_INTENTS = """
    entities:
      order_number: {pattern: '(\\d{4,6})'}
      email: {type: email}
    intents:
      bad: {flow: bad, examples: [one, two, three, four, five]}
"""


def _unknown_entity() -> str:
    return (
        "unknown entity 'order_numbr' (did you mean 'order_number'?): intents.yaml declares"
        " (email, order_number)"
    )


def test_an_ask_no_conversation_reaches_is_a_warning(proj: ProjectFiles) -> None:
    proj.write(
        flows={
            "wismo": WISMO,
            "find": FIND,
            "refund": REFUND,
            "lonely": "name: lonely\nsteps:\n  - ask: 'Hello?'\n    into: hello\n",
        },
        actions={"note": ACTIONS},
        files={"intents.yaml": INTENTS},
    )
    warnings = proj.load(environ={}).warnings
    assert [w.message for w in warnings] == [
        "no conversation reaches this ask: no intent in intents.yaml starts 'lonely' or a flow"
        " that calls it"
    ]
    assert all(w.warning for w in warnings)
