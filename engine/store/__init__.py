"""Run history, the engine's port: every run's inputs, outputs, reply, status, error and steps.

The engine owns the interface (``RunWriter``, ``RunReader``, ``RunStore``: Protocols), the
record (``RunRecord``) and the ``Recorder`` that the runner reports to. Stores are adapters,
opened by ``csflow.adapters.stores.open_store``: ``csflow.adapters.sqlite_store.SQLiteStore``
and ``csflow.adapters.postgres_store.PostgresStore``; ``memory.MemoryStore`` is the one in
process. ``codec`` holds the rows they all write, ``inbox`` the turn-taking they share.

When a run is recorded:

- right before a write leaves (a POST, a SOAP call, a GraphQL mutation), ``begin`` stores the
  run so far with status ``in_flight`` and returns only once that is durable; a crash from
  then on leaves an ``in_flight`` run whose last step says which write it was;
- when the run ends, ``finish`` queues the whole run, and ``Project.run`` awaits its commit
  before returning, so that no answered run is lost. Concurrent runs share one commit. The
  wait ends at the run's deadline: a store slower than that (a database that is down) keeps
  the run queued and writes it later, and the answer still goes out in time;
- a run cut off by its caller (a channel's deadline) is queued the same way, not awaited.

A run whose inputs are refused never started and is not recorded.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from csflow.engine.coerce import to_json
from csflow.engine.errors import StoreError
from csflow.engine.result import RunResult, StepRecord
from csflow.engine.store.conversations import ConversationStore

log = logging.getLogger("csflow.store")

IN_FLIGHT = "in_flight"

Redact = Callable[[str], str]


def _same(text: str) -> str:
    return text


def now_iso() -> str:
    """UTC now as ``2026-11-20T14:03:07.123Z``: sorts as text, reads as a date."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def storable(text: str) -> str:
    """``text`` as valid UTF-8: a lone surrogate (``"ORD-1003\\ud800"``) becomes ``\\ud800``.

    Customers' text can hold one (a broken emoji, a fuzzer), and no UTF-8 database takes it.
    In a JSON text the escape reads back as the same string; in a reply it shows as text.
    """
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _dumps(value: Any) -> str:
    return storable(json.dumps(value, default=to_json, ensure_ascii=False, separators=(",", ":")))


@dataclass(slots=True)
class RunRecord:
    """One run as the store keeps it. ``steps`` are the §8 step dicts plus ``line``."""

    id: str
    flow: str
    status: str  # in_flight | completed | failed (and §12's waiting | handoff | expired)
    started_at: str
    duration_ms: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    reply: str | None = None
    error: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    # A turn of a conversation (§12): its id and the turn's number (1, 2, ...).
    conversation_id: str | None = None
    turn: int | None = None
    dry_run: bool = False
    redact: Redact = field(default=_same, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """What ``csflow runs --json`` lists for a run."""
        out = {
            "id": self.id,
            "flow": self.flow,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }
        if self.conversation_id is not None:
            out["conversation_id"] = self.conversation_id
            out["turn"] = self.turn
        if self.dry_run:
            out["dry_run"] = True
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "inputs": self.inputs,
            "outputs": self.outputs,
            "reply": self.reply,
            "steps": self.steps,
        }

    def encoded(self) -> dict[str, Any]:
        """The record as JSON texts with every secret redacted: what a store writes."""
        r = self.redact
        err = self.error or {}
        return {
            "id": storable(self.id),  # a caller may name the run (Project.run's run_id)
            "flow": self.flow,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "inputs": r(_dumps(self.inputs)),
            "outputs": r(_dumps(self.outputs)),
            "reply": None if self.reply is None else r(storable(self.reply)),
            "error": None if self.error is None else r(_dumps(self.error)),
            "error_kind": err.get("kind"),
            "error_step": err.get("step"),
            "conversation_id": self.conversation_id,
            "turn": self.turn,
            "dry_run": self.dry_run,
            "steps": [
                {**s, "error": None if s.get("error") is None else r(_dumps(s["error"]))}
                for s in self.steps
            ],
        }


