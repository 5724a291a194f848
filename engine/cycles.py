"""Sub-flow cycles: a flow that reaches itself again through any chain of ``flow`` steps."""

from __future__ import annotations

from collections.abc import Mapping

from csflow.engine.compiler import LoadedFlow
from csflow.engine.errors import Problem


def check_cycles(flows: Mapping[str, LoadedFlow], problems: list[Problem]) -> None:
    """A sub-flow that reaches itself again, through any chain, is a problem at its step."""
    calls: dict[str, list[tuple[str, int]]] = {
        name: [(s.flow, i) for i, s in enumerate(lf.model.steps) if s.flow is not None]
        for name, lf in flows.items()
    }
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for callee, index in calls.get(name, []):
            if callee not in flows:
                continue
            if state.get(callee) == 1:
                chain = " -> ".join([*stack[stack.index(callee) :], callee])
                problems.append(
                    flows[name].source.problem(("steps", index, "flow"), f"sub-flow cycle: {chain}")
                )
            elif state.get(callee) is None:
                visit(callee)
        stack.pop()
        state[name] = 2

    for name in flows:
        if name not in state:
            visit(name)
