"""One action call of a run, with its attempts: retries, backoff, the call's deadline and outcome.

The runner hands a ``call`` step here. Each attempt is a frozen ``Call`` given to the gateway,
which returns that call's view of the connections; the action runs against it under the
call's one deadline, and the view says afterwards what left (``Traffic``). What comes back is
a ``CallResult``, or a ``StepError`` with its kind and outcome (§7):

- a write is retried only with an ``idempotency_key``, since it may have been done already;
- a write that left and got no answer is ``outcome: unknown``; one that never left,
  ``not_sent``; one that was answered, ``done``;
- a ``Retry-After`` lengthens the wait; no wait reaches past the run's deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from time import perf_counter
from typing import TYPE_CHECKING, Any

from csflow.engine.coerce import CoercionError
from csflow.engine.context import ActionContext, Payload
from csflow.engine.errors import Outcome, StepError
from csflow.engine.plan import CallStep
from csflow.engine.ports import Call, CallConnections, Gateway, Traffic
from csflow.engine.result import StepRecord

if TYPE_CHECKING:
    from csflow.engine.intents import Intents

_SYNC_ACTIONS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="csflow-action")


@dataclass(frozen=True, slots=True)
class CallResult:
    """What one action call gave: its data, the status, and what it sent."""

    data: Any
    status: int | None
    xml: Any
    traffic: Traffic
    outcome: Outcome | None

    @property
    def kept_back(self) -> Mapping[str, object] | None:
        """What a dry run kept from being sent, or None."""
        return self.traffic.kept_back


class RunState:
    """What the calls of one run share: the gateway, deadline, records, the call under way."""

    __slots__ = (
        "active",
        "count",
        "deadline_at",
        "dry_run",
        "gateway",
        "intents",
        "loop",
        "on_write",
        "origin",
        "records",
        "reply",
        "run_id",
    )

    def __init__(
        self,
        gateway: Gateway,
        deadline: float,
        run_id: str,
        dry_run: bool,
        intents: Intents | None = None,
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.intents = intents  # the project's trained intents, handed to actions as ctx.intents
        self.gateway = gateway
        self.deadline_at = self.loop.time() + deadline
        self.run_id = run_id
        self.origin: str | None = None  # a resumed turn: the id of the run's first turn
        self.dry_run = dry_run
        self.records: list[StepRecord] = []
        self.reply: str | None = None
        self.count = 0
        self.on_write: Callable[[StepRecord], Awaitable[None]] | None = None
        # The call under way: its record and view, for a deadline that cuts it off.
        self.active: tuple[StepRecord, CallConnections, float] | None = None

    def redact(self, text: str) -> str:
        return self.gateway.redact(text)


def cut_off(run: RunState) -> str | None:
    """The call a cancelled run cut off, recorded as failed; its id."""
    if run.active is None:
        return None
    record, view, started = run.active
    record.ok = False
    record.outcome = "unknown" if view.traffic().may_have_written else record.outcome
    record.error = {"kind": "deadline", "message": "the call was cut off by the run's deadline"}
    if record.outcome is not None:
        record.error["outcome"] = record.outcome
    record.duration_ms = (perf_counter() - started) * 1000
    return record.id


async def call_action(
    run: RunState, step: CallStep, args: dict[str, Any], scope: dict[str, Any], record: StepRecord
) -> CallResult:
    spec = step.action
    assert spec is not None
    try:
        args = spec.convert(args)
    except CoercionError as exc:
        raise StepError("validation", f"action '{spec.name}': {exc}") from None
    rendered = step.idempotency_key(scope) if step.idempotency_key is not None else None
    # A key that renders empty is no key: "None" would make an unkeyed write retryable.
    key = str(rendered) if rendered not in (None, "") else None
    before_write = partial(run.on_write, record) if run.on_write is not None else None
    retry = step.retry
    attempt = 0
    while True:
        attempt += 1
        record.attempts = attempt
        now = run.loop.time()
        deadline = run.deadline_at
        if step.timeout is not None:
            deadline = min(deadline, now + step.timeout)
        call = Call(
            run_id=run.run_id,
            step=record.id or spec.name,
            action=spec.name,
            attempt=attempt,
            deadline=deadline,
            timeout=step.timeout,
            idempotency_key=key,
            dry_run=run.dry_run,
            before_write=before_write,
        )
        view = run.gateway.for_call(call)
        run.active = (record, view, perf_counter())
        try:
            data = await _once(run, step, args, call, view)
        except StepError as failed:
            run.active = None
            traffic = view.traffic()
            err = failed.with_outcome(_failure_outcome(failed, traffic))
            record.status = err.status
            record.outcome = err.outcome
            if (
                retry is None
                or attempt >= retry.attempts
                or not retry.matches(err.kind, err.status)
                or not err.retryable
                or (traffic.may_have_written and key is None)  # retrying could write twice
            ):
                raise err from None
            delay = min(retry.max_backoff, retry.backoff * 2 ** (attempt - 1)) * random.uniform(
                0.5, 1.0
            )
            if err.retry_after is not None:
                delay = max(delay, err.retry_after)
            if run.loop.time() + delay >= run.deadline_at:
                raise err from None
            await asyncio.sleep(delay)
        else:
            run.active = None  # (left set when cancelled: cut_off records the cut)
            traffic = view.traffic()
            if traffic.kept_back is not None:  # the action saw only the dry run's stand-in
                return CallResult(None, None, None, traffic, None)
            outcome: Outcome | None = "done" if traffic.write and traffic.may_have_written else None
            if outcome is not None:
                record.outcome = outcome
            if isinstance(data, Payload):
                return CallResult(data.data, data.status, data.xml, traffic, outcome)
            return CallResult(data, record.status, None, traffic, outcome)


def _failure_outcome(err: StepError, traffic: Traffic) -> Outcome | None:
    if err.outcome is not None:
        return None  # the adapter said what became of it
    if traffic.may_have_written:
        return "unknown" if err.kind == "timeout" else None
    return "not_sent" if traffic.write else None


async def _once(
    run: RunState, step: CallStep, args: dict[str, Any], call: Call, view: CallConnections
) -> Any:
    spec = step.action
    assert spec is not None
    if call.deadline <= run.loop.time():
        raise StepError("deadline", "no time left before the run's deadline")
    kwargs = {**args, "ctx": ActionContext(call, view, run.intents)} if spec.takes_ctx else args
    try:
        async with asyncio.timeout_at(call.deadline):
            if spec.is_async:
                return await spec.func(**kwargs)
            # Not the loop's default executor: asyncio.run waits for that one at exit, so a
            # stuck sync action would hold run_sync past its deadline.
            return await run.loop.run_in_executor(_SYNC_ACTIONS, partial(spec.func, **kwargs))
    except StepError as err:
        if view.traffic().kept_back is not None:
            return None  # it failed on the dry run's stand-in answer: the write was kept back
        raise err.redacted(run.redact) from None
    except TimeoutError:
        unknown: Outcome | None = "unknown" if view.traffic().may_have_written else None
        if call.deadline >= run.deadline_at:
            raise StepError(
                "deadline", "the call was cut off by the run's deadline", outcome=unknown
            ) from None
        raise StepError("timeout", f"no answer within {step.timeout:g}s", outcome=unknown) from None
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a custom action raised: its message is the error
        if view.traffic().kept_back is not None:
            return None
        raise StepError("action", run.redact(f"{type(exc).__name__}: {exc}")) from None
