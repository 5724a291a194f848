"""Compiles validated flow models into plans, checking what a schema cannot see.

Every problem is collected with its place: duplicate step ids, unknown targets, actions,
connections and sub-flows, undefined variables, and syntax errors in Jinja, JMESPath and
XPath, pointing at the column. Cycles between sub-flows are found in ``check_cycles``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csflow.engine.compiled import Compiled, Constant
from csflow.engine.errors import ExpressionSyntaxError, Problem
from csflow.engine.expressions import Expressions
from csflow.engine.fields import CompiledField, compile_field
from csflow.engine.model import Connection, Flow
from csflow.engine.model import StepSpec as StepModel
from csflow.engine.plan import (
    END_RUN,
    FlowPlan,
    GoTo,
    Jump,
    OnError,
    Step,
)
from csflow.engine.registry import Registry
from csflow.engine.source import Loc, Source
from csflow.engine.suggest import did_you_mean
from csflow.engine.verbs import JUMP, MODIFIERS, VERBS, Common, Verb, field_name


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
        if step.ask is not None and (step.into or step.entity):
            names[step.into or step.entity or ""] = None
        if step.flow is not None:
            if step.as_ is not None:
                names[step.as_] = None
            elif step.flow in flows:
                names.update(dict.fromkeys(flows[step.flow].model.outputs))
    return list(names)


def fingerprint(flow: Flow) -> str:
    """What a waiting run's saved state is valid for: the flow's parsed document, hashed.

    Comments and layout do not count; any change to a key or value does.
    """
    text = flow.model_dump_json(by_alias=True, exclude_none=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class _AnyName(Collection[str]):
    """Every name: the entities of a broken intents.yaml, so asks are not checked twice."""

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_ANY = _AnyName()


# Keys of a step that, under `extract:`, are read as fields: almost always mis-indented.
STEP_KEYS = frozenset({"id", "if", "next", "on_error", "timeout", "retry", "idempotency_key"})


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
        plans: Mapping[str, FlowPlan] | None = None,
        entities: Collection[str] | None = (),
    ) -> None:
        self.root = root
        # The entities intents.yaml declares, for `ask: entity:`; None when that file is
        # broken (its problems are reported already, so no ask is checked against it).
        self.entities: Collection[str] = entities if entities is not None else _ANY
        self.flow = loaded.model
        self.src = loaded.source
        self.loaded = loaded
        self.flows = flows
        self.connections = connections
        self.registry = registry
        self.x = expressions
        self.problems = problems
        self.plans = plans if plans is not None else {}
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
        self,
        loc: Loc,
        message: str,
        *,
        key: bool = False,
        offset: int | None = None,
        warning: bool = False,
    ) -> None:
        self.problems.append(
            self.src.problem(loc, message, key=key, offset=offset, warning=warning)
        )

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
        """The index of the step ``name``; an unknown one is a problem (and -1: never run)."""
        if name in self.ids:
            return self.ids[name]
        self.problem(loc, f"no step has the id '{name}'{did_you_mean(name, self.ids)}")
        return -1

    def compile_text(self, text: Any, loc: Loc, *, kind: str = "value") -> Compiled:
        """Compile a value, a template, an expression, a path or a reply, checking its names."""
        try:
            if kind == "expression":
                compiled = self.x.expression(text)
            elif kind == "path":
                compiled = self.x.path(text)
            elif kind == "reply":
                compiled = self.x.reply(text)
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
        for step_id, offset in self.x.step_ids(value, expression=expression):
            if step_id not in self.ids:
                hint = did_you_mean(step_id, self.ids)
                self.problem(loc, f"no step has the id '{step_id}'{hint}", offset=offset)

    def compile_fields(
        self, fields: Mapping[str, Any], loc: Loc, namespaces: Mapping[str, str]
    ) -> tuple[CompiledField, ...]:
        out = []
        for name, spec in fields.items():
            if name in STEP_KEYS and isinstance(spec, str):
                self.problem(
                    (*loc, name),
                    f"'{name}' under 'extract' looks mis-indented: here it is a field read from"
                    f" {spec!r}; indent it like 'extract' to make it the step's {name}",
                    key=True,
                    warning=True,
                )
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

    def compile_into(self, plan: FlowPlan) -> None:
        """Fill ``plan`` (made empty by the loader, so sub-flow steps could already hold it)."""
        plan.inputs = dict(self.flow.inputs)
        plan.outputs = dict(self.flow.outputs)
        plan.variables = tuple(self.variables)
        plan.base_scope = {**self.x.globals(), **dict.fromkeys(self.variables)}
        plan.fingerprint = fingerprint(self.flow)
        plan.steps = [self._step(i, s) for i, s in enumerate(self.flow.steps)]

    def _step(self, i: int, m: StepModel) -> Step:
        loc: Loc = ("steps", i)
        line = self.src.mark(loc).line
        if i in self.loaded.broken:
            return Jump(index=i, id=m.id, line=line, next=i + 1)
        verbs = m.verbs()
        if len(verbs) > 1:
            self.problem(loc, f"a step has at most one verb; this one has {' and '.join(verbs)}")
        verb = VERBS[verbs[0]] if verbs else JUMP
        if verb is JUMP and m.next is None:
            self.problem(
                loc, "this step does nothing: give it a verb (call, flow, set, ...) or a 'next'"
            )
        self._check_modifiers(m, verb, loc)
        next_index = self.target(m.next, (*loc, "next")) if m.next is not None else i + 1
        common = Common(
            index=i,
            id=m.id,
            line=line,
            next=next_index,
            on_error=self._on_error(m, loc, next_index),
            when=(
                self.compile_text(m.if_, (*loc, "if"), kind="expression")
                if m.if_ is not None
                else None
            ),
        )
        return verb.compile(self, m, loc, common)

    def _on_error(self, m: StepModel, loc: Loc, next_index: int) -> OnError:
        if m.on_error is None or m.on_error == "fail":
            return END_RUN
        if m.on_error == "continue":
            return GoTo(next_index)
        index = self.target(m.on_error, (*loc, "on_error"))
        return GoTo(index) if index >= 0 else END_RUN

    def _check_modifiers(self, m: StepModel, verb: Verb, loc: Loc) -> None:
        for key in MODIFIERS:
            if key not in verb.modifiers and getattr(m, field_name(key)) is not None:
                name = key
                owners = " or ".join(f"'{v}'" for v, spec in VERBS.items() if key in spec.modifiers)
                self.problem((*loc, name), f"'{name}' belongs to a {owners} step", key=True)

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
