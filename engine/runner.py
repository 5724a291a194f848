"""Runs a compiled plan: step records, retries, the step limit, the deadline, sub-flows.

A run is one coroutine. Steps that do no I/O run inline with no task and no await; only
``call`` and ``flow`` steps await. An ``ask`` ends the turn: the run is saved as frames
(``engine.suspend``) and ``resume_plan`` goes on from them with the customer's answer.

The deadline bounds every call and every retry wait: each call has one timeout, at the
earlier of its step's ``timeout`` and the run's deadline (``engine.retries``), and no wait is
begun that would pass the deadline, so the run needs no timeout of its own around them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from csflow.engine.dry_run import preview_reply, snapshot, split_claims
from csflow.engine.errors import StepError, UsageError
from csflow.engine.fields import extract
from csflow.engine.flow_io import check_inputs, check_outputs
from csflow.engine.plan import (
    AskStep,
    CallStep,
    EndRun,
    ExtractStep,
    FailStep,
    FlowPlan,
    FlowStep,
    HandoffStep,
    Jump,
    ReplyStep,
    ReturnStep,
    SetStep,
    SwitchStep,
)
from csflow.engine.ports import Gateway
from csflow.engine.result import RunResult, StepRecord
from csflow.engine.retries import RunState, call_action, cut_off
from csflow.engine.suspend import Frame, NotStorable, Suspended, decode, encode

if TYPE_CHECKING:
    from csflow.engine.intents import Intents

MAX_STEPS = 1_000
DEFAULT_DEADLINE = 8.0
_FINAL = frozenset({"deadline", "step_limit"})  # no on_error can help: the run is over

RunBeforeWrite = Callable[[RunResult, StepRecord], Awaitable[None]]


class _Failed(Exception):
    """The run ends as failed: a ``fail`` step, or a step error with nowhere to go."""

    def __init__(self, error: StepError, step: str | None) -> None:
        self.error = error
        self.step = step


class _Waiting(Exception):
    """An ``ask`` ends the turn. Each flow on the way up adds its frame, the run's own last."""

    def __init__(self, frame: Frame, wait: float) -> None:
        self.frames = [frame]
        self.wait = wait


class _HandedOff(Exception):
    """A ``handoff`` ends the run, from any depth of sub-flows."""

    def __init__(self, reason: str, note: str | None) -> None:
        self.reason = reason
        self.note = note


class _Resume:
    """Where a resumed run goes on: its frames from here down, and the customer's answer."""

    __slots__ = ("answer", "frames")

    def __init__(self, frames: list[Frame], answer: str) -> None:
        self.frames = frames
        self.answer = answer

    def inner(self) -> _Resume:
        return _Resume(self.frames[1:], self.answer)


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
    intents: Intents | None = None,
) -> RunResult:
    """Run a flow to its end. Inputs are checked first (UsageError); the rest is the result.

    ``before_write(result, step)`` is awaited right before a write leaves (the run store's
    ``in_flight`` record); ``result`` is the run so far. ``on_end(result)`` is called once
    the run has ended, also when its caller cancelled it. A run that reaches an ``ask``
    ends ``waiting``, with ``result.suspended`` to resume it by (``resume_plan``).
    """
    values = check_inputs(plan, inputs)
    run = RunState(gateway, deadline, run_id or uuid.uuid4().hex, dry_run, intents)
    return await _run(run, plan, values, None, before_write, on_end, now)


async def resume_plan(
    plan: FlowPlan,
    suspended: Suspended,
    answer: str,
    gateway: Gateway,
    *,
    deadline: float = DEFAULT_DEADLINE,
    run_id: str | None = None,
    before_write: RunBeforeWrite | None = None,
    on_end: Callable[[RunResult], None] | None = None,
    now: dt.datetime | None = None,
    intents: Intents | None = None,
) -> RunResult:
    """Go on with a waiting run from its ``ask``, with the customer's ``answer``.

    ``suspended`` must have been checked against ``plan`` (``Suspended.check``: FlowChanged).
    The turn is a run of its own (``run_id``), with its own deadline; its steps are the ones
    this turn took. A dry run stays a dry run.
    """
    run = RunState(gateway, deadline, run_id or uuid.uuid4().hex, suspended.dry_run, intents)
    run.count = suspended.count
    run.origin = suspended.run_id
    return await _run(run, plan, {}, _Resume(suspended.frames, answer), before_write, on_end, now)