class RunWriter(Protocol):
    """What a run needs from a store: the port the engine records through.

    Durability is awaited, never blocked on: ``begin`` returns once the ``in_flight`` record
    is committed, and ``finish`` queues the finished run at once (it is called from the
    runner's last word, also when the run was cancelled) and returns an awaitable that
    resolves once that run is committed, or raises ``StoreError``. A store commits what
    is queued together (one transaction for many runs), so awaiting costs a run a share
    of one commit. Not awaiting it is best effort: the record is still written.

    ``flush`` and ``close`` are for shutdown and synchronous callers (the CLI, a thread),
    never for the event loop. The PostgreSQL store has the same shape: ``finish`` puts the
    record on its writer's queue and hands back that writer's future. Each turn of a
    conversation (§12) is a run record of its own, ``waiting`` when it ended on an ``ask``;
    its ``conversation_id`` and ``turn`` link it to the transcript.
    """

    async def begin(self, record: RunRecord) -> None: ...

    def finish(self, record: RunRecord) -> Awaitable[None]: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class RunReader(Protocol):
    """What ``csflow runs`` reads. Synchronous: call it from a thread when on a loop."""

    def list_runs(
        self,
        *,
        flow: str | None = None,
        failed: bool = False,
        status: str | None = None,
        since: str | None = None,
        until: str | None = None,
        conversation_id: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Newest first, summary fields only (no steps). ``since``/``until`` are ISO texts
        compared with ``started_at``; ``failed`` is ``status="failed"``."""
        ...

    def last_failures(self) -> dict[str, RunRecord]: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...


class RunStore(RunWriter, RunReader, ConversationStore, Protocol):
    """A run store: ``SQLiteStore`` (``csflow.adapters.sqlite_store``) is one. It keeps the
    conversations too (``engine.store.conversations``), so one URL names all shared state.

    A store writes ``RunRecord.encoded()``: redacted JSON texts that any UTF-8 database takes.
    """


def _step(record: StepRecord, state: str | None = None) -> dict[str, Any]:
    out = record.as_dict()
    out["line"] = record.line
    if state is not None:
        out["state"] = state
    return out


class Recorder:
    """Records one run: ``before_write`` is the runner's hook, ``end`` its last word.

    ``end`` queues the finished run (it cannot wait: the runner calls it also while being
    cancelled); ``committed`` is what ``Project.run`` awaits before it returns the result,
    until ``deadline`` seconds from now (the run's own) at most.
    """

    __slots__ = (
        "_committed",
        "_run_id",
        "_until",
        "conversation_id",
        "inputs",
        "redact",
        "started_at",
        "store",
        "turn",
    )

    def __init__(
        self,
        store: RunWriter,
        inputs: Mapping[str, Any],
        redact: Redact = _same,
        deadline: float | None = None,
    ) -> None:
        self.store = store
        self._until = None if deadline is None else time.monotonic() + deadline
        self.inputs = dict(inputs)
        self.redact = redact
        self.started_at = now_iso()
        self._committed: Awaitable[None] | None = None
        self._run_id = ""
        self.conversation_id: str | None = None  # a conversation's turn (§12)
        self.turn: int | None = None

    def _record(self, result: RunResult, status: str, steps: list[dict[str, Any]]) -> RunRecord:
        return RunRecord(
            id=result.run_id,
            flow=result.flow,
            status=status,
            started_at=self.started_at,
            duration_ms=result.duration_ms if status != IN_FLIGHT else None,
            inputs=self.inputs,
            outputs=result.outputs,
            reply=result.reply,
            error=result.error,
            steps=steps,
            conversation_id=self.conversation_id,
            turn=self.turn,
            dry_run=result.dry_run,
            redact=self.redact,
        )

    async def before_write(self, result: RunResult, step: StepRecord) -> None:
        """The run so far, ``in_flight``, with ``step`` marked as the write leaving now."""
        steps = [_step(s, IN_FLIGHT if s is step else None) for s in result.steps]
        await self.store.begin(self._record(result, IN_FLIGHT, steps))

    def end(self, result: RunResult) -> None:
        record = self._record(result, result.status, [_step(s) for s in result.steps])
        self._run_id = record.id
        self._committed = self.store.finish(record)

    async def committed(self) -> None:
        """Return once the finished run is durable.

        A store that cannot write fails open: the failure is logged with the run's id and
        the answer still goes out, since refusing to answer would not bring the run back. So
        does a store that has not committed by the run's deadline: the caller (a platform)
        cannot wait longer than that, and the run stays queued in the store (whose own
        timeout may be longer than the platform's deadline).
        """
        if self._committed is None:
            return
        try:
            if self._until is None:
                await self._committed
                return
            commit = asyncio.ensure_future(self._committed)
            # wait, not wait_for: the commit must not be cancelled, only no longer awaited.
            done, _ = await asyncio.wait({commit}, timeout=max(self._until - time.monotonic(), 0))
            if not done:
                log.warning(
                    "run %s was answered before the run store committed it (the run's deadline"
                    " came first); it stays queued and is written when the store answers",
                    self._run_id,
                )
                return
            commit.result()
        except StoreError as exc:
            log.error("run %s was answered but not recorded: %s", self._run_id, exc)


__all__ = [
    "IN_FLIGHT",
    "Recorder",
    "RunReader",
    "RunRecord",
    "RunStore",
    "RunWriter",
    "now_iso",
    "storable",
]
