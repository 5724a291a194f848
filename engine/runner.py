"""Runs a compiled plan: step records, retries, the step limit, the deadline, sub-flows.

A run is one coroutine. Steps that do no I/O run inline with no task and no await; only
``call`` and ``flow`` steps await. The deadline bounds every call and every retry wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from time import perf_counter
from typing import Any

from csflow.engine.coerce import CoercionError
from csflow.engine.context import CURRENT, ActionContext, ConnectionOpener, Payload
from csflow.engine.errors import Outcome, StepError, UsageError, WriteSkipped
from csflow.engine.fields import extract
from csflow.engine.flow_io import check_inputs, check_outputs
from csflow.engine.plan import FAIL, FlowPlan, Step
from csflow.engine.result import RunResult, StepRecord

_SYNC_ACTIONS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="csflow-action")
MAX_STEPS = 1_000
DEFAULT_DEADLINE = 8.0
_FINAL = frozenset({"deadline", "step_limit"})  # no on_error can help: the run is over
# The run-wide timeout is a backstop a little after the deadline, so that the call's own
# timeout (at the deadline) is the one that fires and says which step it cut off.
_BACKSTOP = 0.05

BeforeWrite = Callable[[RunResult, StepRecord], Awaitable[None]]


class _Failed(Exception):
    """The run ends as failed: a ``fail`` step, or a step error with nowhere to go."""

    def __init__(self, error: StepError, step: str | None) -> None:
        self.error = error
        self.step = step


class _Run:
    __slots__ = (
        "active",
        "connections",
        "count",
        "deadline_at",
        "dry_run",
        "loop",
        "on_write",
        "records",
        "redact",
        "reply",
        "run_id",
    )

    def __init__(
        self, connections: ConnectionOpener, deadline: float, run_id: str, dry_run: bool
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.connections = connections
        self.deadline_at = self.loop.time() + deadline
        self.run_id = run_id
        self.dry_run = dry_run
        self.records: list[StepRecord] = []
        self.reply: str | None = None
        self.count = 0
        self.on_write: Callable[[StepRecord], Awaitable[None]] | None = None
        self.redact: Callable[[str], str] = getattr(connections, "redact", _same)
        # The call under way: its record and context, for a deadline that cuts it off.
        self.active: tuple[StepRecord, ActionContext, float] | None = None


def _same(text: str) -> str:
    return text


async def run_plan(
    plan: FlowPlan,
    inputs: Mapping[str, Any],
    connections: ConnectionOpener,
    *,
    deadline: float = DEFAULT_DEADLINE,
    run_id: str | None = None,
    dry_run: bool = False,
    before_write: BeforeWrite | None = None,
    on_end: Callable[[RunResult], None] | None = None,
    now: dt.datetime | None = None,
) -> RunResult:
    """Run a flow to its end. Inputs are checked first (UsageError); the rest is the result.

    ``before_write(result, step)`` is awaited right before a write leaves (the run store's
    ``in_flight`` record); ``result`` is the run so far. ``on_end(result)`` is called once
    the run has ended, also when its caller cancelled it.
    """
    values = check_inputs(plan, inputs)
    started = perf_counter()
    run = _Run(connections, deadline, run_id or uuid.uuid4().hex, dry_run)
    result = RunResult(flow=plan.name, status="completed", run_id=run.run_id, steps=run.records)
    if before_write is not None:
        run.on_write = partial(before_write, result)
    try:
        async with asyncio.timeout_at(run.deadline_at + _BACKSTOP):
            clock = now if now is not None else dt.datetime.now(dt.UTC)
            result.outputs = await _execute(run, plan, values, "", clock)
    except _Failed as failed:
        result.status, result.error = "failed", {**failed.error.as_dict(), "step": failed.step}
    except TimeoutError:
        result.status = "failed"
        result.error = {
            "kind": "deadline",
            "message": f"the run passed its deadline of {deadline:g}s",
            "step": _cut_off(run),
        }
    except asyncio.CancelledError:
        result.status = "failed"
        result.error = {
            "kind": "deadline",
            "message": "the run was cancelled by its caller",
            "step": _cut_off(run),
        }
        _end(run, result, started, on_end)
        raise
    _end(run, result, started, on_end)
    return result


def _end(
    run: _Run, result: RunResult, started: float, on_end: Callable[[RunResult], None] | None
) -> None:
    result.reply = run.reply
    result.duration_ms = (perf_counter() - started) * 1000
    if on_end is not None:
        on_end(result)


async def _execute(
    run: _Run, plan: FlowPlan, values: dict[str, Any], prefix: str, now: dt.datetime
) -> dict[str, Any]:
    scope = dict(plan.base_scope)
    scope.update(values)
    visible: dict[str, Any] = {}
    scope["steps"] = visible
    scope["now"] = now
    steps = plan.steps
    n = len(steps)
    i = 0
    returned: dict[str, Any] | None = None
    while i < n:
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
            verb = step.verb
            if verb == "set":
                for name, value in step.items:
                    scope[name] = value(scope)
                i = step.next
            elif verb == "switch":
                i = step.next
                for cond, target in step.cases:
                    if cond is None or cond(scope):
                        i = target
                        break
            elif verb == "call" or verb == "flow":
                await _call(run, step, scope, record, prefix)
                i = step.next
            elif verb == "extract":
                assert step.source is not None
                scope.update(extract(step.fields, step.source(scope)))
                i = step.next
            elif verb == "reply":
                assert step.text is not None
                run.reply = str(step.text(scope))
                i = step.next
            elif verb == "return":
                returned = {name: value(scope) for name, value in step.items}
                record.duration_ms = (perf_counter() - started) * 1000
                break
            elif verb == "fail":
                assert step.text is not None
                failure = StepError("flow_failed", str(step.text(scope)))
                record.ok, record.error = False, failure.as_dict()
                raise _Failed(failure, label)
            else:  # a plain jump
                i = step.next
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
            if step.on_error == FAIL or err.kind in _FINAL:
                raise _Failed(err, label) from None
            i = step.on_error
    try:
        return check_outputs(plan, scope, returned or {})
    except StepError as err:
        raise _Failed(err, None) from None


def _cut_off(run: _Run) -> str | None:
    """The call the backstop cut off, recorded as failed; its id."""
    if run.active is None:
        return None
    record, ctx, started = run.active
    record.ok = False
    record.outcome = "unknown" if ctx.may_have_written else record.outcome
    record.error = {"kind": "deadline", "message": "the call was cut off by the run's deadline"}
    if record.outcome is not None:
        record.error["outcome"] = record.outcome
    record.duration_ms = (perf_counter() - started) * 1000
    return record.id


def _visible(record: StepRecord, data: Any) -> dict[str, Any]:
    return {
        "ok": record.ok,
        "status": record.status,
        "data": data,
        "error": record.error,
        "duration_ms": record.duration_ms,
        "attempts": record.attempts,
        "outcome": record.outcome,
    }


async def _call(
    run: _Run, step: Step, scope: dict[str, Any], record: StepRecord, prefix: str
) -> None:
    args = {name: value(scope) for name, value in step.args}
    if step.verb == "flow":
        record.flow = step.subflow
        data = await _subflow(run, step, args, scope, prefix)
    else:
        record.action = step.action_name
        payload = await _attempts(run, step, args, scope, record)
        data = payload
    xml = None
    status = record.status
    if isinstance(data, Payload):
        record.dry_run = data.details.get("dry_run")
        data, xml, status = data.data, data.xml, data.status
        record.status = status
    if record.dry_run is not None:  # nothing came back: the fields take their defaults
        if step.id:
            scope["steps"][step.id] = _visible(record, None)
        scope.update({f.name: f.default for f in step.fields})
        return
    if step.id:
        scope["steps"][step.id] = _visible(record, data)
    if step.verb == "flow":
        if step.as_name:
            scope[step.as_name] = data
        else:
            scope.update(data)
    if step.fields:
        source = step.source(scope) if step.source is not None else data
        scope.update(extract(step.fields, source, xml if step.source is None else None))


async def _subflow(
    run: _Run, step: Step, args: dict[str, Any], scope: dict[str, Any], prefix: str
) -> Any:
    sub = step.subplan
    assert sub is not None
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
        raise StepError(
            "flow_failed",
            f"sub-flow '{sub.name}' failed: {failed.error.message}",
            details={"cause": failed.error.kind},
        ) from None


async def _attempts(
    run: _Run, step: Step, args: dict[str, Any], scope: dict[str, Any], record: StepRecord
) -> Any:
    spec = step.action
    assert spec is not None
    try:
        args = spec.convert(args)
    except CoercionError as exc:
        raise StepError("validation", f"action '{spec.name}': {exc}") from None
    rendered = step.idempotency_key(scope) if step.idempotency_key is not None else None
    # A key that renders empty is no key: "None" would make an unkeyed write retryable.
    key = str(rendered) if rendered not in (None, "") else None
    retry = step.retry
    attempt = 0
    while True:
        attempt += 1
        record.attempts = attempt
        ctx = ActionContext(
            run.connections,
            run_id=run.run_id,
            step=record.id or spec.name,
            action=spec.name,
            timeout=step.timeout,
            idempotency_key=key,
            dry_run=run.dry_run,
            before_write=partial(run.on_write, record) if run.on_write is not None else None,
        )
        run.active = (record, ctx, perf_counter())
        try:
            data = await _once(run, step, args, ctx)
        except StepError as err:
            run.active = None
            record.status = err.status
            wrote = ctx.may_have_written
            if wrote and err.kind == "timeout" and err.outcome is None:
                err.outcome = "unknown"
            elif ctx.write and not wrote and err.outcome is None:
                err.outcome = "not_sent"
            record.outcome = err.outcome
            if (
                retry is None
                or attempt >= retry.attempts
                or not retry.matches(err.kind, err.status)
            ):
                raise
            if not err.retryable or (wrote and key is None):
                raise  # a write may have happened: retrying could do it twice
            delay = min(retry.max_backoff, retry.backoff * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1.0
            )
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
            if run.loop.time() + delay >= run.deadline_at:
                raise
            await asyncio.sleep(delay)
        else:
            run.active = None  # (left set when cancelled: the backstop records the cut)
            if ctx.write:
                record.outcome = "done" if ctx.may_have_written else record.outcome
            return data


async def _once(run: _Run, step: Step, args: dict[str, Any], ctx: ActionContext) -> Any:
    spec = step.action
    assert spec is not None
    now = run.loop.time()
    limit = run.deadline_at
    if step.timeout is not None:
        limit = min(limit, now + step.timeout)
    if limit <= now:
        raise StepError("deadline", "no time left before the run's deadline")
    kwargs = {**args, "ctx": ctx} if spec.takes_ctx else args
    token = CURRENT.set(ctx)
    try:
        async with asyncio.timeout_at(limit):
            if spec.is_async:
                return await spec.func(**kwargs)
            # Not the loop's default executor: asyncio.run waits for that one at exit, so a
            # stuck sync action would hold run_sync past its deadline.
            return await run.loop.run_in_executor(_SYNC_ACTIONS, partial(spec.func, **kwargs))
    except StepError as err:
        err.message = run.redact(err.message)
        raise
    except TimeoutError:
        unknown: Outcome | None = "unknown" if ctx.may_have_written else None
        if limit >= run.deadline_at:
            raise StepError(
                "deadline", "the call was cut off by the run's deadline", outcome=unknown
            ) from None
        raise StepError("timeout", f"no answer within {step.timeout:g}s", outcome=unknown) from None
    except asyncio.CancelledError:
        raise
    except WriteSkipped as skipped:  # a dry run: the write stayed here, the run goes on
        return Payload(data=None, details={"dry_run": skipped.would_send})
    except Exception as exc:  # a custom action raised: its message is the error
        raise StepError("action", run.redact(f"{type(exc).__name__}: {exc}")) from None
    finally:
        CURRENT.reset(token)
