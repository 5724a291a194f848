"""Flow tests that hold conversations (§11, §12): `turns`, `conversation: true`, `after:`.

The project is ``data/chat``: intents.yaml with three intents, ``wismo`` asking for the
order number through the sub-flow ``ask_order`` (which hands over after two answers without
one), ``cancel_order`` making a write before it asks, and ``talk_to_person`` handing over.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from flowtest_support import CASES, chat_project

from csflow import Project
from csflow.engine.model import TestCase
from csflow.flowtest import load_test_files, run_case
from csflow.flowtest.cases import CaseOutcome
from csflow.flowtest.coverage import branch_coverage

DHL = {
    "connection": "shop",
    "method": "GET",
    "path": "/orders/ORD-1004",
    "json": {"carrier": "DHL"},
}
HOLD = {"connection": "shop", "method": "POST", "path": "/orders/ORD-1004/hold", "json": {}}


@pytest.fixture
async def project(tmp_path: Path) -> AsyncIterator[Project]:
    loaded = Project.load(chat_project(tmp_path))
    yield loaded
    await loaded.aclose()


def case(*turns: dict[str, Any], **fields: Any) -> TestCase:
    return TestCase.model_validate({"name": "a case", "turns": list(turns), **fields})


def say(text: str, after: str | None = None, **expect: Any) -> dict[str, Any]:
    turn: dict[str, Any] = {"say": text, "expect": expect}
    if after is not None:
        turn["after"] = after
    return turn


async def converse(
    project: Project,
    c: TestCase,
    flow: str | None = None,
    mocks: list[dict[str, Any]] | None = None,
) -> CaseOutcome:
    if mocks is not None:
        c = TestCase.model_validate(
            {**c.model_dump(by_alias=True, exclude_unset=True), "mocks": mocks}
        )
    return await run_case(project, flow, c)


# ------------------------------------------------------------------ the cases of the data files


async def test_every_case_of_the_data_files_passes(project: Project) -> None:
    files, problems = load_test_files(project, [CASES / "conversation.yaml", CASES / "wismo.yaml"])
    assert problems == []
    outcomes = [await run_case(project, tf.model.flow, c) for tf in files for c in tf.model.cases]
    assert {o.name: o.failures for o in outcomes} == {o.name: [] for o in outcomes}
    assert len(outcomes) == 10
    # Each turn is a run of its own: the first case said three messages.
    assert [r.status for r in outcomes[0].results] == ["waiting", "waiting", "completed"]


# ------------------------------------------------------------------------- each expectation


async def test_intent_is_the_classification_and_null_is_not_understood(project: Project) -> None:
    wrong = await converse(project, case(say("cancel order 1004", intent="wismo")), mocks=[HOLD])
    assert wrong.failures == [
        "turn 1 (say: 'cancel order 1004'): intent: expected wismo, got cancel_order"
        f" (confidence {wrong.results[0].intent['confidence']})"  # type: ignore[index]
    ]
    understood = await converse(project, case(say("where is my order", intent=None)))
    assert understood.failures[0].startswith(
        "turn 1 (say: 'where is my order'): intent: expected not understood (null), got wismo"
    )
    rephrase = await converse(project, case(say("bananas", intent=None)))
    assert rephrase.failures == []
    named = await converse(project, case(say("bananas", intent="wismo")))
    assert named.failures[0].startswith(
        "turn 1 (say: 'bananas'): intent: expected wismo, got not understood (confidence 0.4"
    )


async def test_a_turn_that_answers_keeps_the_conversations_intent(project: Project) -> None:
    outcome = await converse(
        project,
        case(say("where is my order", status="waiting"), say("1004", intent="cancel_order")),
        mocks=[DHL],
    )
    assert outcome.failures[0].startswith(
        "turn 2 (say: '1004'): intent: expected cancel_order, got wismo"
    )


async def test_a_status_that_differs_shows_the_reply(project: Project) -> None:
    outcome = await converse(
        project,
        case(
            say("where's my stuff?", status="waiting"),
            say("it's ord 12", status="completed"),
            say("it's ord 1004", status="completed"),
        ),
        mocks=[DHL],
    )
    # The first turn that differs ends the case: turn 3 is not said.
    assert outcome.failures == [
        'turn 2 (say: "it\'s ord 12"): expected status completed, got waiting;'
        " reply was 'I need the order number, like ORD-1004.'"
    ]
    assert len(outcome.results) == 2


@pytest.mark.parametrize(
    ("reply", "failure"),
    [
        ("Your order ORD-1004 is on its way with DHL.", None),
        ({"contains": "with DHL"}, None),
        ({"matches": r"ORD-\d{4} is on its way"}, None),
        (
            "Your order is on its way.",
            "reply: expected\n      'Your order is on its way.'\n    got\n"
            "      'Your order ORD-1004 is on its way with DHL.'",
        ),
        (
            {"contains": "UPS"},
            "reply: expected it to contain 'UPS', got 'Your order ORD-1004 is on its way with DHL.'",
        ),
        (
            {"matches": "^Sorry"},
            "reply: expected it to match /^Sorry/, got 'Your order ORD-1004 is on its way with DHL.'",
        ),
    ],
)
async def test_reply(project: Project, reply: Any, failure: str | None) -> None:
    outcome = await converse(
        project,
        case(say("where is my order"), say("ord 1004", reply=reply)),
        mocks=[DHL],
    )
    assert outcome.failures == ([] if failure is None else [f"turn 2 (say: 'ord 1004'): {failure}"])


async def test_outputs_of_a_turn(project: Project) -> None:
    turns = [say("where is my order"), say("ord 1004", outputs={"carrier": "UPS"})]
    outcome = await converse(project, case(*turns), mocks=[DHL])
    assert outcome.failures == [
        'turn 2 (say: \'ord 1004\'): outputs.carrier: expected "UPS", got "DHL"'
    ]
    waiting = await converse(project, case(say("where is my order", outputs={"carrier": "DHL"})))
    assert waiting.failures == [
        "turn 1 (say: 'where is my order'): outputs.carrier: expected \"DHL\","
        " but the run ended waiting before returning"
    ]


async def test_path_is_per_turn_and_reaches_into_sub_flows(project: Project) -> None:
    good = [say("where is my order", path=["find", "find.which"])]
    good.append(say("ord 1004", path=["find.which", "find.known", "order", "shipped"]))
    assert (await converse(project, case(*good), mocks=[DHL])).failures == []
    # The answer's turn did not run the first turn's switch again: its path is its own.
    bad = [say("where is my order"), say("ord 1004", path=["find", "order", "shipped", "find"])]
    outcome = await converse(project, case(*bad), mocks=[DHL])
    assert outcome.failures == [
        "turn 2 (say: 'ord 1004'): path: 'find' did not run in this order; the steps were"
        " ['find', 'find.which', 'find.known', 'order', 'shipped']"
    ]


async def test_handoff_reason_and_note_are_compared_where_given(project: Project) -> None:
    turns = [say("where is my order"), say("no"), say("nope", status="handoff")]
    assert (await converse(project, case(*turns))).failures == []
    turns[-1] = say("nope", handoff={"reason": "order_not_found", "note": {"contains": "ORD-"}})
    outcome = await converse(project, case(*turns))
    assert outcome.failures == [
        "turn 3 (say: 'nope'): handoff.reason: expected order_not_found, got no_order_number",
        "turn 3 (say: 'nope'): handoff.note: expected it to contain 'ORD-',"
        " got 'The customer gave no order number.'",
    ]
    expected = await converse(
        project,
        case(say("where is my order", handoff={"reason": "no_order_number"})),
    )
    assert expected.failures == [
        "turn 1 (say: 'where is my order'): handoff: expected one, but the run ended waiting"
    ]


async def test_a_failed_run_shows_its_error_whatever_the_turn_expected(project: Project) -> None:
    outcome = await converse(
        project,
        case(say("where is my order"), say("ord 1004", reply={"contains": "DHL"})),
        mocks=[{**DHL, "status": 500}],
    )
    assert outcome.failures == [
        "turn 2 (say: 'ord 1004'): reply: expected it to contain 'DHL', got ''",
        "turn 2 (say: 'ord 1004'): the run failed: flow_failed:"
        " The shop did not answer (http_status).",
    ]
    errors = await converse(
        project,
        case(say("where is my order 1004", error={"kind": "flow_failed", "message": "timeout"})),
        mocks=[{**DHL, "status": 500}],
    )
    assert errors.failures == [
        "turn 1 (say: 'where is my order 1004'): error.message: expected it to contain 'timeout',"
        " got 'The shop did not answer (http_status).'",
        "turn 1 (say: 'where is my order 1004'): the run failed: flow_failed:"
        " The shop did not answer (http_status).",
    ]


async def test_an_earlier_turn_that_failed_is_named(project: Project) -> None:
    # Turn 1's run fails but does not say it expects that; turn 2 then starts a new
    # conversation, and its failure only makes sense with turn 1's error beside it.
    outcome = await converse(
        project,
        case(say("where is my order ORD-1004"), say("where is it?", status="completed")),
        mocks=[{**DHL, "error": "timeout"}],
    )
    assert outcome.failures == [
        "turn 1 (say: 'where is my order ORD-1004'): its run failed and ended the conversation:"
        " flow_failed: The shop did not answer (timeout).",
        "turn 2 (say: 'where is it?'): expected status completed, got waiting;"
        " reply was 'Which order is it? Please give me the order number.'",
    ]


# ------------------------------------------------------------------- mocks, clock, isolation


async def test_a_write_before_a_question_is_sent_once(project: Project) -> None:
    turns = [say("cancel order 1004", status="waiting"), say("my card", status="completed")]
    outcome = await converse(project, case(*turns, mocks=[HOLD]))
    assert outcome.failures == []
    assert outcome.router is not None and outcome.router.calls == [
        "POST shop /orders/ORD-1004/hold"
    ]


async def test_a_dry_run_conversation_keeps_the_write_back(project: Project) -> None:
    # What it would return past the kept-back write is a preview, not an output (dry runs).
    turns = [say("cancel order 1004", status="waiting"), say("card", outputs={"refund": "card"})]
    outcome = await converse(project, case(*turns, dry_run=True))
    assert outcome.failures == ["turn 2 (say: 'card'): outputs.refund: expected \"card\", got null"]
    assert outcome.results[-1].preview_outputs == {"refund": "card"}
    assert outcome.router is not None and outcome.router.calls == []


async def test_mocks_are_matched_in_order_across_the_turns(project: Project) -> None:
    ups = {**DHL, "json": {"carrier": "UPS"}}
    turns = [
        say("ord 1004", outputs={"carrier": "DHL"}),
        say("ord 1004", outputs={"carrier": "UPS"}),
        say("ord 1004"),
    ]
    outcome = await converse(project, case(*turns, mocks=[DHL, ups]), flow="wismo")
    assert outcome.failures == [
        "turn 3 (say: 'ord 1004'): unmatched call: GET shop /orders/ORD-1004"
        " (a mock for it answered an earlier call; a mock answers once unless it says"
        " `repeat: true`)",
        "turn 3 (say: 'ord 1004'): the run failed: flow_failed: The shop did not answer (connect).",
    ]


async def test_each_case_has_its_own_conversation(project: Project) -> None:
    waits = case(say("where is my order", status="waiting"))
    assert (await converse(project, waits)).failures == []
    # Had the case shared the first one's conversation, this would answer its question.
    again = await converse(project, waits)
    assert again.failures == []
    assert (
        again.results[0].conversation_id
        != (await converse(project, waits)).results[0].conversation_id
    )
    assert project.store is None or project.store.list_conversations() == []


@pytest.mark.parametrize(
    ("after", "status"), [("29m", "completed"), ("31m", "expired"), ("1800", "expired")]
)
async def test_after_moves_the_clock_to_expiry(project: Project, after: str, status: str) -> None:
    turns = [say("where is my order"), say("ord 1004", after=after, status=status)]
    outcome = await converse(project, case(*turns, now="2030-01-01T09:00:00Z", mocks=[DHL]))
    assert outcome.failures == []


async def test_an_expired_conversation_fails_a_turn_that_expects_an_answer(
    project: Project,
) -> None:
    turns = [say("where is my order"), say("ord 1004", after="31m", status="completed")]
    outcome = await converse(project, case(*turns, mocks=[DHL]))
    assert outcome.failures == [
        "turn 2 (say: 'ord 1004'): expected status completed, got expired;"
        " reply was 'Sorry, I waited a while for your answer and closed our conversation."
        " What can I help you with?'"
    ]


async def test_a_message_a_flow_cannot_start_with_goes_to_a_person(project: Project) -> None:
    # cancel_order requires its order number and does not ask: a person takes over.
    turns = [say("cancel my order", status="waiting")]
    outcome = await converse(project, case(*turns))
    assert outcome.failures == [
        "turn 1 (say: 'cancel my order'): expected status waiting, got handoff;"
        " reply was 'Let me pass you to one of our team, who can help you with that.'"
    ]
    handed = outcome.results[-1].handoff
    assert handed is not None and handed["reason"] == "missing_details"
    assert "order_number" in handed["note"]


async def test_a_flow_files_inputs_start_the_run(project: Project) -> None:
    given = case(say("hello", status="completed"), inputs={"order_number": "ORD-1004"})
    assert (await converse(project, given.model_copy(update={"mocks": []}), "wismo")).failures
    with_mock = case(
        say("hello", status="completed", outputs={"order_number": "ORD-1004"}),
        inputs={"order_number": "ORD-1004"},
        mocks=[DHL],
    )
    assert (await converse(project, with_mock, "wismo")).failures == []
    # The message's own order number wins over the context's.
    said = case(
        say("it's ord 1004", outputs={"order_number": "ORD-1004"}),
        inputs={"order_number": "ORD-9999"},
        mocks=[DHL],
    )
    assert (await converse(project, said, "wismo")).failures == []


# ------------------------------------------------------------------------------ coverage


async def test_coverage_counts_asks_handoffs_and_branches_reached_in_any_turn(
    project: Project,
) -> None:
    answered = case(say("where is my order"), say("ord 1004", status="completed"), mocks=[DHL])
    outcomes = [await converse(project, answered)]
    assert outcomes[0].failures == []
    lines = branch_coverage(project, outcomes, ["ask_order", "wismo"])
    assert lines == [
        "ask_order: 2/6 branches",
        "    not reached: line 8: order_number → known",
        "    not reached: which: asked again (no order_number in the answer)",
        "    not reached: which: on_error → no_number",
        "    not reached: no_number: handoff (no_order_number)",
        "wismo: 1/4 branches",
        "    not reached: order: on_error → down",
        "    not reached: line 18: steps.order.status == 404 → unknown",
        "    not reached: unknown: handoff (order_not_found)",
    ]
    # "no" holds no order number: the question is asked again, then "nope" hands over.
    handed = case(say("where is my order"), say("no"), say("nope", status="handoff"))
    outcomes.append(await converse(project, handed))
    assert branch_coverage(project, outcomes, ["ask_order"]) == [
        "ask_order: 5/6 branches",
        "    not reached: line 8: order_number → known",
    ]
