"""Runs a compiled plan: step records, retries, the step limit, the deadline, sub-flows.

A run is one coroutine. Steps that do no I/O run inline with no task and no await; only
``call`` and ``flow`` steps await. The deadline bounds every call and every retry wait.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from time import perf_counter
from typing import Any

from engine.coerce import CoercionError, check_format, coerce
from engine.compiler import did_you_mean
from engine.context import ActionContext, ConnectionOpener, Payload
from engine.errors import StepError, UsageError
from engine.fields import extract
from engine.plan import FAIL, FlowPlan, Step
from engine.result import RunResult, StepRecord

_SYNC_ACTIONS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="csflow-action")
MAX_STEPS = 1_000
DEFAULT_DEADLINE = 8.0
_FINAL = frozenset({"deadline", "step_limit"})  # no on_error can help: the run is over


class _Failed(Exception):
    """The run ends as failed: a ``fail`` step, or a step error with nowhere to go."""

    def __init__(self, error: StepError, step: str | None) -> None:
        self.error = error
        self.step = step


class _Run:
    __slots__ = (
        "connections",
        "count",
        "deadline_at",
        "dry_run",
        "loop",
        "records",
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


def check_inputs(plan: FlowPlan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs converted to their declared types; every problem named in one UsageError."""
    problems, values = [], {}
    for name in inputs:
        if name not in plan.inputs:
            problems.append(f"unknown input '{name}'{did_you_mean(name, plan.inputs)}")
    for name, spec in plan.inputs.items():
        value = inputs.get(name)
        if isinstance(value, str):
            value = value.strip()  # customers type spaces around what they paste
        if value is None or value == "":
            if spec.required and spec.default is None:
                problems.append(f"missing input '{name}' ({spec.type})")
            values[name] = spec.default
            continue
        try:
            value = coerce(value, spec.type)
        except CoercionError as exc:
            problems.append(f"input '{name}': {exc}")
            continue
        bad = check_format(value, spec.format)
        if bad is None and spec.enum is not None and value not in spec.enum:
            bad = f"{value!r} is not one of {', '.join(map(str, spec.enum))}"
        if bad:
            problems.append(f"input '{name}': {bad}")
        values[name] = value
    if problems:
        raise UsageError(f"flow '{plan.name}': " + "; ".join(problems))
    return values


async def run_plan(
    plan: FlowPlan,
    inputs: Mapping[str, Any],
    connections: ConnectionOpener,
    *,
    deadline: float = DEFAULT_DEADLINE,
    run_id: str | None = None,
    dry_run: bool = False,
) -> RunResult:
    """Run a flow to its end. Inputs are checked first (UsageError); the rest is the result."""
    values = check_inputs(plan, inputs)
    started = perf_counter()
    run = _Run(connections, deadline, run_id or uuid.uuid4().hex, dry_run)
    result = RunResult(flow=plan.name, status="completed", run_id=run.run_id, steps=run.records)
    try:
        async with asyncio.timeout_at(run.deadline_at):
            result.outputs = await _execute(run, plan, values, "", dt.datetime.now(dt.UTC))
    except _Failed as failed:
        result.status, result.error = "failed", {**failed.error.as_dict(), "step": failed.step}
    except TimeoutError:
        result.status = "failed"
        result.error = {
            "kind": "deadline",
            "message": f"the run passed its deadline of {deadline:g}s",
            "step": None,
        }
    result.reply = run.reply
    result.duration_ms = (perf_counter() - started) * 1000
    return result


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
                entry = visible.get(step.id) or _visible(record, None)
                entry["ok"], entry["error"] = False, record.error
                visible[step.id] = entry
            if step.on_error == FAIL or err.kind in _FINAL:
                raise _Failed(err, label) from None
            i = step.on_error
    return _outputs(plan, scope, returned or {})


def _outputs(plan: FlowPlan, scope: dict[str, Any], returned: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in plan.outputs.items():
        value = returned[name] if name in returned else scope.get(name)
        try:
            value = coerce(value, spec.type)
        except CoercionError as exc:
            raise _Failed(StepError("validation", f"output '{name}': {exc}"), None) from None
        if value is None and spec.required:
            raise _Failed(
                StepError("validation", f"output '{name}' is required but was not set"), None
            )
        if value is not None and spec.enum is not None and value not in spec.enum:
            raise _Failed(
                StepError("validation", f"output '{name}': {value!r} is not one of {spec.enum}"),
                None,
            )
        out[name] = value
    return out


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
        data, xml, status = data.data, data.xml, data.status
        record.status = status
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
    key = str(step.idempotency_key(scope)) if step.idempotency_key is not None else None
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
        )
        try:
            return await _once(run, step, args, ctx)
        except StepError as err:
            record.status = err.status
            if ctx.write and ctx.sent and err.kind == "timeout" and err.outcome is None:
                err.outcome = "unknown"
            record.outcome = err.outcome
            if (
                retry is None
                or attempt >= retry.attempts
                or not retry.matches(err.kind, err.status)
            ):
                raise
            if not err.retryable or (ctx.write and ctx.sent and key is None):
                raise  # a write may have happened: retrying could do it twice
            delay = min(retry.max_backoff, retry.backoff * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1.0
            )
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
            if run.loop.time() + delay >= run.deadline_at:
                raise
            await asyncio.sleep(delay)


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
    try:
        async with asyncio.timeout_at(limit):
            if spec.is_async:
                return await spec.func(**kwargs)
            # Not the loop's default executor: asyncio.run waits for that one at exit, so a
            # stuck sync action would hold run_sync past its deadline.
            return await run.loop.run_in_executor(_SYNC_ACTIONS, partial(spec.func, **kwargs))
    except StepError:
        raise
    except TimeoutError:
        if limit >= run.deadline_at:
            raise StepError(
                "deadline",
                "the call was cut off by the run's deadline",
                outcome="unknown" if ctx.write and ctx.sent else None,
            ) from None
        raise StepError(
            "timeout",
            f"no answer within {step.timeout:g}s",
            outcome="unknown" if ctx.write and ctx.sent else None,
        ) from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a custom action raised: its message is the error
        raise StepError("action", f"{type(exc).__name__}: {exc}") from None