async def _run(
    run: RunState,
    plan: FlowPlan,
    values: dict[str, Any],
    resume: _Resume | None,
    before_write: RunBeforeWrite | None,
    on_end: Callable[[RunResult], None] | None,
    now: dt.datetime | None,
) -> RunResult:
    started = perf_counter()
    result = RunResult(
        flow=plan.name,
        status="completed",
        run_id=run.run_id,
        steps=run.records,
        dry_run=run.dry_run,
    )
    if before_write is not None:
        run.on_write = partial(before_write, result)
    clock = now if now is not None else dt.datetime.now(dt.UTC)
    try:
        result.outputs = await _execute(run, plan, values, "", clock, result, resume)
    except _Failed as failed:
        result.status, result.error = "failed", {**failed.error.as_dict(), "step": failed.step}
    except _Waiting as waiting:
        result.status = "waiting"
        expires = clock + dt.timedelta(seconds=waiting.wait)
        result.suspended = Suspended(
            frames=waiting.frames,
            run_id=run.origin or run.run_id,
            count=run.count,
            expires_at=expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            dry_run=run.dry_run,
        )
    except _HandedOff as handed:
        result.status = "handoff"
        result.handoff = {"reason": handed.reason, "note": handed.note, "intent": None}
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
    resume: _Resume | None = None,
) -> dict[str, Any]:
    """Run ``plan``'s steps; its outputs. ``top`` is the run's result when ``plan`` is the
    run's own flow (not a sub-flow): a dry run's outputs are split into claims and a preview.
    ``resume`` goes on from a saved frame instead of from the first step."""
    scope = dict(plan.base_scope)
    visible: dict[str, Any]
    steps = plan.steps
    n = len(steps)
    # A dry run's outputs as they stood before its first kept-back write (engine.dry_run).
    before_write: dict[str, Any] | None = None
    pending: tuple[int, dict[str, Any]] | None = None  # the outputs before the last call
    restored: tuple[int, dict[str, Any]] | None = None  # the same, saved by a waiting turn
    watch = run.dry_run and top is not None
    if resume is None:
        scope.update(values)
        visible = {}
        i = 0
    else:
        frame = resume.frames[0]
        scope.update(decode(frame.variables))
        visible = decode(frame.steps)
        i = frame.index
        if frame.before_write is not None:
            before_write = decode(frame.before_write)
        if frame.pending is not None and frame.pending_kept:
            before_write = decode(frame.pending)
        elif frame.pending is not None:
            restored = (len(run.records), decode(frame.pending))
        watch = watch and before_write is None
    scope["steps"] = visible
    scope["now"] = now
    returned: dict[str, Any] | None = None
    carry = resume  # the first step of a resumed frame: counted and tested when it first ran
    while i < n:
        if pending is not None:
            before_write, pending = _kept_since(run, pending), None
            watch = before_write is None
        step = steps[i]
        here, carry = carry, None
        label = prefix + step.id if step.id else None
        if here is None:
            run.count += 1
            if run.count > MAX_STEPS:
                raise _Failed(
                    StepError("step_limit", f"the run took more than {MAX_STEPS} steps"), label
                )
        started = perf_counter()
        record: StepRecord | None = None
        try:
            if here is None and step.when is not None and not step.when(scope):
                i += 1
                continue
            record = StepRecord(label, step.verb, step.line, plan=plan.name, index=i)
            run.records.append(record)
            i = step.next
            if watch and isinstance(step, CallStep | FlowStep):
                pending = restored if here is not None else None
                pending = pending or (len(run.records) - 1, snapshot(plan.outputs, scope))
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
                    try:
                        data = await _subflow(
                            run, step, scope, prefix, here.inner() if here else None
                        )
                    except _Waiting as waiting:
                        record.duration_ms = (perf_counter() - started) * 1000
                        frame = _frame(plan, step.index, prefix, scope, before_write)
                        if pending is not None:
                            frame.pending = _encoded(pending[1])
                            frame.pending_kept = _kept_since(run, pending) is not None
                        waiting.frames.insert(0, frame)
                        raise
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
                case AskStep():
                    answers = 0
                    if here is not None:
                        got = _answer(run, step, here.answer)
                        if got is not None:
                            scope[step.into] = got
                            record.duration_ms = (perf_counter() - started) * 1000
                            continue
                        answers = here.frames[0].answers + 1
                        if answers >= step.attempts:
                            raise StepError(
                                "validation",
                                f"no {step.entity} in {answers} answers to '{step.id or 'ask'}'",
                            )
                    asking = step.reprompt if answers and step.reprompt else step.text
                    run.reply = str(asking(scope))
                    frame = _frame(plan, step.index, prefix, scope, before_write)
                    frame.answers = answers
                    record.duration_ms = (perf_counter() - started) * 1000
                    raise _Waiting(frame, step.wait)
                case HandoffStep(reason=reason, note=note):
                    record.duration_ms = (perf_counter() - started) * 1000
                    raise _HandedOff(reason, None if note is None else str(note(scope)))
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


def _answer(run: RunState, step: AskStep, text: str) -> str | None:
    """The value an answer gives the ``ask``: its entity, or the trimmed text; None if none."""
    if step.entity is None:
        return text.strip() or None
    # An `entity:` is checked against intents.yaml at load, so a run that asks one has them.
    return run.intents.entity(step.entity, text) if run.intents is not None else None


def _encoded(value: Any) -> Any:
    try:
        return encode(value)
    except NotStorable as exc:
        raise StepError("validation", str(exc)) from None


def _frame(
    plan: FlowPlan,
    index: int,
    prefix: str,
    scope: dict[str, Any],
    before_write: dict[str, Any] | None,
) -> Frame:
    """What a waiting turn keeps of ``plan``: StepError (validation) for a value it cannot."""
    return Frame(
        flow=plan.name,
        fingerprint=plan.fingerprint,
        index=index,
        prefix=prefix,
        variables=_encoded({name: scope.get(name) for name in plan.variables}),
        steps=_encoded(scope["steps"]),
        before_write=None if before_write is None else _encoded(before_write),
    )


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


async def _subflow(
    run: RunState, step: FlowStep, scope: dict[str, Any], prefix: str, resume: _Resume | None
) -> Any:
    sub = step.subplan
    assert sub is not None  # an unknown sub-flow is a load-time problem
    values: dict[str, Any] = {}
    if resume is None:  # a resumed sub-flow has its variables in its frame
        args = {name: value(scope) for name, value in step.args}
        try:
            values = check_inputs(sub, args)
        except UsageError as exc:
            raise StepError("validation", str(exc)) from None
    label = prefix + (step.id or sub.name) + "."
    try:
        return await _execute(run, sub, values, label, scope["now"], None, resume)
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
