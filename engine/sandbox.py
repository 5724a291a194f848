"""The Jinja sandbox flows run in: immutable, and with caps on what one expression may build.

``ImmutableSandboxedEnvironment`` keeps expressions away from Python's internals (no
``__class__``, no ``__globals__``, no mutation of lists and dicts), and caps ``range`` at
100,000 items. It does not stop an expression from building a huge value, so this adds:

- ``**``: exponents above 1,000, and results above 4,096 bits;
- ``*`` on text and lists: results above 100,000 items;
- ``%`` and ``str.format`` and the ``format`` filter: widths and precisions above 10,000;
- ``center``, ``ljust``, ``rjust``, ``zfill``, ``expandtabs``, ``replace`` (as methods, and
  the ``center``/``indent``/``replace`` filters): results above 1,000,000 characters;
- ``lipsum``: at most 10 paragraphs of at most 100 words.

What it cannot bound is CPU in a template's own ``{% for %}`` loops over data; templates
are written by the flow's author, never by customers (their text is data, never rendered).
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable
from string import Formatter
from typing import Any

from jinja2 import filters as jinja_filters
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum

MAX_POWER = 1_000
MAX_POWER_BITS = 4_096
MAX_REPEAT_LEN = 100_000
MAX_WIDTH = 10_000
MAX_VALUE_CHARS = 1_000_000

_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})


def _too_wide(number: str | None) -> bool:
    return number is not None and (number == "*" or int(number) > MAX_WIDTH)


def check_percent(fmt: str) -> None:
    """Refuse ``%`` formats whose width or precision is over MAX_WIDTH (or given as ``*``)."""
    for m in _PERCENT.finditer(fmt):
        if _too_wide(m.group(1)) or _too_wide(m.group(2)):
            raise SecurityError(f"a format width over {MAX_WIDTH} is not allowed")


def check_braces(fmt: str) -> None:
    """Refuse ``str.format`` specs with a width or precision over MAX_WIDTH, or nested ones."""
    try:
        parsed = list(Formatter().parse(fmt))
    except ValueError:
        return  # str.format will say what is wrong
    for _, _, spec, _ in parsed:
        if not spec:
            continue
        if "{" in spec or any(int(n) > MAX_WIDTH for n in re.findall(r"\d+", spec)):
            raise SecurityError(f"a format width over {MAX_WIDTH} is not allowed")


def check_size(size: int) -> None:
    if size > MAX_VALUE_CHARS:
        raise SecurityError(f"the result would be over {MAX_VALUE_CHARS} characters")


def _check_str_call(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    if name in _WIDTH_METHODS:
        width = args[0] if args else kwargs.get("width", 0)
        if isinstance(width, int):
            check_size(width)
    elif name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(tabsize, int):
            check_size(len(text) + tabsize * text.count("\t"))
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            count = args[2] if len(args) > 2 else kwargs.get("count", -1)
            n = text.count(old) if old else len(text) + 1
            if isinstance(count, int) and count >= 0:
                n = min(n, count)
            check_size(len(text) + n * (len(new) - len(old)))


def _capped_filter(original: Callable[..., Any], check: Callable[..., None]) -> Callable[..., Any]:
    @functools.wraps(original)  # keeps Jinja's pass_eval_context mark
    def capped(*args: Any, **kwargs: Any) -> Any:
        check(*args, **kwargs)
        return original(*args, **kwargs)

    return capped


def _center_check(value: Any, width: Any = 80) -> None:
    if isinstance(width, int):
        check_size(width)


def _indent_check(s: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    pad = width if isinstance(width, int) else len(str(width))
    check_size(len(str(s)) + pad * (str(s).count("\n") + 1))


def _format_check(value: Any, *args: Any, **kwargs: Any) -> None:
    if isinstance(value, str):
        check_percent(value)


def _replace_check(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> None:
    _check_str_call(str(s), "replace", (str(old), str(new), -1 if count is None else count), {})


def lipsum(n: Any = 5, html: bool = True, min: Any = 20, max: Any = 100) -> str:
    """Jinja's ``lipsum``, capped: at most 10 paragraphs of at most 100 words."""
    most = _at_most(max, 100)
    least = sorted((0, _at_most(min, 100), most - 1))[1]
    return str(generate_lorem_ipsum(n=_at_most(n, 10), html=html, min=least, max=most))


def _at_most(value: Any, cap: int) -> int:
    return cap if not isinstance(value, int) else sorted((1, value, cap))[1]


class CappedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with the caps above."""

    intercepted_binops = frozenset({"**", "*", "%"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.globals["lipsum"] = lipsum
        f = self.filters
        f["center"] = _capped_filter(jinja_filters.do_center, _center_check)
        f["indent"] = _capped_filter(jinja_filters.do_indent, _indent_check)
        f["format"] = _capped_filter(jinja_filters.do_format, _format_check)
        f["replace"] = _capped_filter(jinja_filters.do_replace, _replace_check)

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Data keys win over dict methods: an order's `items`, a step called `update`.
        if type(obj) is dict and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > MAX_POWER:
                raise SecurityError(f"exponent {right} is over the limit of {MAX_POWER}")
            # `**` groups left to right in Jinja: bound the result's size, not just the exponent.
            numbers = isinstance(left, int | float) and isinstance(right, int | float)
            if (
                numbers
                and abs(left) > 1
                and right > 0
                and right * math.log2(abs(left)) > MAX_POWER_BITS
            ):
                raise SecurityError(f"the result of ** would have more than {MAX_POWER_BITS} bits")
            return operator.pow(left, right)
        if op == "%":
            if isinstance(left, str):
                check_percent(left)
            return operator.mod(left, right)
        if isinstance(left, int) and isinstance(right, str | list | tuple):
            left, right = right, left
        if (
            isinstance(left, str | list | tuple)
            and isinstance(right, int)
            and len(left) * right > MAX_REPEAT_LEN
        ):
            raise SecurityError(f"repetition would make more than {MAX_REPEAT_LEN} items")
        return operator.mul(left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_call(owner, getattr(obj, "__name__", ""), args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            check_braces(value.__self__)
        return wrapped
