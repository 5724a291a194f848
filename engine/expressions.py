"""Jinja2 expressions and templates, sandboxed, strict, compiled once at load.

``Expressions.expression(src)`` and ``Expressions.template(src)`` return ``Compiled`` objects
(``engine/compiled.py``) that take the run's scope (one dict) and do no parsing. A template
that is exactly one ``{{ expr }}`` keeps the expression's type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.meta import find_undeclared_variables
from jinja2.parser import Parser

from csflow.engine.compiled import (
    Compiled,
    Constant,
    Expression,
    PathTemplate,
    Segment,
    Template,
    combine,
)
from csflow.engine.errors import ExpressionSyntaxError
from csflow.engine.filters import date_filter, is_outage, money, normalize_phone
from csflow.engine.sandbox import CappedSandbox

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


# ---------------------------------------------------------------------------- compiling


class Expressions:
    """The one sandboxed Jinja environment of a project, and its compilers."""

    def __init__(self) -> None:
        self.env = _environment()
        # Replies are what a customer reads: one that would show a none value fails instead.
        self.reply_env = _environment(finalize=_shown_to_a_customer)
        # Names an expression may use without defining them.
        self.builtin_names = frozenset(self.env.globals) | {"steps", "now", "true", "false", "none"}

    def globals(self) -> dict[str, Any]:
        return dict(self.env.globals)

    # -- load time --------------------------------------------------------------------------

    def expression(self, source: str) -> Compiled:
        """Compile a condition or a single expression (no braces)."""
        template = self._compile(self._parse_expression(source), source)
        return Expression(self.env, template.root_render_func, source)

    def template(self, source: str) -> Compiled:
        """Compile a template: constants stay constants, one ``{{ x }}`` keeps x's type."""
        if "{{" not in source and "{%" not in source and "{#" not in source:
            return Constant(source)
        single = _SINGLE.match(source)
        if single and "{{" not in single["expr"] and "}}" not in single["expr"]:
            expr = single["expr"]
            try:
                return self.expression(expr)
            except ExpressionSyntaxError as exc:
                raise ExpressionSyntaxError(
                    exc.message, (exc.offset or 0) + single.start("expr")
                ) from None
        template = self._compile(self._parse_template(source), source)
        return Template(self.env, template.root_render_func, source)

    def reply(self, source: str) -> Compiled:
        """Compile a reply: always text, and a none value in it fails the step (kind
        ``expression``) instead of reaching the customer as "None" or a blank."""
        if "{{" not in source and "{%" not in source and "{#" not in source:
            return Constant(source)
        template = self._compile(self._parse_template(source), source, self.reply_env)
        return Template(self.reply_env, template.root_render_func, source)

    def value(self, obj: Any) -> Compiled:
        """Compile a value of ``with``/``set``/``return``: templates inside lists and maps too."""
        if isinstance(obj, str):
            return self.template(obj)
        if isinstance(obj, dict):
            return combine({k: self.value(v) for k, v in obj.items()}, obj)
        if isinstance(obj, list):
            return combine([self.value(v) for v in obj], obj)
        return Constant(obj)

    def path(self, source: str) -> Compiled:
        """A URL path template: each ``{{ value }}`` is percent-encoded as one segment."""
        pieces: list[Compiled] = []
        pos = 0
        for m in re.finditer(r"\{\{(.*?)\}\}", source):
            literal = source[pos : m.start()]
            if literal:
                pieces.append(Constant(literal))
            try:
                expr = self.expression(m.group(1))
            except ExpressionSyntaxError as exc:
                raise ExpressionSyntaxError(exc.message, (exc.offset or 0) + m.start(1)) from None
            pieces.append(Segment(expr))
            pos = m.end()
        if "{%" in source or "{#" in source:
            raise ExpressionSyntaxError("a path takes {{ values }} only", source.find("{"))
        tail = source[pos:]
        if tail:
            pieces.append(Constant(tail))
        if all(p.constant for p in pieces):
            return Constant(source)
        return PathTemplate(pieces, source)

    def free_names(self, source: str, *, expression: bool) -> list[tuple[str, int]]:
        """Names a template or expression reads that it does not define, with offsets."""
        try:
            ast = self._parse_expression(source) if expression else self._parse_template(source)
        except ExpressionSyntaxError:
            return []
        found = []
        for name in sorted(find_undeclared_variables(ast)):
            m = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", source)
            found.append((name, m.start() if m else 0))
        return found

    def step_ids(self, source: str, *, expression: bool) -> list[tuple[str, int]]:
        """The step ids ``source`` reads as ``steps.ID`` or ``steps["ID"]``, with offsets."""
        try:
            ast = self._parse_expression(source) if expression else self._parse_template(source)
        except ExpressionSyntaxError:
            return []
        found: dict[str, int] = {}
        for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
            if isinstance(node, nodes.Getattr):
                base, step_id = node.node, node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                base, step_id = node.node, node.arg.value
            else:
                continue  # steps[some_variable]: only known when it runs
            if not (isinstance(base, nodes.Name) and base.name == "steps"):
                continue
            if not isinstance(step_id, str):
                continue
            m = re.search(rf"steps\s*(\.\s*|\[\s*['\"]){re.escape(step_id)}\b", source)
            found.setdefault(step_id, m.end() - len(step_id) if m else 0)
        return list(found.items())

    # -- internals --------------------------------------------------------------------------

    def _parse_expression(self, source: str) -> nodes.Template:
        try:
            expr = self._expression_node(source)
        except TemplateSyntaxError as exc:
            offset = _error_offset(self._expression_node, source)
            raise ExpressionSyntaxError(_jinja_message(exc), offset) from None
        expr.set_ctx("load")
        body = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
        template = nodes.Template(body, lineno=1)
        template.set_environment(self.env)
        return template

    def _expression_node(self, source: str) -> nodes.Expr:
        parser = Parser(self.env, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            current = parser.stream.current
            raise TemplateSyntaxError(f"unexpected {current.value!r}", current.lineno)
        return expr

    def _parse_template(self, source: str) -> nodes.Template:
        try:
            return self.env.parse(source)
        except TemplateSyntaxError as exc:
            offset = _error_offset(self.env.parse, source)
            raise ExpressionSyntaxError(_jinja_message(exc), offset) from None

    def _compile(self, ast: nodes.Template, source: str = "", env: Any = None) -> Any:
        try:
            return (env or self.env).from_string(ast)
        except TemplateSyntaxError as exc:  # unknown filters and tests surface here
            name = re.search(r"named '([^']+)'", exc.message or "")
            offset = source.find(name.group(1)) if name else 0
            raise ExpressionSyntaxError(_jinja_message(exc), max(offset, 0)) from None


def _environment(finalize: Callable[[Any], Any] | None = None) -> CappedSandbox:
    env = CappedSandbox(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True, finalize=finalize
    )
    env.filters.update(normalize_phone=normalize_phone, date=date_filter, money=money)
    env.tests["outage"] = is_outage
    return env


def _shown_to_a_customer(value: Any) -> Any:
    if value is None:
        raise ValueError(
            "the reply would show a value that is none: guard it with {% if ... %} or give it a"
            " default"
        )
    return value


_TRUNCATED = re.compile(r"unexpected end of|unexpected 'end of|got 'end of", re.IGNORECASE)
_TWO_CHAR_TOKENS = frozenset(
    {"==", "!=", "<=", ">=", "//", "**", "{{", "}}", "{%", "%}", "{#", "#}"}
)


def _jinja_message(exc: TemplateSyntaxError) -> str:
    return f"template syntax error: {exc.message}"


def _error_offset(parse: Callable[[str], Any], source: str) -> int:
    """The column to point at: the end of the shortest prefix that is wrong, not just short.

    Jinja reports lines, not columns. A prefix that fails with the whole source's message, or
    for any reason but "end of ...", holds the mistake at its end. Only run on errors.
    """
    try:
        parse(source)
        whole = ""
    except TemplateSyntaxError as exc:
        whole = exc.message or ""
    for length in range(1, len(source) + 1):
        pair = source[length - 1 : length + 1]
        if length < len(source) and (pair.replace("_", "a").isalnum() or pair in _TWO_CHAR_TOKENS):
            continue  # a cut inside a word or an operator makes a new mistake, not the author's
        head = source[:length]
        if head.count("'") % 2 or head.count('"') % 2:
            continue  # so does a cut inside a string
        try:
            parse(head)
        except TemplateSyntaxError as exc:
            message = exc.message or ""
            if message == whole or not _TRUNCATED.search(message):
                offset = length - 1
                if source[offset - 1 : offset + 1] in _TWO_CHAR_TOKENS:
                    offset -= 1
                while offset > 0 and (source[offset - 1].isalnum() or source[offset - 1] == "_"):
                    offset -= 1  # point at the start of the word
                return offset
    return max(len(source.rstrip()) - 1, 0)
