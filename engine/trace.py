"""A turn's steps as a compact trace: what ``csflow chat`` prints and the console's test chat shows.

Plain data, one ``TraceStep`` per step worth showing (one with an id, an action or a
sub-flow, or one that failed): its label (the step id, or its line), what it did (the
action, sub-flow or verb, the HTTP status, "not sent" for a write a dry run kept back),
whether it went well, and whether its write's outcome is unknown. Each front end draws it
its own way: rich text in the terminal, HTML in the console.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from csflow.engine.result import StepRecord


@dataclass(frozen=True, slots=True)
class TraceStep:
    label: str  # the step's id, or "line N" for one without
    detail: str  # e.g. "find_order", "http 200", "ask", "http not sent"
    ok: bool
    unknown: bool = False  # a write that left with no answer (outcome: unknown)
    duration_ms: float = 0.0


def trace(steps: Iterable[StepRecord]) -> list[TraceStep]:
    """The steps worth showing of a turn, in the order they ran."""
    found: list[TraceStep] = []
    for s in steps:
        if not (s.id or s.action or s.flow or not s.ok):
            continue
        detail = s.action or s.flow or s.verb
        if s.status is not None:
            detail += f" {s.status}"
        if s.dry_run is not None:
            detail += " not sent"
        label = s.id or f"line {s.line}"
        found.append(TraceStep(label, detail, s.ok, s.outcome == "unknown", s.duration_ms))
    return found


__all__ = ["TraceStep", "trace"]
