"""What the chains of ``flow`` steps tell: sub-flow cycles, and asks no conversation reaches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from csflow.engine.compiler import LoadedFlow
from csflow.engine.errors import Problem

if TYPE_CHECKING:
    from csflow.engine.intents import CheckedIntents


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


def check_unreachable_asks(
    flows: Mapping[str, LoadedFlow], intents: CheckedIntents | None, problems: list[Problem]
) -> None:
    """A warning at each ``ask`` in a flow that no intent (or the fallback) reaches.

    Such a flow still runs (``csflow run`` ends it ``waiting``), but no customer's message
    will ever answer it through a conversation, which is most likely an oversight.
    """
    starts: set[str] = set()
    if intents is not None:
        starts = {intent.flow for intent in intents.spec.intents.values()}
        if intents.spec.fallback is not None:
            starts.add(intents.spec.fallback.flow)
    reached: set[str] = set()
    todo = [name for name in starts if name in flows]
    while todo:
        name = todo.pop()
        if name in reached or name not in flows:
            continue
        reached.add(name)
        todo.extend(s.flow for s in flows[name].model.steps if s.flow is not None)
    for name, lf in flows.items():
        if name in reached:
            continue
        for i, step in enumerate(lf.model.steps):
            if step.ask is not None:
                why = (
                    f"no intent in intents.yaml starts '{name}' or a flow that calls it"
                    if intents is not None
                    else f"the project has no intents.yaml to start '{name}' from"
                )
                problems.append(
                    lf.source.problem(
                        ("steps", i, "ask"),
                        f"no conversation reaches this ask: {why}",
                        warning=True,
                    )
                )
