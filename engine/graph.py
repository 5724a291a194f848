"""A flow as a Mermaid flowchart: steps, jumps, switch branches and error paths.

``csflow graph`` prints it, and the console draws it; both read the compiled plan, so the
diagram shows what runs, step ids included.
"""

from __future__ import annotations

from csflow.engine.plan import (
    CallStep,
    FailStep,
    FlowPlan,
    FlowStep,
    GoTo,
    ReturnStep,
    Step,
    SwitchStep,
)


def mermaid(plan: FlowPlan) -> str:
    """The Mermaid source of ``plan``'s flowchart, one node per step (``s0``, ``s1``, …)."""
    lines = ["flowchart TD", f"    start([{plan.name}]) --> s0"]
    n = len(plan.steps)
    for step in plan.steps:
        label = _label(step)
        match step:
            case SwitchStep():
                lines.append(f"    s{step.index}{{{{{label}}}}}")
            case ReturnStep() | FailStep():
                lines.append(f'    s{step.index}(["{label}"])')
            case _:
                lines.append(f'    s{step.index}["{label}"]')
    lines.append("    done([end])")
    for step in plan.steps:
        src = f"s{step.index}"
        match step:
            case SwitchStep(cases=cases):
                for cond, target in cases:
                    text = _escape(str(cond.source).strip()) if cond is not None else "else"
                    lines.append(f'    {src} -- "{text}" --> {_node(target, n)}')
                if not step.has_default:
                    lines.append(f'    {src} -- "else" --> {_node(step.next, n)}')
            case ReturnStep():
                lines.append(f"    {src} --> done")
            case FailStep():
                pass
            case _:
                lines.append(f"    {src} --> {_node(step.next, n)}")
        if isinstance(step.on_error, GoTo) and step.on_error.index != step.next:
            lines.append(f'    {src} -. "error" .-> {_node(step.on_error.index, n)}')
    return "\n".join(lines) + "\n"


def _node(index: int, n: int) -> str:
    return "done" if index >= n else f"s{index}"


def _label(step: Step) -> str:
    match step:
        case CallStep(action_name=what) | FlowStep(subflow=what):
            does = f"{step.verb} {what}"
        case _:
            does = step.verb
    return _escape(f"{step.id}: {does}" if step.id else does)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")
