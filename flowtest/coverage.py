"""Branch coverage of flow tests: which ``switch`` branches and ``on_error`` targets ran,
which ``ask`` steps were answered (and, for an ``entity``, asked again after an answer that
lacked it), and which ``handoff`` steps were reached.

A branch is a (step, target) pair of one flow; two step records of one run in a row are a
branch taken. A conversation's turns are runs of their own, and a turn that answers an
``ask`` records that ``ask`` again before the step after it, so an answer counts in the turn
that gives it. A handoff ends the run, so it is reached rather than taken: its target is
``REACHED``, and any record of the step counts. An ``ask`` asked again is seen in the turn
that ends waiting on it with answers already given (its saved frame counts them): its
target is ``ASKED_AGAIN``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from csflow.engine.plan import AskStep, FlowPlan, GoTo, HandoffStep, SwitchStep

REACHED = -1  # the target of a branch that is the step itself being reached
ASKED_AGAIN = -2  # the target of an ask's reprompt: the answer did not hold its entity


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
        if isinstance(step, AskStep):
            out.append((step.index, step.next, f"{name}: answered → {_target(plan, step.next)}"))
            if step.entity is not None and step.attempts > 1:
                label = f"{name}: asked again (no {step.entity} in the answer)"
                out.append((step.index, ASKED_AGAIN, label))
        if isinstance(step, HandoffStep):
            out.append((step.index, REACHED, f"{name}: handoff ({step.reason})"))
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
    """(flow, from step, to step) pairs the runs went through, from their step records, and
    (flow, step, REACHED) for every step that ran. An outcome gives its runs as ``results``
    (one per turn) or its one run as ``result``."""
    seen: set[tuple[str, int, int]] = set()
    runs = (r for o in outcomes for r in getattr(o, "results", None) or [o.result] if r)
    for result in runs:
        last: dict[str, int] = {}
        for record in result.steps:
            plan, index = getattr(record, "plan", None), getattr(record, "index", None)
            if plan is None or index is None:
                continue
            seen.add((plan, index, REACHED))
            if plan in last:
                seen.add((plan, last[plan], index))
            last[plan] = index
        waiting = getattr(result, "suspended", None)
        if waiting is not None and waiting.ask.answers:
            seen.add((waiting.ask.flow, waiting.ask.index, ASKED_AGAIN))
    return seen


def branch_coverage(
    project: Any, outcomes: list[Any], flows: Iterable[str] | None = None
) -> list[str]:
    """Per flow, the branches the cases reached; only ``flows`` when given (``-k``)."""
    went = taken(outcomes)
    # A conversation's cases test the flows its turns ran.
    tested = {o.flow for o in outcomes} | {r.flow for o in outcomes for r in o.results}
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
