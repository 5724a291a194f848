"""A loaded flow compiled into steps: templates compiled, targets resolved to indexes.

The plan is data; ``runner`` gives it behaviour. Nothing here is looked up by name at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csflow.engine.compiled import Compiled
from csflow.engine.fields import CompiledField
from csflow.engine.model import Flow, InputSpec, OutputSpec, RetrySpec

if TYPE_CHECKING:
    from csflow.engine.registry import ActionSpec

FAIL = -1  # on_error: end the run as failed


@dataclass(slots=True)
class Retry:
    attempts: int
    backoff: float
    max_backoff: float
    kinds: frozenset[str]
    statuses: frozenset[int]
    any_5xx: bool

    @classmethod
    def from_spec(cls, spec: RetrySpec | None) -> Retry | None:
        if spec is None or spec.attempts <= 1:
            return None
        kinds, statuses, any_5xx = set(), set(), False
        for item in spec.on:
            if item == "5xx":
                any_5xx = True
            elif item.isdigit():
                statuses.add(int(item))
            else:
                kinds.add(item)
        return cls(
            spec.attempts,
            spec.backoff,
            spec.max_backoff,
            frozenset(kinds),
            frozenset(statuses),
            any_5xx,
        )

    def matches(self, kind: str, status: int | None) -> bool:
        if status is not None and (status in self.statuses or (self.any_5xx and status >= 500)):
            return True
        return kind in self.kinds


@dataclass(slots=True)
class Step:
    """One compiled step. ``verb`` picks the runner's handler; unused parts stay None."""

    index: int
    id: str | None
    verb: str
    line: int
    next: int
    on_error: int = FAIL
    when: Compiled | None = None
    timeout: float | None = None
    retry: Retry | None = None
    idempotency_key: Compiled | None = None
    # call
    action: ActionSpec | None = None
    action_name: str | None = None
    args: tuple[tuple[str, Compiled], ...] = ()
    connection: str | None = None
    # flow
    subflow: str | None = None
    subplan: FlowPlan | None = None
    as_name: str | None = None
    # set / return
    items: tuple[tuple[str, Compiled], ...] = ()
    # extract (and call/flow with extract)
    source: Compiled | None = None
    fields: tuple[CompiledField, ...] = ()
    # switch: (condition or None for the default, target index)
    cases: tuple[tuple[Compiled | None, int], ...] = ()
    # reply / fail
    text: Compiled | None = None


@dataclass(slots=True)
class FlowPlan:
    name: str
    model: Flow
    path: str
    steps: list[Step] = field(default_factory=list)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    # The scope every run starts from: Jinja's globals and every variable set to None.
    base_scope: dict[str, Any] = field(default_factory=dict)
