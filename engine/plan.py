"""A loaded flow compiled into steps: one frozen type per verb, targets resolved to indexes.

The plan is data; ``runner`` gives it behaviour by matching on the step types. Nothing here
is looked up by name at run time: a ``flow`` step holds the sub-flow's plan itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.engine.compiled import Compiled
from csflow.engine.fields import CompiledField
from csflow.engine.model import Flow, InputSpec, OutputSpec, RetrySpec

if TYPE_CHECKING:
    from csflow.engine.registry import ActionSpec


# -- where a failed step goes (on_error) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndRun:
    """``on_error: fail`` (the default): the run ends as failed with the step's error."""


@dataclass(frozen=True, slots=True)
class GoTo:
    """``on_error: ID`` or ``continue``: the run goes on at step ``index``."""

    index: int


OnError = EndRun | GoTo
END_RUN = EndRun()


@dataclass(frozen=True, slots=True)
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


# -- the steps ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class StepBase:
    """What every step has: where it is, where it goes next, its ``if`` and ``on_error``."""

    verb: ClassVar[str]
    index: int
    id: str | None
    line: int
    next: int
    on_error: OnError = END_RUN
    when: Compiled | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Jump(StepBase):
    """A step with no verb: goes to ``next`` (or is a broken step already reported)."""

    verb: ClassVar[str] = "jump"


@dataclass(frozen=True, slots=True, kw_only=True)
class SetStep(StepBase):
    verb: ClassVar[str] = "set"
    items: tuple[tuple[str, Compiled], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchStep(StepBase):
    """``cases`` are (condition, target index); a condition of None is the default."""

    verb: ClassVar[str] = "switch"
    cases: tuple[tuple[Compiled | None, int], ...] = ()

    @property
    def has_default(self) -> bool:
        return any(cond is None for cond, _ in self.cases)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractStep(StepBase):
    verb: ClassVar[str] = "extract"
    source: Compiled | None = None
    fields: tuple[CompiledField, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStep(StepBase):
    """``call: ACTION``: the action, its compiled ``with:``, its retries and its ``extract``."""

    verb: ClassVar[str] = "call"
    action: ActionSpec | None
    action_name: str
    args: tuple[tuple[str, Compiled], ...] = ()
    connection: str | None = None
    timeout: float | None = None
    retry: Retry | None = None
    idempotency_key: Compiled | None = None
    source: Compiled | None = None
    fields: tuple[CompiledField, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStep(StepBase):
    """``flow: NAME``: the sub-flow's plan (filled when that flow compiles), ``as``, ``extract``."""

    verb: ClassVar[str] = "flow"
    subflow: str
    subplan: FlowPlan | None
    as_name: str | None = None
    args: tuple[tuple[str, Compiled], ...] = ()
    timeout: float | None = None
    retry: Retry | None = None
    idempotency_key: Compiled | None = None
    source: Compiled | None = None
    fields: tuple[CompiledField, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyStep(StepBase):
    verb: ClassVar[str] = "reply"
    text: Compiled


@dataclass(frozen=True, slots=True, kw_only=True)
class ReturnStep(StepBase):
    verb: ClassVar[str] = "return"
    items: tuple[tuple[str, Compiled], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class FailStep(StepBase):
    verb: ClassVar[str] = "fail"
    text: Compiled


@dataclass(frozen=True, slots=True, kw_only=True)
class AskStep(StepBase):
    """``ask``: the question, and what the answer must hold (§12).

    ``entity`` is None when the trimmed text is the value; ``into`` is the variable set;
    ``attempts`` counts the answers in all; ``wait`` is how long the conversation may wait.
    """

    verb: ClassVar[str] = "ask"
    text: Compiled
    reprompt: Compiled | None = None
    entity: str | None = None
    into: str
    attempts: int = 3
    wait: float = 1800.0


@dataclass(frozen=True, slots=True, kw_only=True)
class HandoffStep(StepBase):
    """``handoff``: the run ends with status ``handoff``, for a person to take over."""

    verb: ClassVar[str] = "handoff"
    reason: str
    note: Compiled | None = None


# Every compiled step type; the runner, the graph and coverage ``match`` on them.
Step = (
    Jump
    | SetStep
    | SwitchStep
    | ExtractStep
    | CallStep
    | FlowStep
    | ReplyStep
    | ReturnStep
    | FailStep
    | AskStep
    | HandoffStep
)


@dataclass(slots=True)
class FlowPlan:
    """A compiled flow. Made empty first, so that ``flow`` steps can hold it before it fills."""

    name: str
    model: Flow
    path: str
    steps: list[Step] = field(default_factory=list)
    inputs: dict[str, InputSpec] = field(default_factory=dict)
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    variables: tuple[str, ...] = ()
    # The scope every run starts from: Jinja's globals and every variable set to None.
    base_scope: dict[str, Any] = field(default_factory=dict)
    # What a waiting run saved of this flow is valid only for the same steps: a hash of the
    # flow's parsed document (engine.suspend compares it on resume).
    fingerprint: str = ""
