"""The verbs of §3: each verb's compiled type, its compile function, and the table of them.

Adding a verb is one row in ``VERBS`` with its ``compile_*`` function here, its field on
``model.StepSpec`` (marked ``VERB``), its frozen type in ``plan``, and its ``case`` in ``runner``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from csflow.engine.compiled import Compiled
from csflow.engine.fields import CompiledField
from csflow.engine.model import StepSpec as StepModel
from csflow.engine.plan import (
    AskStep,
    CallStep,
    ExtractStep,
    FailStep,
    FlowStep,
    HandoffStep,
    Jump,
    OnError,
    ReplyStep,
    Retry,
    ReturnStep,
    SetStep,
    Step,
    StepBase,
    SwitchStep,
)
from csflow.engine.shapes import Answer, path_problem
from csflow.engine.source import Loc
from csflow.engine.suggest import did_you_mean

if TYPE_CHECKING:
    from csflow.engine.compiler import FlowCompiler
    from csflow.engine.registry import ActionSpec


@dataclass(frozen=True, slots=True, kw_only=True)
class Common:
    """What the compiler works out for every step before its verb's part."""

    index: int
    id: str | None
    line: int
    next: int
    on_error: OnError
    when: Compiled | None

    def kwargs(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "id": self.id,
            "line": self.line,
            "next": self.next,
            "on_error": self.on_error,
            "when": self.when,
        }


CompileVerb = Callable[["FlowCompiler", StepModel, Loc, Common], Step]


@dataclass(frozen=True, slots=True)
class Verb:
    """One verb: its key on the step model, its compiled type, its compiler, its modifiers."""

    key: str
    step: type[StepBase]
    compile: CompileVerb
    modifiers: frozenset[str] = frozenset()


def _idempotency_key(fc: FlowCompiler, m: StepModel, loc: Loc) -> Compiled | None:
    if m.idempotency_key is None:
        return None
    return fc.compile_text(m.idempotency_key, (*loc, "idempotency_key"))


