"""What a case's names are checked against: the inputs, outputs, step ids and handoff
reasons of the flow a case (or a turn) runs.

A ``flow:`` file's cases all run its flow. In a ``conversation: true`` file a turn's flow
is the one its ``intent:`` starts; a turn that names none goes on in the flow of the turn
before when that one was left ``waiting``. Otherwise intents.yaml could start any of its
flows, and the names are checked against all of them: never a problem for a name that a
run could use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from csflow.engine.intents import Intents
from csflow.engine.plan import FlowPlan, FlowStep, HandoffStep


@dataclass(frozen=True)
class Scope:
    what: str  # how messages name it: "flow 'wismo'"
    inputs: frozenset[str]
    outputs: frozenset[str]
    labels: frozenset[str]  # what `path:` can name
    reasons: frozenset[str]  # what `handoff.reason` can name


def _walk(
    plan: FlowPlan,
    visit: Callable[[FlowPlan, str], None],
    prefix: str = "",
    seen: frozenset[str] = frozenset(),
) -> None:
    """``visit(plan, prefix)`` for the plan and every sub-flow it calls, a recursive flow once."""
    visit(plan, prefix)
    for step in plan.steps:
        sub = step.subplan if isinstance(step, FlowStep) else None
        if sub is not None and sub.name not in seen:
            _walk(sub, visit, f"{prefix}{step.id or sub.name}.", seen | {plan.name})


def step_labels(plan: FlowPlan) -> set[str]:
    """Every label ``path:`` can name: step ids, sub-flow steps as ``find.orders``."""
    out: set[str] = set()
    _walk(plan, lambda p, prefix: out.update(prefix + s.id for s in p.steps if s.id))
    return out


def handoff_reasons(plan: FlowPlan) -> set[str]:
    """The reasons of every ``handoff`` the flow (or a sub-flow of it) can end with."""
    out: set[str] = set()
    _walk(plan, lambda p, _: out.update(s.reason for s in p.steps if isinstance(s, HandoffStep)))
    return out


def flow_scope(plan: FlowPlan) -> Scope:
    return Scope(
        f"flow '{plan.name}'",
        frozenset(plan.inputs),
        frozenset(plan.outputs),
        frozenset(step_labels(plan)),
        frozenset(handoff_reasons(plan)),
    )


def any_scope(what: str, plans: Iterable[FlowPlan]) -> Scope:
    scopes = [flow_scope(p) for p in plans]
    return Scope(
        what,
        frozenset().union(*(s.inputs for s in scopes)),
        frozenset().union(*(s.outputs for s in scopes)),
        frozenset().union(*(s.labels for s in scopes)),
        frozenset().union(*(s.reasons for s in scopes)),
    )


NOT_UNDERSTOOD = Scope(
    "the answer to a message not understood (intents.yaml has no fallback flow)",
    frozenset(), frozenset(), frozenset(), frozenset(),
)  # fmt: skip


class ConversationScopes:
    """The scope of each turn of a ``conversation: true`` case, in order."""

    def __init__(self, intents: Intents, flows: dict[str, FlowPlan]) -> None:
        self.intents, self.flows = intents, flows
        fallback = [intents.fallback_flow] if intents.fallback_flow else []
        started = sorted({*intents.flows.values(), *fallback})
        self.any = any_scope("any flow intents.yaml starts", (flows[name] for name in started))

    def for_intent(self, intent: str | None) -> Scope:
        """The scope of a turn that expects ``intent`` (None: not understood)."""
        if intent is None:
            fallback = self.intents.fallback_flow
            return flow_scope(self.flows[fallback]) if fallback else NOT_UNDERSTOOD
        plan = self.flows.get(self.intents.flows.get(intent, ""))
        return flow_scope(plan) if plan is not None else self.any
