"""The shape of an action's answer, as its description (a WSDL) tells it, and paths checked on it.

An action that knows what its answer looks like before any call (the ``soap`` action, from
the WSDL) gives an ``Answer``; the loader checks each ``path:`` of the step's ``extract``
against it, so a path that can never match is a placed problem at load, with the fields
that do exist and a near miss, instead of a silent ``null`` at run time::

    'order.status' cannot match the answer of GetOrderStatus: its fields are status,
    carrier, trackingNumber; did you mean 'status'?

The check is conservative: only a field that the description says cannot be there is a
problem. Anything it cannot follow (functions' results, ``xsd:any``, literals) passes.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jmespath.exceptions
import jmespath.parser

MAX_DEPTH = 8  # a recursive type is followed this deep, then taken as open


@dataclass(frozen=True)
class Shape:
    """A value as far as a description says: an object's fields, a list's item, or a leaf.

    ``open``: anything may be there (``xsd:any``, a type followed too deep): never refused.
    ``type`` names the leaf's or the object's type, for ``csflow inspect``.
    """

    fields: Mapping[str, Shape] | None = None
    item: Shape | None = None
    open: bool = False
    type: str = ""

    @property
    def is_list(self) -> bool:
        return self.item is not None


OPEN = Shape(open=True)


@dataclass(frozen=True)
class Answer:
    """What an action's data will be: ``what`` it answers, its shape, the wrappers left out."""

    what: str
    shape: Shape
    unwrapped: tuple[str, ...] = field(default=())


def paths(shape: Shape, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, Shape]]:
    """Every JMESPath that reaches a field of ``shape``, with the field's shape, in order.

    >>> s = Shape(fields={"a": Shape(item=Shape(fields={"b": Shape(type="string")}))})
    >>> [p for p, _ in paths(s)]
    ['a[]', 'a[].b']
    """
    if depth > MAX_DEPTH:
        return
    if shape.item is not None:
        yield from paths(shape.item, prefix + "[]" if prefix else "[]", depth + 1)
        return
    for name, child in (shape.fields or {}).items():
        here = f"{prefix}.{name}" if prefix else name
        yield (here + "[]" if child.is_list else here), child
        if child.is_list:
            yield from paths(child.item or OPEN, here + "[]", depth + 1)
        else:
            yield from paths(child, here, depth + 1)


class _Miss(Exception):
    def __init__(self, name: str, where: Shape, reached: str) -> None:
        self.name, self.where, self.reached = name, where, reached


def path_problem(expression: str, answer: Answer) -> str | None:
    """Why ``expression`` can never match ``answer``, or None when it may."""
    try:
        ast: dict[str, Any] = dict(jmespath.parser.Parser().parse(expression).parsed)
    except jmespath.exceptions.JMESPathError:
        return None  # a syntax error is reported where the field is compiled
    try:
        _reach(ast, answer.shape, "")
    except _Miss as miss:
        return _message(expression, answer, miss)
    return None


def _message(expression: str, answer: Answer, miss: _Miss) -> str:
    fields = list((miss.where.fields or {}).keys())
    if miss.where.is_list:
        there = f"'{miss.reached}' is a list: reach into it with '{miss.reached}[]'"
    elif miss.where.fields is None and not miss.reached:
        of = f" ({miss.where.type})" if miss.where.type else ""
        there = f"the answer is one value{of}, with no fields: read it with '@'"
    elif miss.where.fields is None:
        kind = f" of type {miss.where.type}" if miss.where.type else ""
        there = f"'{miss.reached}' is a value{kind}, with no fields"
    else:
        listed = ", ".join(fields[:8]) + (", …" if len(fields) > 8 else "")
        whose = f"'{miss.reached}' has the fields" if miss.reached else "its fields are"
        there = f"{whose} {listed}"
    inside = ""
    if answer.unwrapped:
        inside = f" (the path starts inside {'.'.join(answer.unwrapped)}, which is unwrapped)"
    hint = _suggest(expression, [p for p, _ in paths(answer.shape)])
    return f"'{expression}' cannot match the answer of {answer.what}{inside}: {there}{hint}"


def _suggest(expression: str, known: list[str]) -> str:
    parts = expression.split(".")
    for i in range(1, len(parts)):  # `order.status` where `status` is at the top: a wrapper
        tail = ".".join(parts[i:])
        if tail in known:
            return f"; did you mean '{tail}'?"
    close = difflib.get_close_matches(expression, known, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _reach(node: dict[str, Any], shape: Shape, reached: str) -> Shape:
    """The shape ``node`` gives over ``shape``; _Miss where a field cannot be there."""
    if shape.open:
        return OPEN  # nothing under an open shape can be refused
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        name = node["value"]
        if shape.fields is None or name not in shape.fields:
            raise _Miss(name, shape, reached)
        return shape.fields[name]
    if kind in ("subexpression", "pipe"):  # a chain: each part over what the one before gave
        for child in children:
            shape = _reach(child, shape, reached)
            reached = _join(reached, child)
        return shape
    if kind == "index_expression":
        left = _reach(children[0], shape, reached)
        return left.item if left.item is not None else OPEN
    if kind == "flatten":
        left = _reach(children[0], shape, reached)
        if left.item is not None and left.item.is_list:
            return left.item
        return left
    if kind in ("projection", "filter_projection"):
        left = _reach(children[0], shape, reached)
        if left.item is None:
            return OPEN  # a projection of an object's values, or of what a function made
        item = left.item
        if kind == "filter_projection":
            _reach(children[2], item, _join(reached, children[0]) + "[]")
        inner = _reach(children[1], item, _join(reached, children[0]) + "[]")
        return Shape(item=inner)
    if kind == "multi_select_dict":
        return Shape(
            fields={kv["value"]: _reach(kv["children"][0], shape, reached) for kv in children}
        )
    if kind in ("current", "identity"):
        return shape
    if kind in ("function_expression", "multi_select_list", "or_expression", "and_expression",
                "not_expression", "comparator"):  # fmt: skip
        for child in children:
            if child["type"] != "expref":  # &price is read over the items: not followed
                _reach(child, shape, reached)
        return OPEN
    return OPEN


def _join(reached: str, node: dict[str, Any]) -> str:
    text = _text(node)
    return f"{reached}.{text}" if reached and text else (text or reached)


def _text(node: dict[str, Any]) -> str:
    kind = node["type"]
    children = node.get("children", [])
    if kind == "field":
        return str(node["value"])
    if kind == "subexpression":
        return ".".join(t for t in (_text(c) for c in children) if t)
    if kind == "index_expression":
        index = children[1].get("value")
        return _text(children[0]) + (f"[{index}]" if isinstance(index, int) else "[]")
    if kind == "flatten":
        return _text(children[0]) + "[]"
    return ""
