"""Runs a compiled plan: step records, retries, the step limit, the deadline, sub-flows.

A run is one coroutine. Steps that do no I/O run inline with no task and no await; only
``call`` and ``flow`` steps await. The deadline bounds every call and every retry wait: each
call has one timeout, at the earlier of its step's ``timeout`` and the run's deadline
(``engine.retries``), and no wait is begun that would pass the deadline, so the run needs no
timeout of its own around them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from time import perf_counter
from typing import Any

from csflow.engine.dry_run import preview_reply, snapshot, split_claims
from csflow.engine.errors import StepError, UsageError
from csflow.engine.fields import extract
from csflow.engine.flow_io import check_inputs, check_outputs
from csflow.engine.plan import (
    CallStep,
    EndRun,
    ExtractStep,
    FailStep,
    FlowPlan,
    FlowStep,
    Jump,
    ReplyStep,
    ReturnStep,
    SetStep,
    SwitchStep,
)
from csflow.engine.ports import Gateway
from csflow.engine.result import RunResult, StepRecord
from csflow.engine.retries import RunState, call_action, cut_off

MAX_STEPS = 1_000
DEFAULT_DEADLINE = 8.0
_FINAL = frozenset({"deadline", "step_limit"})  # no on_error can help: the run is over

RunBeforeWrite = Callable[[RunResult, StepRecord], Awaitable[None]]


class _Failed(Exception):
    """The run ends as failed: a ``fail`` step, or a step error with nowhere to go."""

    def __init__(self, error: StepError, step: str | None) -> None:
        self.error = error
        self.step = step


async def run_plan(
    plan: FlowPlan,
    inputs: Mapping[str, Any],
    gateway: Gateway,
    *,
    deadline: float = DEFAULT_DEADLINE,
    run_id: str | None = None,
    dry_run: bool = False,
    before_write: RunBeforeWrite | None = None,
    on_end: Callable[[RunResult], None] | None = None,
    now: dt.datetime | None = None,
    intents: object | None = None,
) -> RunResult:
    """Run a flow to its end. Inputs are checked first (UsageError); the rest is the result.

    ``before_write(result, step)`` is awaited right before a write leaves (the run store's
    ``in_flight`` record); ``result`` is the run so far. ``on_end(result)`` is called once
    the run has ended, also when its caller cancelled it.
    """
    values = check_inputs(plan, inputs)
    started = perf_counter()
    run = RunState(gateway, deadline, run_id or uuid.uuid4().hex, dry_run, intents)
    result = RunResult(
        flow=plan.name, status="completed", run_id=run.run_id, steps=run.records, dry_run=dry_run
    )
    if before_write is not None:
        run.on_write = partial(before_write, result)
    try:
        clock = now if now is not None else dt.datetime.now(dt.UTC)
        result.outputs = await _execute(run, plan, values, "", clock, result)
    except _Failed as failed:
        result.status, result.error = "failed", {**failed.error.as_dict(), "step": failed.step}
    except asyncio.CancelledError:
        result.status = "failed"
        result.error = {
            "kind": "deadline",
            "message": "the run was cancelled by its caller",
            "step": cut_off(run),
        }
        _end(run, result, started, on_end)
        raise
    _end(run, result, started, on_end)
    return result


def _end(
    run: RunState, result: RunResult, started: float, on_end: Callable[[RunResult], None] | None
) -> None:
    result.reply = preview_reply(run.reply) if run.dry_run else run.reply
    result.duration_ms = (perf_counter() - started) * 1000
    if on_end is not None:
        on_end(result)


async def _execute(
    run: RunState,
    plan: FlowPlan,
    values: dict[str, Any],
    prefix: str,
    now: dt.datetime,
    top: RunResult | None = None,
) -> dict[str, Any]:
    """Run ``plan``'s steps; its outputs. ``top`` is the run's result when ``plan`` is the
    run's own flow (not a sub-flow): a dry run's outputs are split into claims and a preview."""
    scope = dict(plan.base_scope)
    scope.update(values)
    visible: dict[str, Any] = {}
    scope["steps"] = visible
    scope["now"] = now
    steps = plan.steps
    n = len(steps)
    i = 0
    returned: dict[str, Any] | None = None
    # A dry run's outputs as they stood before its first kept-back write (engine.dry_run).
    before_write: dict[str, Any] | None = None
    pending: tuple[int, dict[str, Any]] | None = None  # the outputs before the last call
    watch = run.dry_run and top is not None
    while i < n:
        if pending is not None:
            before_write, pending = _kept_since(run, pending), None
            watch = before_write is None
        step = steps[i]
        run.count += 1
        label = prefix + step.id if step.id else None
        if run.count > MAX_STEPS:
            raise _Failed(
                StepError("step_limit", f"the run took more than {MAX_STEPS} steps"), label
            )
        started = perf_counter()
        record: StepRecord | None = None
        try:
            if step.when is not None and not step.when(scope):
                i += 1
                continue
            record = StepRecord(label, step.verb, step.line, plan=plan.name, index=i)
            run.records.append(record)
            i = step.next
            if watch and isinstance(step, CallStep | FlowStep):
                pending = (len(run.records) - 1, snapshot(plan.outputs, scope))
            match step:
                case SetStep(items=items):
                    for name, value in items:
                        scope[name] = value(scope)
                case SwitchStep(cases=cases):
                    for cond, target in cases:
                        if cond is None or cond(scope):
                            i = target
                            break
                case CallStep():
                    record.action = step.action_name
                    args = {name: value(scope) for name, value in step.args}
                    called = await call_action(run, step, args, scope, record)
                    record.status = called.status
                    kept = called.kept_back
                    record.dry_run = dict(kept) if kept is not None else None
                    _take(step, scope, record, called.data, called.xml)
                case FlowStep():
                    record.flow = step.subflow
                    data = await _subflow(run, step, scope, prefix)
                    if step.as_name:
                        scope[step.as_name] = data
                    else:
                        scope.update(data)
                    _take(step, scope, record, data, None)
                case ExtractStep(source=source, fields=fields):
                    assert source is not None  # a missing `from:` is a load-time problem
                    scope.update(extract(fields, source(scope)))
                case ReplyStep(text=text):
                    run.reply = str(text(scope))
                case ReturnStep(items=items):
                    returned = {name: value(scope) for name, value in items}
                    record.duration_ms = (perf_counter() - started) * 1000
                    break
                case FailStep(text=text):
                    failure = StepError("flow_failed", str(text(scope)))
                    record.ok, record.error = False, failure.as_dict()
                    raise _Failed(failure, label)
                case Jump():
                    pass
            record.duration_ms = (perf_counter() - started) * 1000
        except StepError as err:
            if record is None:
                record = StepRecord(label, step.verb, step.line, plan=plan.name, index=i)
                run.records.append(record)
            record.ok = False
            record.error = err.as_dict()
            record.outcome = record.outcome or err.outcome
            record.duration_ms = (perf_counter() - started) * 1000
            if step.id:
                # A failed step's data is what the error kept: a GraphQL answer's partial data.
                entry = visible.get(step.id) or _visible(record, err.details.get("data"))
                entry["ok"], entry["error"] = False, record.error
                visible[step.id] = entry
            if isinstance(step.on_error, EndRun) or err.kind in _FINAL:
                raise _Failed(err, label) from None
            i = step.on_error.index
    if pending is not None:
        before_write = _kept_since(run, pending)
    try:
        outputs = check_outputs(plan, scope, returned or {})
    except StepError as err:
        raise _Failed(err, None) from None
    if top is not None and before_write is not None:
        outputs, top.preview_outputs = split_claims(outputs, before_write)
    return outputs


def _kept_since(run: RunState, pending: tuple[int, dict[str, Any]]) -> dict[str, Any] | None:
    """The outputs' snapshot, if the step it was taken before (or a sub-flow) kept a write back."""
    first, before = pending
    return before if any(r.dry_run is not None for r in run.records[first:]) else None


