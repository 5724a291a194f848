"""Extraction: JMESPath or XPath, then default, map and type (§5), compiled once at load."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.functions
from jmespath.exceptions import IncompleteExpressionError, JMESPathError, LexerError, ParseError
from lxml import etree

from csflow.engine.coerce import CoercionError, coerce
from csflow.engine.errors import ExpressionSyntaxError, StepError
from csflow.engine.model import FieldSpec

Getter = Callable[[Any, Any], Any]


class _MissingListIsEmpty(jmespath.functions.Functions):
    """JMESPath's functions, with a missing list (null) counted as an empty one.

    APIs leave a list out when it has nothing in it (an order with no ``lines``):
    ``length(lines[?shipped])`` is then 0, not an error a flow would read as an outage. A null
    where a function takes only lists or objects becomes ``[]`` or ``{}``; nothing else changes.
    """

    def call_function(self, function_name: str, resolved_args: Iterable[Any]) -> Any:
        spec = self.FUNCTION_TABLE.get(function_name)
        if spec is not None:
            signature = spec["signature"]
            resolved_args = [
                _empty_for(arg, signature[i]["types"]) if i < len(signature) else arg
                for i, arg in enumerate(resolved_args)
            ]
        return super().call_function(function_name, resolved_args)


def _empty_for(arg: Any, types: list[str] | None) -> Any:
    if arg is not None or not types or "null" in types or "any" in types:
        return arg
    if any(t.startswith("array") for t in types):
        return []
    return {} if "object" in types else arg


_OPTIONS = jmespath.Options(custom_functions=_MissingListIsEmpty())
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class CompiledField:
    name: str
    source: str
    get: Getter
    type: str | None
    mapping: Mapping[str, Any] | None
    strict: bool
    default: Any
    required: bool

    def apply(self, data: Any, xml: Any) -> Any:
        value = self.get(data, xml)
        if value is None or value == []:
            if self.required:
                raise StepError("extract", f"field '{self.name}': nothing found at {self.source!r}")
            return self.default
        if self.mapping is not None and not isinstance(value, dict | list):
            key = _map_key(value)
            if key in self.mapping:
                value = self.mapping[key]
            elif self.strict:
                raise StepError("extract", f"field '{self.name}': {value!r} is not in its map")
        try:
            return coerce(value, self.type)
        except CoercionError as exc:
            raise StepError("extract", f"field '{self.name}': {exc}") from None


def _map_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def compile_field(name: str, spec: str | FieldSpec, namespaces: Mapping[str, str]) -> CompiledField:
    """Compile one field; a bad JMESPath or XPath raises ExpressionSyntaxError with its column."""
    if isinstance(spec, str):
        spec = FieldSpec(path=spec)
    if spec.xpath is not None:
        source, get = spec.xpath, _xpath_getter(spec.xpath, namespaces)
    else:
        source = spec.path if spec.path is not None else name
        get = _path_getter(source)
    mapping = {str(k): v for k, v in spec.map.items()} if spec.map is not None else None
    return CompiledField(
        name, source, get, spec.type, mapping, spec.strict, spec.default, spec.required
    )


def extract(fields: tuple[CompiledField, ...], data: Any, xml: Any = None) -> dict[str, Any]:
    return {f.name: f.apply(data, xml) for f in fields}


def _path_getter(path: str) -> Getter:
    if _DOTTED.match(path) and path not in ("true", "false", "null"):
        keys = path.split(".")
        if len(keys) == 1:
            key = keys[0]
            return lambda data, xml: data.get(key) if isinstance(data, dict) else None

        def dotted(data: Any, xml: Any) -> Any:
            for key in keys:
                if not isinstance(data, dict):
                    return None
                data = data.get(key)
            return data

        return dotted
    try:
        compiled = jmespath.compile(path)
    except JMESPathError as exc:
        message, offset = _jmespath_syntax(exc, path)
        raise ExpressionSyntaxError(f"JMESPath syntax error: {message}", offset) from None

    def search(data: Any, xml: Any) -> Any:
        if isinstance(data, etree._Element):
            raise StepError("extract", f"{path!r} is JMESPath, but the body is XML: use 'xpath'")
        try:
            return compiled.search(data, options=_OPTIONS)
        except JMESPathError as exc:
            raise StepError("extract", f"JMESPath {path!r}: {exc}") from None

    return search


_CLOSERS = {"(": ")", "[": "]", "{": "}"}


_TOKENS = {
    "quoted_identifier": "a quoted name",
    "unquoted_identifier": "a name",
    "lbracket": "'['",
    "lbrace": "'{'",
    "rbracket": "']'",
    "rparen": "')'",
    "rbrace": "'}'",
}


def _jmespath_syntax(exc: JMESPathError, path: str) -> tuple[str, int]:
    """What is wrong, and the offset to point at: jmespath's own cause, not its generic text.

    The placement (``PATH:LINE:COL``) already points at the column, so the message says why.
    """
    if isinstance(exc, LexerError):
        return exc.message.lower(), exc.lexer_position
    if isinstance(exc, IncompleteExpressionError):
        opener = _unclosed(path)
        if opener is None:
            return "the expression ends too early", max(len(path.rstrip()) - 1, 0)
        char = path[opener]
        return f"'{char}' is never closed with '{_CLOSERS[char]}'", opener
    if isinstance(exc, ParseError):
        position = min(int(exc.lex_position or 0), len(path))
        token = exc.token_value
        found = "the end of the expression" if token in (None, "") else repr(token)
        if exc.msg.startswith("Expecting:"):
            names = re.findall(r"'(\w+)'", exc.msg)
            wanted = ", ".join(dict.fromkeys(_TOKENS.get(n, n) for n in names))
            return f"expected {wanted}, found {found}", position
        return f"unexpected {found}", position
    return str(exc).splitlines()[0], 0


def _unclosed(path: str) -> int | None:
    """Where the innermost bracket that is never closed opens (quotes skipped)."""
    stack: list[int] = []
    quote = ""
    for i, char in enumerate(path):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"`":
            quote = char
        elif char in _CLOSERS:
            stack.append(i)
        elif char in ")]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _xpath_getter(path: str, namespaces: Mapping[str, str]) -> Getter:
    try:
        compiled = etree.XPath(path, namespaces=dict(namespaces))
    except etree.XPathSyntaxError as exc:
        raise ExpressionSyntaxError(f"XPath syntax error: {exc}", None) from None

    def search(data: Any, xml: Any) -> Any:
        tree = xml if xml is not None else data
        if not isinstance(tree, etree._Element | etree._ElementTree):
            raise StepError("extract", f"xpath {path!r} needs an XML body")
        try:
            found = compiled(tree)
        except etree.XPathError as exc:
            raise StepError("extract", f"xpath {path!r}: {exc}") from None
        return _xpath_value(found)

    return search


def _xpath_value(found: Any) -> Any:
    if isinstance(found, list):
        values = [_node_text(item) for item in found]
        if not values:
            return None
        return values[0] if len(values) == 1 else values
    if isinstance(found, float) and found.is_integer():
        return int(found)
    if isinstance(found, str) and found == "":
        return None
    return found


def _node_text(node: Any) -> Any:
    if isinstance(node, etree._Element):
        return node.text
    return str(node)