def compile_jump(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    return Jump(**base.kwargs())


def compile_set(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.set is not None
    items = tuple((k, fc.compile_text(v, (*loc, "set", k))) for k, v in m.set.items())
    return SetStep(**base.kwargs(), items=items)


def compile_reply(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    return ReplyStep(**base.kwargs(), text=fc.compile_text(m.reply, (*loc, "reply"), kind="reply"))


def compile_fail(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    return FailStep(**base.kwargs(), text=fc.compile_text(m.fail, (*loc, "fail")))


def compile_return(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.return_ is not None
    outputs = fc.flow.outputs
    for key in m.return_:
        if key not in outputs:
            fc.problem(
                (*loc, "return", key),
                f"'{key}' is not an output of this flow{did_you_mean(key, outputs)}",
                key=True,
            )
    items = tuple((k, fc.compile_text(v, (*loc, "return", k))) for k, v in m.return_.items())
    return ReturnStep(**base.kwargs(), items=items)


def compile_switch(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.switch is not None
    cases = []
    for j, case in enumerate(m.switch):
        cloc = (*loc, "switch", j)
        cond = (
            fc.compile_text(case.if_, (*cloc, "if"), kind="expression")
            if case.if_ is not None
            else None
        )
        cases.append((cond, fc.target(case.next, (*cloc, "next"))))
    return SwitchStep(**base.kwargs(), cases=tuple(cases))


def compile_extract(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.extract is not None
    source = None
    if m.extract.from_ is None:
        fc.problem((*loc, "extract"), "an 'extract' step needs 'from:' (the value to extract from)")
    else:
        source = fc.compile_text(m.extract.from_, (*loc, "extract", "from"))
    fields = fc.compile_fields(m.extract.fields, _fields_loc(fc, loc), fc.all_namespaces)
    return ExtractStep(**base.kwargs(), source=source, fields=fields)


def _fields_loc(fc: FlowCompiler, loc: Loc) -> Loc:
    full = (*loc, "extract", "fields")
    return full if full in fc.src.keys else (*loc, "extract")  # the bare form has no fields:


def compile_call(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.call is not None
    spec = fc.registry.get(m.call)
    args = m.with_ or {}
    if spec is None:
        hint = did_you_mean(m.call, fc.registry.actions)
        fc.problem((*loc, "call"), f"unknown action '{m.call}'{hint}")
    else:
        fc._check_signature(spec.name, spec.params, spec.required, spec.accepts_any, args, loc)
    connection = args.get("connection")
    conn_model = None
    literal_connection = None
    if isinstance(connection, str) and "{" not in connection:
        literal_connection = connection
        conn_model = fc.connections.get(connection)
        if conn_model is None and connection in fc.connections:
            pass  # the connection is invalid and already reported
        elif conn_model is None:
            hint = did_you_mean(connection, fc.connections)
            fc.problem((*loc, "with", "connection"), f"unknown connection '{connection}'{hint}")
        elif spec is not None and spec.connection_type and conn_model.type != spec.connection_type:
            fc.problem(
                (*loc, "with", "connection"),
                f"action '{spec.name}' needs a {spec.connection_type} connection;"
                f" '{connection}' is {conn_model.type}",
            )
    if spec is not None and spec.check is not None:
        for key, message in spec.check(args, conn_model, fc.root):
            fc.problem((*loc, "with", key), message)
    compiled_args = tuple(
        (
            k,
            fc.compile_text(
                v,
                (*loc, "with", k),
                # A URL path is encoded segment by segment (PathTemplate), but only for an
                # action that calls a connection: a custom action's `path` is its own.
                kind="path" if k == "path" and isinstance(v, str) and _calls_out(spec) else "value",
            ),
        )
        for k, v in args.items()
    )
    retry = m.retry or (conn_model.retry if conn_model is not None else None)
    timeout = m.timeout
    if timeout is None and conn_model is not None:
        timeout = conn_model.timeout
    namespaces = conn_model.namespaces if conn_model is not None else fc.all_namespaces
    source, fields = _extract_modifier(fc, m, loc, namespaces)
    if spec is not None and spec.answer is not None and m.extract is not None and source is None:
        answer = spec.answer(args, conn_model, fc.root)
        if answer is not None:
            _check_paths(fc, m.extract.fields, _fields_loc(fc, loc), answer)
    return CallStep(
        **base.kwargs(),
        action=spec,
        action_name=m.call,
        args=compiled_args,
        connection=literal_connection,
        timeout=timeout,
        retry=Retry.from_spec(retry),
        idempotency_key=_idempotency_key(fc, m, loc),
        source=source,
        fields=fields,
    )


def _calls_out(spec: ActionSpec | None) -> bool:
    return spec is None or spec.connection_type is not None


def _check_paths(fc: FlowCompiler, fields: Mapping[str, Any], loc: Loc, answer: Answer) -> None:
    """Each ``path:`` over the step's data that can never match what the action answers."""
    for name, spec in fields.items():
        path = spec if isinstance(spec, str) else spec.path
        if isinstance(path, str):
            problem = path_problem(path, answer)
            if problem is not None:
                fc.problem((*loc, name) if isinstance(spec, str) else (*loc, name, "path"), problem)


def _extract_modifier(
    fc: FlowCompiler, m: StepModel, loc: Loc, namespaces: Mapping[str, str]
) -> tuple[Compiled | None, tuple[CompiledField, ...]]:
    if m.extract is None:
        return None, ()
    source = None
    if m.extract.from_ is not None:
        source = fc.compile_text(m.extract.from_, (*loc, "extract", "from"))
    return source, fc.compile_fields(m.extract.fields, _fields_loc(fc, loc), namespaces)


def compile_flow(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.flow is not None
    args = m.with_ or {}
    sub = fc.flows.get(m.flow)
    if sub is None:
        fc.problem((*loc, "flow"), f"unknown flow '{m.flow}'{did_you_mean(m.flow, fc.flows)}")
    else:
        inputs = sub.model.inputs
        required = frozenset(n for n, s in inputs.items() if s.required and s.default is None)
        fc._check_signature(f"flow '{m.flow}'", inputs, required, False, args, loc, what="input")
    source, fields = _extract_modifier(fc, m, loc, fc.all_namespaces)
    return FlowStep(
        **base.kwargs(),
        subflow=m.flow,
        subplan=fc.plans.get(m.flow),
        as_name=m.as_,
        args=tuple((k, fc.compile_text(v, (*loc, "with", k))) for k, v in args.items()),
        timeout=m.timeout,
        retry=Retry.from_spec(m.retry),
        idempotency_key=_idempotency_key(fc, m, loc),
        source=source,
        fields=fields,
    )


DEFAULT_WAIT = 30 * 60.0  # §12: how long an ask waits for its answer unless it says


def compile_ask(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    entity = m.entity
    declared = fc.entities
    if entity is not None and entity not in declared:
        where = "intents.yaml declares none" if not declared else "intents.yaml declares"
        known = f" ({', '.join(sorted(declared))})" if declared else ""
        fc.problem(
            (*loc, "entity"),
            f"unknown entity '{entity}'{did_you_mean(entity, declared)}: {where}{known}",
        )
    into = m.into or entity
    if into is None:
        fc.problem(loc, "an 'ask' without 'entity:' needs 'into:' (the variable for the answer)")
        into = "answer"
    spec = fc.flow.inputs.get(into)
    if spec is not None and spec.type not in ("string", "any"):
        fc.problem(
            (*loc, "into" if m.into else "entity"),
            f"'{into}' is an input of type {spec.type}, but an answer is text: ask into"
            " another variable, or declare the input as a string",
        )
    reprompt = m.reprompt
    return AskStep(
        **base.kwargs(),
        text=fc.compile_text(m.ask, (*loc, "ask"), kind="reply"),
        reprompt=None
        if reprompt is None
        else fc.compile_text(reprompt, (*loc, "reprompt"), kind="reply"),
        entity=entity,
        into=into,
        attempts=m.attempts or 3,
        wait=m.timeout if m.timeout is not None else DEFAULT_WAIT,
    )


def compile_handoff(fc: FlowCompiler, m: StepModel, loc: Loc, base: Common) -> Step:
    assert m.handoff is not None
    note = m.handoff.note
    return HandoffStep(
        **base.kwargs(),
        reason=m.handoff.reason,
        note=None
        if note is None
        else fc.compile_text(note, (*loc, "handoff", "note"), kind="reply"),
    )


# The modifiers only some verbs take (``if``, ``next``, ``on_error`` suit every step).
MODIFIERS = (
    "with",
    "as",
    "retry",
    "idempotency_key",
    "timeout",
    "entity",
    "into",
    "reprompt",
    "attempts",
)
_CALLS = frozenset({"with", "retry", "idempotency_key", "timeout"})
_ASK = frozenset({"entity", "into", "reprompt", "attempts", "timeout"})

VERBS: dict[str, Verb] = {
    v.key: v
    for v in (
        Verb("call", CallStep, compile_call, _CALLS),
        Verb("flow", FlowStep, compile_flow, _CALLS | {"as"}),
        Verb("set", SetStep, compile_set),
        Verb("extract", ExtractStep, compile_extract),
        Verb("switch", SwitchStep, compile_switch),
        Verb("reply", ReplyStep, compile_reply),
        Verb("return", ReturnStep, compile_return),
        Verb("fail", FailStep, compile_fail),
        Verb("ask", AskStep, compile_ask, _ASK),
        Verb("handoff", HandoffStep, compile_handoff),
    )
}
JUMP = Verb("jump", Jump, compile_jump)


def field_name(key: str) -> str:
    """The model's attribute for a YAML key: Python keywords carry a trailing underscore."""
    return f"{key}_" if key in ("with", "as", "return", "if", "from") else key
