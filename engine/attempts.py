"""One action call of a run, with its attempts: retries, backoff, the call's deadline and outcome.

The runner hands a ``call`` step here; what comes back is the action's data, or a StepError
with its kind and outcome.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from time import perf_counter
from typing import Any

from csflow.engine.coerce import CoercionError
from csflow.engine.context import CURRENT, ActionContext, ConnectionOpener, Payload
from csflow.engine.errors import Outcome, StepError, WriteSkipped
from csflow.engine.plan import CallStep
from csflow.engine.result import StepRecord

_SYNC_ACTIONS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="csflow-action")


class RunState:
    """What the calls of one run share: connections, deadline, records, the call under way."""

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


def cut_off(run: RunState) -> str | None:
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


async def call_action(
    run: RunState, step: CallStep, args: dict[str, Any], scope: dict[str, Any], record: StepRecord
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


async def _once(run: RunState, step: CallStep, args: dict[str, Any], ctx: ActionContext) -> Any:
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