def _visible(record: StepRecord, data: Any) -> dict[str, Any]:
    return {
        "ok": record.ok,
        "dry_run": record.dry_run is not None,  # kept back by a dry run: no answer, no data
        "status": record.status,
        "data": data,
        "error": record.error,
        "duration_ms": record.duration_ms,
        "attempts": record.attempts,
        "outcome": record.outcome,
    }


def _take(
    step: CallStep | FlowStep, scope: dict[str, Any], record: StepRecord, data: Any, xml: Any
) -> None:
    """A call's or a sub-flow's data: visible as ``steps.ID``, then through its ``extract``."""
    if record.dry_run is not None:
        # Nothing came back: `steps.ID.dry_run` says so, and the fields take their defaults.
        if step.id:
            scope["steps"][step.id] = _visible(record, None)
        scope.update({f.name: f.default for f in step.fields})
        return
    if step.id:
        scope["steps"][step.id] = _visible(record, data)
    if step.fields:
        source = step.source(scope) if step.source is not None else data
        scope.update(extract(step.fields, source, xml if step.source is None else None))


async def _subflow(run: RunState, step: FlowStep, scope: dict[str, Any], prefix: str) -> Any:
    sub = step.subplan
    assert sub is not None  # an unknown sub-flow is a load-time problem
    args = {name: value(scope) for name, value in step.args}
    try:
        values = check_inputs(sub, args)
    except UsageError as exc:
        raise StepError("validation", str(exc)) from None
    label = prefix + (step.id or sub.name) + "."
    try:
        return await _execute(run, sub, values, label, scope["now"])
    except _Failed as failed:
        if failed.error.kind in _FINAL:
            raise failed.error from None
        inner = failed.error
        # The first error that failed it, through any depth of sub-flows: `is outage` reads it.
        nested = inner.kind == "flow_failed" and "cause" in inner.details
        cause = inner.details["cause"] if nested else inner.kind
        status = inner.details.get("cause_status") if nested else inner.status
        details: dict[str, object] = {"cause": cause}
        if status is not None:
            details["cause_status"] = status
        raise StepError(
            "flow_failed", f"sub-flow '{sub.name}' failed: {inner.message}", details=details
        ) from None
