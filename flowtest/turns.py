"""A case that holds a conversation (``turns``, §11/§12): one message per turn, in order.

Each case talks in a conversation of its own: a fresh id in a fresh in-memory store, so no
case sees another's waiting run, whatever store the project has. The mocks are one router
for the whole case, matched in order across its turns, as the calls would reach the APIs.
The clock starts at the case's ``now`` (or the real time) and moves on by each turn's
``after:``, which is how a case reaches a conversation's expiry without waiting for it.

The first turn that differs from its ``expect`` ends the case: what later turns would say
follows from a conversation that has already gone another way.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from csflow.engine.errors import UsageError
from csflow.engine.model import TestCase, TurnSpec
from csflow.engine.result import RunResult
from csflow.engine.store.memory import MemoryStore
from csflow.flowtest.expect import compare_turn, run_error
from csflow.flowtest.mocks import MockRouter
from csflow.flowtest.retries import describe_misses


def turn_label(number: int, turn: TurnSpec) -> str:
    return f"turn {number} (say: {turn.say!r})"


async def run_turns(
    project: Any,
    flow: str | None,
    case: TestCase,
    router: MockRouter,
    clock: dt.datetime,
    results: list[RunResult],
) -> list[str]:
    """Say each turn's message (to ``flow``, or classified when None); the failures of the
    first turn that differs, each line prefixed with that turn. ``results`` gets each turn's."""
    assert case.turns is not None
    store = MemoryStore()
    conversation = f"flowtest-{uuid.uuid4().hex}"
    for number, turn in enumerate(case.turns, 1):
        if turn.after:
            clock += dt.timedelta(seconds=turn.after)
        missed = len(router.misses)
        label = turn_label(number, turn)
        try:
            result = await project.compiled.say(
                conversation, turn.say, project.connections, store, context=case.inputs,
                flow=flow, dry_run=case.dry_run, now=clock,
            )  # fmt: skip
        except UsageError as exc:
            return [f"{label}: the message was refused: {exc}"]
        results.append(result)
        failures = compare_turn(turn.expect, result)
        failures += describe_misses(project, router.misses[missed:], result)
        if not failures:
            continue
        error = run_error(result)
        if error and not any(error in line for line in failures):
            # Whatever the turn expected, a failed run's own error is what explains it.
            failures.append(f"the run failed: {error}")
        return [*_ended_earlier(case.turns, results), *(f"{label}: {f}" for f in failures)]
    return []


def _ended_earlier(turns: list[TurnSpec], results: list[RunResult]) -> list[str]:
    """Earlier turns whose run failed though they did not expect it: the conversation had
    ended there, so the failing turn started a new one, which is often the real story."""
    return [
        f"{turn_label(n, turn)}: its run failed and ended the conversation: {run_error(result)}"
        for n, (turn, result) in enumerate(zip(turns, results[:-1], strict=False), 1)
        if result.status == "failed" and turn.expect.status != "failed"
    ]
