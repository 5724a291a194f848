"""What a template, an expression or a ``with:`` value compiles into: a small callable class.

Like jmespath.py's ``ParsedResult``, a compiled object keeps its ``source`` and says whether
it is ``constant``, and calling it with the run's scope evaluates it with no parsing::

    >>> compiled = Expressions().template("Order {{ n }}")
    >>> compiled.source, compiled.constant, compiled({"n": 7})
    ('Order {{ n }}', False, 'Order 7')

Jinja's own compiled render function is run over a ``Context`` built straight on the scope,
with no copy of it, so a step costs about what a bare Jinja evaluation does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, Undefined

from csflow.engine.errors import StepError
from csflow.engine.sandbox import MAX_VALUE_CHARS

Scope = dict[str, Any]
RenderFunc = Callable[[Context], Iterator[str]]

MAX_OUTPUT_CHARS = 100_000  # a rendered template
MAX_VALUE_ITEMS = 1_000_000  # a list or mapping an expression returns

# What an author's expression can raise while running: each becomes kind `expression`.
_EVALUATION_ERRORS = (
    UndefinedError,
    SecurityError,
    TypeError,
    ValueError,
    ArithmeticError,
    LookupError,
)


class Compiled:
    """A compiled value: call it with the run's scope. ``constant`` ones ignore the scope."""

    __slots__ = ("source",)
    constant = False

    def __init__(self, source: Any) -> None:
        self.source = source

    def __call__(self, scope: Scope) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"


class Constant(Compiled):
    """A value with no template in it: the same on every call."""

    __slots__ = ("value",)
    constant = True

    def __init__(self, value: Any, source: Any = None) -> None:
        super().__init__(value if source is None else source)
        self.value = value

    def __call__(self, scope: Scope) -> Any:
        return self.value


class Expression(Compiled):
    """A condition or a single ``{{ expression }}``: keeps the value's type."""

    __slots__ = ("_env", "_root")

    def __init__(self, env: Any, root: RenderFunc, source: str) -> None:
        super().__init__(source)
        self._env = env
        self._root = root

    def __call__(self, scope: Scope) -> Any:
        ctx = Context(self._env, scope, None, {})
        try:
            for _ in self._root(ctx):
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
            raise _failed(self.source, exc) from None
        return result


class Template(Compiled):
    """A template with text around its expressions: renders to text, capped in size."""

    __slots__ = ("_env", "_root")

    def __init__(self, env: Any, root: RenderFunc, source: str) -> None:
        super().__init__(source)
        self._env = env
        self._root = root

    def __call__(self, scope: Scope) -> str:
        ctx = Context(self._env, scope, None, {})
        parts, size = [], 0
        try:
            for part in self._root(ctx):  # counted as it comes: a loop cannot build it all first
                size += len(part)
                if size > MAX_OUTPUT_CHARS:
                    raise StepError(
                        "expression", f"template output is over {MAX_OUTPUT_CHARS} characters"
                    )
                parts.append(part)
        except StepError:
            raise
        except _EVALUATION_ERRORS as exc:
            raise _failed(self.source, exc) from None
        return "".join(parts)


class ValueMap(Compiled):
    """A mapping of ``with:``, ``set:`` or a channel's ``details``: each value compiled."""

    __slots__ = ("_items",)

    def __init__(self, items: dict[str, Compiled], source: Any) -> None:
        super().__init__(source)
        self._items = tuple(items.items())

    def __call__(self, scope: Scope) -> dict[str, Any]:
        return {key: value(scope) for key, value in self._items}


class ValueList(Compiled):
    """A list whose items are compiled values."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Compiled], source: Any) -> None:
        super().__init__(source)
        self._items = tuple(items)

    def __call__(self, scope: Scope) -> list[Any]:
        return [item(scope) for item in self._items]


class PathTemplate(Compiled):
    """A URL path: literal pieces, and values each percent-encoded as one path segment."""

    __slots__ = ("_pieces",)

    def __init__(self, pieces: list[Compiled], source: str) -> None:
        super().__init__(source)
        self._pieces = tuple(pieces)

    def __call__(self, scope: Scope) -> str:
        return "".join(piece(scope) for piece in self._pieces)


class Segment(Compiled):
    """One value placed in a path: it can never add a ``/`` or climb with ``..``."""

    __slots__ = ("_expr",)

    def __init__(self, expr: Compiled) -> None:
        super().__init__(expr.source)
        self._expr = expr

    def __call__(self, scope: Scope) -> str:
        value = self._expr(scope)
        text = quote("" if value is None else str(value), safe="")
        # "." and ".." are the only segments quoting leaves able to climb out of a path.
        return text.replace(".", "%2E") if text in (".", "..") else text


def combine(parts: dict[str, Compiled] | list[Compiled], source: Any) -> Compiled:
    """A mapping or list of compiled values; a constant when every part is one."""
    if isinstance(parts, dict):
        if all(p.constant for p in parts.values()):
            return Constant(source)
        return ValueMap(parts, source)
    if all(p.constant for p in parts):
        return Constant(source)
    return ValueList(parts, source)


def _failed(source: Any, exc: Exception) -> StepError:
    return StepError("expression", f"{exc} (in {str(source).strip()!r})")


def _cap(value: Any) -> int:
    return MAX_VALUE_CHARS if isinstance(value, str) else MAX_VALUE_ITEMS


def _unit(value: Any) -> str:
    return "characters" if isinstance(value, str) else "items"
