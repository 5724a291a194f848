"""The record of a run: what each step did, and how the run ended (§8)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csflow.engine.coerce import to_json

if TYPE_CHECKING:
    from csflow.engine.suspend import Suspended


@dataclass(slots=True)
class StepRecord:
    id: str | None
    verb: str
    line: int
    action: str | None = None
    ok: bool = True
    status: int | None = None
    duration_ms: float = 0.0
    attempts: int = 1
    error: dict[str, Any] | None = None
    outcome: str | None = None
    flow: str | None = None
    dry_run: dict[str, Any] | None = None  # the write a dry run kept back: method, url, body
    # Where the step sits (flow name, step index): for branch coverage, not in the JSON.
    plan: str | None = field(default=None, repr=False)
    index: int = field(default=-1, repr=False)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "verb": self.verb,
            "action": self.action,
            "ok": self.ok,
            "status": self.status,
            "duration_ms": round(self.duration_ms, 3),
            "attempts": self.attempts,
            "error": self.error,
        }
        if self.outcome is not None:
            out["outcome"] = self.outcome
        if self.flow is not None:
            out["flow"] = self.flow
        if self.dry_run is not None:
            out["dry_run"] = self.dry_run
        return out


@dataclass(slots=True)
class RunResult:
    """How a run ended: ``status`` is ``completed`` or ``failed`` (``error`` says why), or for
    conversations (§12) ``waiting`` (``reply`` is the question), ``handoff`` or ``expired``."""

    flow: str
    status: str
    outputs: dict[str, Any] = field(default_factory=dict)
    reply: str | None = None
    error: dict[str, Any] | None = None
    steps: list[StepRecord] = field(default_factory=list)
    run_id: str = ""
    duration_ms: float = 0.0
    # A dry run: its reply is a preview, and what it would have returned past its first
    # kept-back write is in ``preview_outputs``, not ``outputs`` (engine.dry_run).
    dry_run: bool = False
    preview_outputs: dict[str, Any] = field(default_factory=dict)
    # §12: the handoff's {"reason", "note", "intent"}; the intent the conversation started
    # from ({"name", "confidence"}); the conversation; and, while waiting, the saved run.
    handoff: dict[str, Any] | None = None
    intent: dict[str, Any] | None = None
    conversation_id: str | None = None
    suspended: Suspended | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """The run did not fail: it completed, waits for an answer, or was handed over."""
        return self.status in ("completed", "waiting", "handoff")

    @property
    def path(self) -> list[str]:
        """The ids of the steps that ran, in order (sub-flow steps as ``find.orders``)."""
        return [s.id for s in self.steps if s.id]

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flow": self.flow,
            "status": self.status,
            "outputs": self.outputs,
            "reply": self.reply,
            "error": self.error,
            "steps": [s.as_dict() for s in self.steps],
        }
        if self.dry_run:
            out["dry_run"] = True
            out["preview_outputs"] = self.preview_outputs
        if self.conversation_id is not None:
            out["conversation_id"] = self.conversation_id
        if self.intent is not None:
            out["intent"] = self.intent
        if self.handoff is not None:
            out["handoff"] = self.handoff
        return out

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.as_dict(), default=to_json, ensure_ascii=False, **kwargs)
