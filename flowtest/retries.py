"""Unmatched calls, said in terms of the step and attempt that made them.

A retried call asks the mocks again; a mock answers once unless it says ``repeat: true``, so
a case that mocks a 503 for a step with ``retry:`` ends in an unmatched call. That is an
attempt the case did not mock, and the message says which one, and what to write.
"""

from __future__ import annotations

from typing import Any

from csflow.engine.result import RunResult, StepRecord
from csflow.flowtest.mocks import Miss


def describe_misses(project: Any, misses: list[Miss], result: RunResult) -> list[str]:
    attempts = _attempt_numbers(misses, result)
    out = []
    for miss in misses:
        record = _record(result, miss.step)
        total = _retry_attempts(project, record)
        attempt = attempts.get(id(miss.attempt), 1)
        if record is not None and attempt > 1:
            of = f" of {total}" if total else ""
            out.append(
                f"unmatched call: {miss.call}: attempt {attempt}{of} of step '{miss.step}',"
                " which retries; a mock answers one call unless it says `repeat: true`"
                " (or give one mock per attempt)"
            )
        elif miss.answered_before:
            out.append(
                f"unmatched call: {miss.call} (a mock for it answered an earlier call; a mock"
                " answers once unless it says `repeat: true`)"
            )
        else:
            out.append(f"unmatched call: {miss.call} (no mock matches it)")
    return out


def _record(result: RunResult, step: str | None) -> StepRecord | None:
    """The last record of the step that made the call (an unnamed step: by its action)."""
    if step is None:
        return None
    for record in reversed(result.steps):
        if record.id == step or (record.id is None and record.action == step):
            return record
    return None


def _attempt_numbers(misses: list[Miss], result: RunResult) -> dict[int, int]:
    """Attempt number by attempt context. Each attempt has its own context, and an unmatched
    call ends its attempt, so a step's unmatched attempts are its last ones."""
    by_step: dict[str | None, list[int]] = {}
    for miss in misses:
        seen = by_step.setdefault(miss.step, [])
        if id(miss.attempt) not in seen:
            seen.append(id(miss.attempt))
    numbers: dict[int, int] = {}
    for step, contexts in by_step.items():
        record = _record(result, step)
        made = record.attempts if record is not None else len(contexts)
        first = max(1, made - len(contexts) + 1)
        numbers.update({ctx: first + i for i, ctx in enumerate(contexts)})
    return numbers


def _retry_attempts(project: Any, record: StepRecord | None) -> int | None:
    if record is None or record.plan is None or record.plan not in project.flows:
        return None
    steps = project.flows[record.plan].steps
    if not 0 <= record.index < len(steps):
        return None
    retry = steps[record.index].retry
    return retry.attempts if retry is not None else None
