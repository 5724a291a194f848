"""Branch coverage of flow tests: which ``switch`` branches and ``on_error`` targets ran."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from csflow.engine.plan import FlowPlan, GoTo, SwitchStep


def branches(plan: FlowPlan) -> list[tuple[int, int, str]]:
    """Every (step index, target index, label) a test can reach in ``plan``."""
    out: list[tuple[int, int, str]] = []
    for step in plan.steps:
        name = step.id or f"line {step.line}"
        if isinstance(step, SwitchStep):
            for cond, target in step.cases:
                label = str(cond.source).strip() if cond is not None else "else"
                out.append((step.index, target, f"{name}: {label} → {_target(plan, target)}"))
            if not step.has_default:
                out.append(
                    (step.index, step.next, f"{name}: no match → {_target(plan, step.next)}")
                )
        if isinstance(step.on_error, GoTo) and step.on_error.index != step.next:
            to = step.on_error.index
            out.append((step.index, to, f"{name}: on_error → {_target(plan, to)}"))
    return out


def _target(plan: FlowPlan, index: int) -> str:
    if index >= len(plan.steps):
        return "end"
    step = plan.steps[index]
    return step.id or f"line {step.line}"


def taken(outcomes: Iterable[Any]) -> set[tuple[str, int, int]]:
    """(flow, from step, to step) pairs the runs went through, from their step records."""
    seen: set[tuple[str, int, int]] = set()
    for o in outcomes:
        result = getattr(o, "result", None)
        if result is None:
            continue
        last: dict[str, int] = {}
        for record in result.steps:
            plan, index = getattr(record, "plan", None), getattr(record, "index", None)
            if plan is None or index is None:
                continue
            if plan in last:
                seen.add((plan, last[plan], index))
            last[plan] = index
    return seen


def branch_coverage(
    project: Any, outcomes: list[Any], flows: Iterable[str] | None = None
) -> list[str]:
    """Per flow, the branches the cases reached; only ``flows`` when given (``-k``)."""
    went = taken(outcomes)
    tested = {o.flow for o in outcomes}
    shown = set(project.flows if flows is None else flows)
    lines = []
    for name, plan in sorted(project.flows.items()):
        if name not in shown:
            continue
        all_branches = branches(plan)
        if not all_branches:
            continue
        hit = [b for b in all_branches if (name, b[0], b[1]) in went]
        if name not in tested and not hit:
            lines.append(f"{name}: no cases")
            continue
        lines.append(f"{name}: {len(hit)}/{len(all_branches)} branches")
        lines.extend(
            f"    not reached: {label}"
            for (src, dst, label) in all_branches
            if (name, src, dst) not in went
        )
    return lines
