"""Run history: every run's inputs, outputs, reply, status, error and steps, secrets redacted.

The interface is ``RunStore`` (a Protocol), so that another database could back it; csflow
ships ``SQLiteStore`` (``engine/store/sqlite.py``), one file per project by default at
``PROJECT/.csflow/runs.sqlite3`` (``CSFLOW_STORE`` or ``--store PATH`` moves it).

When a run is recorded:

- right before a write leaves (a POST, a SOAP call, a GraphQL mutation), ``begin`` stores the
  run so far with status ``in_flight`` and returns only once that is durable; a crash from
  then on leaves an ``in_flight`` run whose last step says which write it was;
- when the run ends, ``finish`` stores the whole run. It may queue the work (SQLiteStore
  writes in a thread, in batches), so a run without writes costs its caller a queue put.

A run whose inputs are refused never started and is not recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from csflow.engine.coerce import to_json
from csflow.engine.errors import UsageError
from csflow.engine.result import RunResult, StepRecord

IN_FLIGHT = "in_flight"
STORE_ENV = "CSFLOW_STORE"
DEFAULT_STORE = Path(".csflow") / "runs.sqlite3"

Redact = Callable[[str], str]


def _same(text: str) -> str:
    return text


def now_iso() -> str:
    """UTC now as ``2026-11-20T14:03:07.123Z``: sorts as text, reads as a date."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=to_json, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class RunRecord:
    """One run as the store keeps it. ``steps`` are the §8 step dicts plus ``line``."""

    id: str
    flow: str
    status: str  # in_flight | completed | failed
    started_at: str
    duration_ms: float | None = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    reply: str | None = None
    error: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    redact: Redact = field(default=_same, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """What ``csflow runs --json`` lists for a run."""
        return {
            "id": self.id,
            "flow": self.flow,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": self.duration_ms,
            "error": self.error,
        }

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
            "id": self.id,
            "flow": self.flow,
            "status": self.status,
            "started_at": self.started_at,
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 3),
            "inputs": r(_dumps(self.inputs)),
            "outputs": r(_dumps(self.outputs)),
            "reply": None if self.reply is None else r(self.reply),
            "error": None if self.error is None else r(_dumps(self.error)),
            "error_kind": err.get("kind"),
            "error_step": err.get("step"),
            "steps": [
                {**s, "error": None if s.get("error") is None else r(_dumps(s["error"]))}
                for s in self.steps
            ],
        }


class RunStore(Protocol):
    """Where runs are recorded. ``SQLiteStore`` is one; PostgreSQL could be another.

    A store writes ``RunRecord.encoded()`` (redacted JSON texts). ``begin`` must be durable
    when it returns; ``finish`` may be queued, and ``flush`` waits for what was queued.
    """

    async def begin(self, record: RunRecord) -> None: ...

    def finish(self, record: RunRecord) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...

    def list_runs(
        self, *, flow: str | None = None, failed: bool = False, limit: int = 20
    ) -> list[RunRecord]: ...

    def last_failures(self) -> dict[str, RunRecord]: ...

    def get_run(self, run_id: str) -> RunRecord | None: ...


def _step(record: StepRecord, state: str | None = None) -> dict[str, Any]:
    out = record.as_dict()
    out["line"] = record.line
    if state is not None:
        out["state"] = state
    return out


class Recorder:
    """Records one run: ``before_write`` is the runner's hook, ``end`` its last word."""

    __slots__ = ("inputs", "redact", "started_at", "store")

    def __init__(self, store: RunStore, inputs: Mapping[str, Any], redact: Redact = _same) -> None:
        self.store = store
        self.inputs = dict(inputs)
        self.redact = redact
        self.started_at = now_iso()

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
            redact=self.redact,
        )

    async def before_write(self, result: RunResult, step: StepRecord) -> None:
        """The run so far, ``in_flight``, with ``step`` marked as the write leaving now."""
        steps = [_step(s, IN_FLIGHT if s is step else None) for s in result.steps]
        await self.store.begin(self._record(result, IN_FLIGHT, steps))

    def end(self, result: RunResult) -> None:
        self.store.finish(self._record(result, result.status, [_step(s) for s in result.steps]))


def store_path(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a project's runs go: ``CSFLOW_STORE``, else ``ROOT/.csflow/runs.sqlite3``."""
    env = os.environ if environ is None else environ
    named = env.get(STORE_ENV)
    return Path(named) if named else Path(root) / DEFAULT_STORE


def open_store(path: str | Path, *, create: bool = True) -> RunStore:
    """The SQLite store at ``path``; StoreError when it cannot be opened."""
    from csflow.engine.store.sqlite import SQLiteStore

    return SQLiteStore(Path(path), create=create)


class StoreError(UsageError):
    """The run store cannot be opened or written (the CLI exits 2, as for a usage error)."""


__all__ = [
    "IN_FLIGHT",
    "Recorder",
    "RunRecord",
    "RunStore",
    "StoreError",
    "now_iso",
    "open_store",
    "store_path",
]
