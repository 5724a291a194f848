"""A run that waits for the customer's answer, saved as plain JSON and checked on resume (§12).

When a run reaches an ``ask``, each flow on its way there (the run's own flow, then each
sub-flow down to the one that asks) is saved as a ``Frame``: which step it stopped at, its
variables and its ``steps.*``. The next message resumes the innermost frame at its ``ask``
and each outer one at the ``flow`` step that was under way, so no step that ran is run again.

The state is data, never a pickle: ``encode`` writes the values a flow can hold (JSON's, plus
dates, datetimes and decimals, tagged) and refuses anything else by name. Each frame carries
its flow's fingerprint (``FlowPlan.fingerprint``): a flow changed while the conversation
waited is told apart (``FlowChanged``) instead of being resumed at the wrong step.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from csflow.engine.errors import CsflowError
from csflow.engine.plan import AskStep, FlowPlan, FlowStep

VERSION = 1
_TAG = "$t"


class FlowChanged(CsflowError):
    """A waiting run's flow is not the one it was saved with: it cannot resume."""


class NotStorable(CsflowError):
    """A variable holds a value that a waiting conversation cannot keep."""


@dataclass(slots=True)
class Frame:
    """One flow of a waiting run: where it stopped, and what it held."""

    flow: str
    fingerprint: str
    index: int  # the ask step (innermost frame) or the flow step under way (outer frames)
    prefix: str  # how its step ids are recorded: "" for the run's flow, "find." below
    # Its variables and what `steps.ID` read, already encoded (``encode``): a value that
    # cannot be kept fails the ask itself, where the flow can still handle it.
    variables: dict[str, Any]
    steps: dict[str, Any]
    answers: int = 0  # answers given to this ask so far (innermost frame)
    # A dry run's outputs before its first kept-back write (engine.dry_run), and the
    # snapshot taken before the flow step under way, with whether a write was kept since;
    # encoded like the variables.
    before_write: dict[str, Any] | None = None
    pending: dict[str, Any] | None = None
    pending_kept: bool = False


@dataclass(slots=True)
class Suspended:
    """A waiting run: its frames (the run's flow first), and the run-wide counters."""

    frames: list[Frame]
    run_id: str  # the run's first turn
    count: int  # steps taken so far: the step limit spans turns
    expires_at: str  # ISO 8601 UTC
    dry_run: bool = False

    @property
    def ask(self) -> Frame:
        return self.frames[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "version": VERSION,
            "run_id": self.run_id,
            "count": self.count,
            "expires_at": self.expires_at,
            "dry_run": self.dry_run,
            "frames": [_frame_json(f) for f in self.frames],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Suspended:
        if data.get("version") != VERSION:
            raise FlowChanged(
                f"the saved conversation is of another version ({data.get('version')})"
            )
        return cls(
            frames=[_frame_from(f) for f in data["frames"]],
            run_id=data["run_id"],
            count=int(data["count"]),
            expires_at=data["expires_at"],
            dry_run=bool(data.get("dry_run")),
        )

    def check(self, plan: FlowPlan) -> None:
        """FlowChanged unless every frame still matches the flow it was saved from."""
        current: FlowPlan | None = plan
        for depth, frame in enumerate(self.frames):
            if current is None or current.name != frame.flow:
                raise FlowChanged(f"flow '{frame.flow}' is no longer called where it waited")
            if current.fingerprint != frame.fingerprint:
                raise FlowChanged(f"flow '{frame.flow}' changed while the conversation waited")
            if not 0 <= frame.index < len(current.steps):
                raise FlowChanged(f"flow '{frame.flow}' no longer has the step it waited at")
            step = current.steps[frame.index]
            innermost = depth == len(self.frames) - 1
            if innermost and not isinstance(step, AskStep):
                raise FlowChanged(f"flow '{frame.flow}' no longer asks where it waited")
            if not innermost:
                if not isinstance(step, FlowStep):
                    raise FlowChanged(f"flow '{frame.flow}' no longer calls a sub-flow there")
                current = step.subplan


def _frame_json(f: Frame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "flow": f.flow,
        "fingerprint": f.fingerprint,
        "index": f.index,
        "prefix": f.prefix,
        "variables": f.variables,
        "steps": f.steps,
    }
    if f.answers:
        out["answers"] = f.answers
    if f.before_write is not None:
        out["before_write"] = f.before_write
    if f.pending is not None:
        out["pending"] = f.pending
        out["pending_kept"] = f.pending_kept
    return out


def _frame_from(d: Mapping[str, Any]) -> Frame:
    return Frame(
        flow=d["flow"],
        fingerprint=d["fingerprint"],
        index=int(d["index"]),
        prefix=d["prefix"],
        variables=d["variables"],
        steps=d["steps"],
        answers=int(d.get("answers", 0)),
        before_write=d.get("before_write"),
        pending=d.get("pending"),
        pending_kept=bool(d.get("pending_kept")),
    )


# -- values as JSON ----------------------------------------------------------------------------


def encode(value: Any, where: str = "") -> Any:
    """``value`` as JSON data; NotStorable names the first value that is not a flow's kind."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_TAG: "float", "v": repr(value)}
    if isinstance(value, list | tuple):
        return [encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _TAG not in value:
            return {k: encode(v, f"{where}.{k}" if where else k) for k, v in value.items()}
        return {_TAG: "dict", "v": [[encode(k, where), encode(v, where)] for k, v in value.items()]}
    if isinstance(value, dt.datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, bytes):
        return {_TAG: "bytes", "v": base64.b64encode(value).decode("ascii")}
    raise NotStorable(
        f"'{where or 'a value'}' holds a Python {type(value).__name__} value, which a waiting"
        " conversation cannot keep: keep plain values (text, numbers, lists, mappings, dates)"
        " in variables"
    )


def decode(value: Any) -> Any:
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    tag = value.get(_TAG)
    if tag is None:
        return {k: decode(v) for k, v in value.items()}
    raw = value["v"]
    match tag:
        case "float":
            return float(raw)
        case "dict":
            return {decode(k): decode(v) for k, v in raw}
        case "datetime":
            return dt.datetime.fromisoformat(raw)
        case "date":
            return dt.date.fromisoformat(raw)
        case "decimal":
            return Decimal(raw)
        case "bytes":
            return base64.b64decode(raw)
    raise FlowChanged(f"the saved conversation holds a value of unknown kind '{tag}'")


__all__ = ["FlowChanged", "Frame", "NotStorable", "Suspended", "decode", "encode"]
