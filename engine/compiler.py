"""Compiles validated flow models into plans, checking what a schema cannot see.

Every problem is collected with its place: duplicate step ids, unknown targets, actions,
connections and sub-flows, undefined variables, and syntax errors in Jinja, JMESPath and
XPath, pointing at the column. Cycles between sub-flows are found in ``check_cycles``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csflow.engine.compiled import Compiled, Constant
from csflow.engine.errors import ExpressionSyntaxError, Problem
from csflow.engine.expressions import Expressions
from csflow.engine.fields import CompiledField, compile_field
from csflow.engine.model import Connection, Flow
from csflow.engine.model import Step as StepModel
from csflow.engine.plan import FAIL, FlowPlan, Retry, Step
from csflow.engine.registry import Registry
from csflow.engine.source import Loc, Source
from csflow.engine.suggest import did_you_mean


@dataclass
class LoadedFlow:
    model: Flow
    source: Source
    broken: set[int] = field(default_factory=set)  # steps already reported invalid
    extra_names: set[str] = field(default_factory=set)  # variables the broken steps define
    partial: bool = False  # the file had errors: skip checks that would only echo them


def defined_variables(flow: Flow, flows: Mapping[str, LoadedFlow]) -> list[str]:
    """Every name the flow defines: inputs, set, extract, as, and sub-flow outputs."""
    names: dict[str, None] = dict.fromkeys(flow.inputs)
    for step in flow.steps:
        names.update(dict.fromkeys(step.set or {}))
        if step.extract is not None:
            names.update(dict.fromkeys(step.extract.fields))
        if step.flow is not None:
            if step.as_ is not None:
                names[step.as_] = None
            elif step.flow in flows:
                names.update(dict.fromkeys(flows[step.flow].model.outputs))
    return list(names)


class FlowCompiler:
    """Compiles one flow; problems go to the shared list."""

    def __init__(
        self,
        loaded: LoadedFlow,
        flows: Mapping[str, LoadedFlow],
        connections: Mapping[str, Connection],
        registry: Registry,
        expressions: Expressions,
        problems: list[Problem],
        root: Path = Path("."),
    ) -> None:
        self.root = root
        self.flow = loaded.model
        self.src = loaded.source
        self.loaded = loaded
        self.flows = flows
        self.connections = connections
        self.registry = registry
        self.x = expressions
        self.problems = problems
        self.variables = defined_variables(self.flow, flows)
        self.known = set(self.variables) | set(expressions.builtin_names) | loaded.extra_names
        self.ids = self._step_ids()
        all_ns: dict[str, str] = {}
        for conn in connections.values():
            if conn is not None:
                all_ns.update(conn.namespaces)
        self.all_namespaces = all_ns

    # -- helpers ------------------------------------------------------------------------------

    def problem(
        self, loc: Loc, message: str, *, key: bool = False, offset: int | None = None
    ) -> None:
        self.problems.append(self.src.problem(loc, message, key=key, offset=offset))

    def _step_ids(self) -> dict[str, int]:
        ids: dict[str, int] = {}
        for i, step in enumerate(self.flow.steps):
            if step.id is None:
                continue
            if step.id in ids:
                self.problem(
                    ("steps", i, "id"),
                    f"duplicate step id '{step.id}' (first at step {ids[step.id] + 1})",
                )
            else:
                ids[step.id] = i
        return ids

    def target(self, name: str, loc: Loc) -> int:
        if name in self.ids:
            return self.ids[name]
        self.problem(loc, f"no step has the id '{name}'{did_you_mean(name, self.ids)}")
        return FAIL

    def compile_text(self, text: Any, loc: Loc, *, kind: str = "value") -> Compiled:
        """Compile a value, a template, an expression or a path, checking its names."""
        try:
            if kind == "expression":
                compiled = self.x.expression(text)
            elif kind == "path":
                compiled = self.x.path(text)
            else:
                compiled = self.x.value(text)
        except ExpressionSyntaxError as exc:
            self.problem(loc, exc.message, offset=exc.offset)
            return Constant(None)
        self._check_names(text, loc, expression=kind == "expression")
        return compiled

    def _check_names(self, value: Any, loc: Loc, *, expression: bool) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                self._check_names(v, (*loc, k), expression=False)
            return
        if isinstance(value, list):
            for i, v in enumerate(value):
                self._check_names(v, (*loc, i), expression=False)
            return
        if not isinstance(value, str) or (not expression and "{" not in value):
            return
        if self.loaded.partial:
            return
        for name, offset in self.x.free_names(value, expression=expression):
            if name not in self.known:
                hint = did_you_mean(name, self.variables)
                self.problem(loc, f"undefined variable '{name}'{hint}", offset=offset)

    def compile_fields(
        self, fields: Mapping[str, Any], loc: Loc, namespaces: Mapping[str, str]
    ) -> tuple[CompiledField, ...]:
        out = []
        for name, spec in fields.items():
            try:
                out.append(compile_field(name, spec, namespaces))
            except ExpressionSyntaxError as exc:
                field_loc = (
                    (*loc, name)
                    if isinstance(spec, str)
                    else (*loc, name, "xpath" if spec.xpath else "path")
                )
                self.problem(field_loc, exc.message, offset=exc.offset)
        return tuple(out)

    # -- the flow -----------------------------------------------------------------------------

    def compile(self, path: str) -> FlowPlan:
        plan = FlowPlan(
            name=self.flow.name,
            model=self.flow,
            path=path,
            inputs=dict(self.flow.inputs),
            outputs=dict(self.flow.outputs),
            variables=tuple(self.variables),
        )
        plan.base_scope = {**self.x.globals(), **dict.fromkeys(self.variables)}
        plan.steps = [self._step(i, s) for i, s in enumerate(self.flow.steps)]
        return plan

    def _step(self, i: int, m: StepModel) -> Step:
        loc: Loc = ("steps", i)
        if i in self.loaded.broken:
            return Step(index=i, id=m.id, verb="jump", line=self.src.mark(loc).line, next=i + 1)
        verbs = m.verbs()
        line = self.src.mark(loc).line
        if len(verbs) > 1:
            self.problem(loc, f"a step has at most one verb; this one has {' and '.join(verbs)}")
        verb = verbs[0] if verbs else "jump"
        if verb == "jump" and m.next is None:
            self.problem(
                loc, "this step does nothing: give it a verb (call, flow, set, ...) or a 'next'"
            )
        self._check_modifiers(m, verb, loc)
        next_index = self.target(m.next, (*loc, "next")) if m.next is not None else i + 1
        step = Step(index=i, id=m.id, verb=verb, line=line, next=next_index)
        if m.on_error is not None:
            step.on_error = {"fail": FAIL, "continue": next_index}.get(m.on_error, -2)
            if step.on_error == -2:
                step.on_error = self.target(m.on_error, (*loc, "on_error"))
        if m.if_ is not None:
            step.when = self.compile_text(m.if_, (*loc, "if"), kind="expression")
        step.timeout = m.timeout
        if m.idempotency_key is not None:
            step.idempotency_key = self.compile_text(m.idempotency_key, (*loc, "idempotency_key"))
        getattr(self, f"_verb_{verb}")(step, m, loc)
        return step

    def _check_modifiers(self, m: StepModel, verb: str, loc: Loc) -> None:
        if m.with_ is not None and verb not in ("call", "flow"):
            self.problem((*loc, "with"), "'with' belongs to a 'call' or 'flow' step", key=True)
        if m.as_ is not None and verb != "flow":
            self.problem((*loc, "as"), "'as' belongs to a 'flow' step", key=True)
        for key in ("retry", "idempotency_key", "timeout"):
            if getattr(m, key) is not None and verb not in ("call", "flow"):
                self.problem((*loc, key), f"'{key}' belongs to a 'call' or 'flow' step", key=True)

    def _verb_jump(self, step: Step, m: StepModel, loc: Loc) -> None:
        pass

    def _verb_set(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.set is not None
        step.items = tuple((k, self.compile_text(v, (*loc, "set", k))) for k, v in m.set.items())

    def _verb_reply(self, step: Step, m: StepModel, loc: Loc) -> None:
        step.text = self.compile_text(m.reply, (*loc, "reply"))

    def _verb_fail(self, step: Step, m: StepModel, loc: Loc) -> None:
        step.text = self.compile_text(m.fail, (*loc, "fail"))

    def _verb_return(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.return_ is not None
        outputs = self.flow.outputs
        for key in m.return_:
            if key not in outputs:
                self.problem(
                    (*loc, "return", key),
                    f"'{key}' is not an output of this flow{did_you_mean(key, outputs)}",
                    key=True,
                )
        step.items = tuple(
            (k, self.compile_text(v, (*loc, "return", k))) for k, v in m.return_.items()
        )

    def _verb_switch(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.switch is not None
        cases = []
        for j, case in enumerate(m.switch):
            cloc = (*loc, "switch", j)
            cond = (
                self.compile_text(case.if_, (*cloc, "if"), kind="expression")
                if case.if_ is not None
                else None
            )
            cases.append((cond, self.target(case.next, (*cloc, "next"))))
        step.cases = tuple(cases)

    def _verb_extract(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.extract is not None
        if m.extract.from_ is None:
            self.problem(
                (*loc, "extract"), "an 'extract' step needs 'from:' (the value to extract from)"
            )
        else:
            step.source = self.compile_text(m.extract.from_, (*loc, "extract", "from"))
        step.fields = self.compile_fields(
            m.extract.fields, self._fields_loc(loc), self.all_namespaces
        )

    def _fields_loc(self, loc: Loc) -> Loc:
        full = (*loc, "extract", "fields")
        return full if full in self.src.keys else (*loc, "extract")  # the bare form has no fields:

    def _verb_call(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.call is not None
        step.action_name = m.call
        spec = self.registry.get(m.call)
        args = m.with_ or {}
        if spec is None:
            hint = did_you_mean(m.call, self.registry.actions)
            self.problem((*loc, "call"), f"unknown action '{m.call}'{hint}")
        else:
            step.action = spec
            self._check_signature(
                spec.name, spec.params, spec.required, spec.accepts_any, args, loc
            )
        connection = args.get("connection")
        conn_model = None
        if isinstance(connection, str) and "{" not in connection:
            step.connection = connection
            conn_model = self.connections.get(connection)
            if conn_model is None and connection in self.connections:
                pass  # the connection is invalid and already reported
            elif conn_model is None:
                hint = did_you_mean(connection, self.connections)
                self.problem(
                    (*loc, "with", "connection"), f"unknown connection '{connection}'{hint}"
                )
            elif (
                spec is not None
                and spec.connection_type
                and conn_model.type != spec.connection_type
            ):
                self.problem(
                    (*loc, "with", "connection"),
                    f"action '{spec.name}' needs a {spec.connection_type} connection;"
                    f" '{connection}' is {conn_model.type}",
                )
        if spec is not None and spec.check is not None:
            for key, message in spec.check(args, conn_model, self.root):
                self.problem((*loc, "with", key), message)
        step.args = tuple(
            (
                k,
                self.compile_text(
                    v,
                    (*loc, "with", k),
                    kind="path" if k == "path" and isinstance(v, str) else "value",
                ),
            )
            for k, v in args.items()
        )
        retry = m.retry or (conn_model.retry if conn_model is not None else None)
        step.retry = Retry.from_spec(retry)
        if step.timeout is None and conn_model is not None:
            step.timeout = conn_model.timeout
        namespaces = conn_model.namespaces if conn_model is not None else self.all_namespaces
        if m.extract is not None:
            self._extract_modifier(step, m, loc, namespaces)

    def _extract_modifier(
        self, step: Step, m: StepModel, loc: Loc, namespaces: Mapping[str, str]
    ) -> None:
        assert m.extract is not None
        if m.extract.from_ is not None:
            step.source = self.compile_text(m.extract.from_, (*loc, "extract", "from"))
        step.fields = self.compile_fields(m.extract.fields, self._fields_loc(loc), namespaces)

    def _verb_flow(self, step: Step, m: StepModel, loc: Loc) -> None:
        assert m.flow is not None
        step.subflow = m.flow
        step.as_name = m.as_
        args = m.with_ or {}
        sub = self.flows.get(m.flow)
        if sub is None:
            self.problem(
                (*loc, "flow"), f"unknown flow '{m.flow}'{did_you_mean(m.flow, self.flows)}"
            )
        else:
            inputs = sub.model.inputs
            required = frozenset(n for n, s in inputs.items() if s.required and s.default is None)
            self._check_signature(
                f"flow '{m.flow}'", inputs, required, False, args, loc, what="input"
            )
        step.args = tuple((k, self.compile_text(v, (*loc, "with", k))) for k, v in args.items())
        step.retry = Retry.from_spec(m.retry)
        if m.extract is not None:
            self._extract_modifier(step, m, loc, self.all_namespaces)

    def _check_signature(
        self,
        who: str,
        params: Mapping[str, Any],
        required: frozenset[str],
        accepts_any: bool,
        args: Mapping[str, Any],
        loc: Loc,
        what: str = "argument",
    ) -> None:
        label = who if who.startswith("flow") else f"action '{who}'"
        if not accepts_any:
            for key in args:
                if key not in params:
                    hint = did_you_mean(key, params)
                    self.problem(
                        (*loc, "with", key), f"{label} has no {what} '{key}'{hint}", key=True
                    )
        missing = sorted(required - set(args))
        if missing:
            where = (
                (*loc, "with")
                if "with" in self._keys(loc)
                else (*loc, "call" if what == "argument" else "flow")
            )
            self.problem(
                where, f"{label} needs {what} {', '.join(repr(n) for n in missing)} in 'with'"
            )

    def _keys(self, loc: Loc) -> set[str | int]:
        n = len(loc)
        return {k[n] for k in self.src.keys if len(k) == n + 1 and k[:n] == loc}


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
