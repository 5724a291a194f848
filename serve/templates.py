"""Channel templates: compiled once at load over ``request``, ``outputs``, ``reply``, ``status``.

A request comes from outside, so a field it does not carry is ``none``, never an error
(``Fields``). Names a template reads are checked at load: ``request.X`` against the fields
the platform documents, ``outputs.X`` against the flow's declared outputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from csflow.engine.compiled import Compiled, Constant, combine
from csflow.engine.errors import ExpressionSyntaxError, Problem
from csflow.engine.expressions import Expressions
from csflow.engine.source import Loc, Source
from csflow.engine.suggest import did_you_mean

RUN_NAMES = frozenset({"request", "outputs", "reply", "status"})
REQUEST_ONLY = frozenset({"request"})


class Fields:
    """A request's fields by name, for templates: an absent field is ``none``.

    Only dunder methods, so that a field named ``items`` or ``get`` is the field, and the
    sandbox (which refuses ``_`` names) leaves nothing else to reach.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return wrap(self._data.get(name))

    def __getitem__(self, name: Any) -> Any:
        return wrap(self._data.get(name)) if isinstance(name, str) else None

    def __bool__(self) -> bool:
        return bool(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Fields({sorted(self._data)})"


def wrap(value: Any) -> Any:
    return Fields(value) if isinstance(value, dict) else value


def unwrap(value: Any) -> Any:
    """What a template gave, as plain data for a flow's inputs or a response."""
    if isinstance(value, Fields):
        return {k: unwrap(v) for k, v in value._data.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


_EXPRESSIONS = Expressions()
_GLOBALS = _EXPRESSIONS.globals()


def scope(
    request: Mapping[str, Any],
    outputs: Mapping[str, Any] | None = None,
    reply: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    return {
        **_GLOBALS,
        "request": Fields(request),
        "outputs": Fields(outputs or {}),
        "reply": reply,
        "status": status,
    }


@dataclass(frozen=True)
class Reads:
    """What a template may read: which run names, which request fields, which outputs."""

    names: frozenset[str]
    request_fields: frozenset[str] | None  # None: any (the platform sends free-form data)
    outputs: Mapping[str, Iterable[str]]  # flow name -> its declared outputs


class TemplateCompiler:
    """Compiles the templates of one channel, appending located problems."""

    def __init__(self, source: Source, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems

    def template(self, text: str, loc: Loc, reads: Reads) -> Render:
        written = len(self.problems)
        try:
            compiled = _EXPRESSIONS.template(text)
        except ExpressionSyntaxError as exc:
            self.problems.append(self.source.problem(loc, exc.message, offset=exc.offset))
            return Constant(None)
        self._check(text, loc, reads)
        if loc not in self.source.values:
            # A default the author never wrote: say which, or the message points at nothing.
            for i in range(written, len(self.problems)):
                p = self.problems[i]
                prefix = f"the default {loc[-1]}: {text!r}: "
                self.problems[i] = Problem(p.path, p.line, p.column, prefix + p.message)
        return _lookup(text) or compiled

    def value(self, obj: Any, loc: Loc, reads: Reads) -> Render:
        """A template, or a mapping or list of them (``details``, ``inputs``)."""
        if isinstance(obj, str):
            return self.template(obj, loc, reads)
        if isinstance(obj, dict):
            return combine({k: self.value(v, (*loc, k), reads) for k, v in obj.items()}, obj)
        if isinstance(obj, list):
            return combine([self.value(v, (*loc, i), reads) for i, v in enumerate(obj)], obj)
        return Constant(obj)

    def _check(self, text: str, loc: Loc, reads: Reads) -> None:
        if "{{" not in text and "{%" not in text:
            return
        try:
            ast = _EXPRESSIONS.env.parse(text)
        except TemplateSyntaxError:
            return  # already reported by template()
        for name, offset in _EXPRESSIONS.free_names(text, expression=False):
            if name in reads.names or name in _EXPRESSIONS.builtin_names:
                continue
            if name in RUN_NAMES:
                message = f"'{name}' is not known yet here: inputs are built before the run"
            else:
                allowed = ", ".join(sorted(reads.names))
                message = f"unknown name '{name}' in a channel template: use {allowed}"
            self.problems.append(self.source.problem(loc, message, offset=offset))
        for base, attr in _attributes(ast):
            if base == "request" and reads.request_fields is not None:
                known: Iterable[str] = reads.request_fields
                what = "the request has no field"
            elif base == "outputs" and "outputs" in reads.names:
                for flow, declared in reads.outputs.items():
                    if attr not in declared:
                        message = (
                            f"flow '{flow}' has no output '{attr}'{did_you_mean(attr, declared)}"
                        )
                        self.problems.append(
                            self.source.problem(loc, message, offset=_find(text, base, attr))
                        )
                continue
            else:
                continue
            if attr not in known:
                message = f"{what} '{attr}'{did_you_mean(attr, known)}"
                self.problems.append(
                    self.source.problem(loc, message, offset=_find(text, base, attr))
                )


_LOOKUP = re.compile(r"\{\{\s*(?:(request|outputs)\.([a-zA-Z][a-zA-Z0-9_]*)|(reply|status))\s*\}\}")


def _lookup(text: str) -> Render | None:
    """``{{ request.X }}``, ``{{ outputs.X }}``, ``{{ reply }}`` as a plain look-up.

    Most channel templates are one of these; each is what the sandboxed expression gives
    (``Fields`` makes an absent field none), for a tenth of the cost of rendering it.
    """
    m = _LOOKUP.fullmatch(text)
    if m is None:
        return None
    base, attr, name = m.groups()
    if name is not None:
        return _Name(name, text)
    return _Attribute(base, attr, text)


class _Name(Compiled):
    """``{{ reply }}``: the scope's value, as the template would give it."""

    __slots__ = ("_name",)

    def __init__(self, name: str, source: str) -> None:
        super().__init__(source)
        self._name = name

    def __call__(self, scope: dict[str, Any]) -> Any:
        return scope[self._name]


class _Attribute(Compiled):
    """``{{ request.order_id }}``: one attribute of a scope value (absent fields are none)."""

    __slots__ = ("_attr", "_base")

    def __init__(self, base: str, attr: str, source: str) -> None:
        super().__init__(source)
        self._base, self._attr = base, attr

    def __call__(self, scope: dict[str, Any]) -> Any:
        return getattr(scope[self._base], self._attr)


def _attributes(ast: nodes.Template) -> list[tuple[str, str]]:
    """``(base, attr)`` for every ``request.attr`` / ``outputs["attr"]`` in the template."""
    found = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
            found.append((node.node.name, node.attr))
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.node, nodes.Name)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
        ):
            found.append((node.node.name, node.arg.value))
    return found


def _find(text: str, base: str, attr: str) -> int:
    m = re.search(rf"{base}\s*(\.\s*|\[\s*['\"]){re.escape(attr)}", text)
    return m.start() if m else 0


Render = Compiled  # what a channel's template compiles into
