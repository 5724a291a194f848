"""Extraction: JMESPath or XPath, then default, map and type (§5), compiled once at load."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from lxml import etree

from csflow.engine.coerce import CoercionError, coerce
from csflow.engine.errors import ExpressionSyntaxError, StepError
from csflow.engine.model import FieldSpec

Getter = Callable[[Any, Any], Any]
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
        position = getattr(exc, "lex_position", None) or 0
        message = getattr(exc, "msg", None) or str(exc).splitlines()[0]
        raise ExpressionSyntaxError(f"JMESPath syntax error: {message}", int(position)) from None

    def search(data: Any, xml: Any) -> Any:
        if isinstance(data, etree._Element):
            raise StepError("extract", f"{path!r} is JMESPath, but the body is XML: use 'xpath'")
        try:
            return compiled.search(data)
        except JMESPathError as exc:
            raise StepError("extract", f"JMESPath {path!r}: {exc}") from None

    return search


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
