"""Jinja2 expressions and templates, sandboxed, strict, compiled once at load.

``Expressions.expression(src)`` and ``Expressions.template(src)`` return callables that take
the run's scope (one dict) and do no parsing. A template that is exactly one
``{{ expr }}`` keeps the expression's type. Evaluation builds a Jinja ``Context`` straight
over the scope, with no copy of it, so a step costs about what a bare Jinja evaluation does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.meta import find_undeclared_variables
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined

from csflow.engine.errors import StepError
from csflow.engine.sandbox import MAX_VALUE_CHARS, CappedSandbox

Compiled = Callable[[dict[str, Any]], Any]

MAX_OUTPUT_CHARS = 100_000  # a rendered template
MAX_VALUE_ITEMS = 1_000_000  # a list or mapping an expression returns

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


class ExpressionSyntaxError(Exception):
    """A Jinja, JMESPath or XPath error at load, ``offset`` characters into the source."""

    def __init__(self, message: str, offset: int | None = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


# ------------------------------------------------------------------------------- filters


def normalize_phone(value: Any, digits: int = 7) -> str:
    """Keep the digits of a phone number, then its last ``digits`` (seed 000's rule)."""
    only = "".join(ch for ch in str(value or "") if ch.isdigit())
    return only[-digits:] if digits else only


def _as_date(value: Any) -> dt.date | dt.datetime:
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.date() if len(text) <= 10 else parsed


def date_filter(value: Any, fmt: str = "%B %-d, %Y") -> str:
    """Format a date or an ISO 8601 text: ``{{ order_date | date("%d %b") }}``."""
    if value is None:
        return ""
    return _as_date(value).strftime(fmt)


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: Any, currency: str | None = None) -> str:
    """``59.9 | money("USD")`` is ``$59.90``; unknown currencies print their code; none is empty."""
    if value is None:
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except ArithmeticError:
        raise ValueError(f"{value!r} is not an amount of money") from None
    code = (currency or "").upper()
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{'-' if amount < 0 else ''}{symbol}{abs(amount):,.2f}"
    return f"{amount:,.2f} {code}".strip()


# ---------------------------------------------------------------------------- compiling


class Expressions:
    """The one sandboxed Jinja environment of a project, and its compilers."""

    def __init__(self) -> None:
        env = CappedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
        env.filters.update(normalize_phone=normalize_phone, date=date_filter, money=money)
        self.env = env
        # Names an expression may use without defining them.
        self.builtin_names = frozenset(env.globals) | {"steps", "now", "true", "false", "none"}

    def globals(self) -> dict[str, Any]:
        return dict(self.env.globals)

    # -- load time --------------------------------------------------------------------------

    def expression(self, source: str) -> Compiled:
        """Compile a condition or a single expression (no braces)."""
        template = self._compile(self._parse_expression(source), source)
        return _expression_callable(self.env, template.root_render_func, source)

    def template(self, source: str) -> Compiled:
        """Compile a template: constants stay constants, one ``{{ x }}`` keeps x's type."""
        if "{{" not in source and "{%" not in source and "{#" not in source:
            return _constant(source)
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
        return _template_callable(self.env, template.root_render_func, source)

    def value(self, obj: Any) -> Compiled:
        """Compile a value of ``with``/``set``/``return``: templates inside lists and maps too."""
        if isinstance(obj, str):
            return self.template(obj)
        if isinstance(obj, dict):
            parts = {k: self.value(v) for k, v in obj.items()}
            if all(getattr(p, "constant", False) for p in parts.values()):
                return _constant(obj)
            items = tuple(parts.items())
            return lambda scope: {k: v(scope) for k, v in items}
        if isinstance(obj, list):
            compiled = [self.value(v) for v in obj]
            if all(getattr(p, "constant", False) for p in compiled):
                return _constant(obj)
            return lambda scope: [v(scope) for v in compiled]
        return _constant(obj)

    def path(self, source: str) -> Compiled:
        """A URL path template: each ``{{ value }}`` is percent-encoded as one segment."""
        pieces: list[Compiled] = []
        pos = 0
        for m in re.finditer(r"\{\{(.*?)\}\}", source):
            literal = source[pos : m.start()]
            if literal:
                pieces.append(_constant(literal))
            try:
                expr = self.expression(m.group(1))
            except ExpressionSyntaxError as exc:
                raise ExpressionSyntaxError(exc.message, (exc.offset or 0) + m.start(1)) from None
            pieces.append(_segment(expr))
            pos = m.end()
        if "{%" in source or "{#" in source:
            raise ExpressionSyntaxError("a path takes {{ values }} only", source.find("{"))
        tail = source[pos:]
        if tail:
            pieces.append(_constant(tail))
        if all(getattr(p, "constant", False) for p in pieces):
            return _constant(source)
        return lambda scope: "".join(p(scope) for p in pieces)

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

    def _compile(self, ast: nodes.Template, source: str = "") -> Any:
        try:
            return self.env.from_string(ast)
        except TemplateSyntaxError as exc:  # unknown filters and tests surface here
            name = re.search(r"named '([^']+)'", exc.message or "")
            offset = source.find(name.group(1)) if name else 0
            raise ExpressionSyntaxError(_jinja_message(exc), max(offset, 0)) from None


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


def _constant(value: Any) -> Compiled:
    def constant(scope: dict[str, Any]) -> Any:
        return value

    constant.constant = True  # type: ignore[attr-defined]
    return constant


def _segment(expr: Compiled) -> Compiled:
    def segment(scope: dict[str, Any]) -> str:
        value = expr(scope)
        text = quote("" if value is None else str(value), safe="")
        # "." and ".." are the only segments quoting leaves able to climb out of a path.
        return text.replace(".", "%2E") if text in (".", "..") else text

    return segment


def _fail(source: str, exc: Exception) -> StepError:
    return StepError("expression", f"{exc} (in {source.strip()!r})")


# What an author's expression can raise while running: each becomes kind `expression`.
_EVALUATION_ERRORS = (
    UndefinedError,
    SecurityError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
)


def _expression_callable(
    env: Any, root: Callable[[Context], Iterator[str]], source: str
) -> Compiled:
    def evaluate(scope: dict[str, Any]) -> Any:
        ctx = Context(env, scope, None, {})
        try:
            for _ in root(ctx):
                pass
            result = ctx.vars["result"]
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            if isinstance(result, str | list | dict | tuple) and len(result) > _cap(result):
                # A value that doubles at every pass of a loop of steps stops here.
                raise SecurityError(f"the value is over {_cap(result)} {_unit(result)}")
        except StepError:
            raise
        except _EVALUATION_ERRORS as exc:
            raise _fail(source, exc) from None
        return result

    evaluate.source = source  # type: ignore[attr-defined]
    return evaluate


def _template_callable(env: Any, root: Callable[[Context], Iterator[str]], source: str) -> Compiled:
    def render(scope: dict[str, Any]) -> str:
        ctx = Context(env, scope, None, {})
        parts, size = [], 0
        try:
            for part in root(ctx):  # counted as it comes: a loop cannot build it all first
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise StepError(
                        "expression", f"template output is over {MAX_OUTPUT_CHARS} characters"
                    )
                parts.append(part)
        except StepError:
            raise
        except _EVALUATION_ERRORS as exc:
            raise _fail(source, exc) from None
        return "".join(parts)

    return render


def _cap(value: Any) -> int:
    return MAX_VALUE_CHARS if isinstance(value, str) else MAX_VALUE_ITEMS


def _unit(value: Any) -> str:
    return "characters" if isinstance(value, str) else "items"
