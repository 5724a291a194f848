"""What a SOAP or GraphQL connection offers, read from its WSDL or schema (``csflow inspect``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import graphql

from csflow.adapters.wsdl_shapes import answer_of
from csflow.engine.shapes import Answer, Shape, paths


def describe(project: Any, name: str) -> list[str]:
    """What a SOAP or GraphQL connection offers, as lines; InspectError when it cannot be read."""
    model = project.connection_models[name]
    if model.type == "soap":
        return soap_operations(model, project.root)
    return graphql_fields(_graphql_schema(project, name, model))


class InspectError(Exception):
    """The WSDL or the schema could not be read: unreachable, refused, or not usable."""


# -- SOAP ------------------------------------------------------------------------------------


def soap_operations(model: Any, root: Path) -> list[str]:
    """Each operation with its input and output fields, from the connection's WSDL.

    The WSDL is read the way ``run`` and ``validate`` read it (``wsdl_for``): a project file,
    or a URL fetched with the connection's own auth, with no other fetch allowed.
    """
    from csflow.adapters.wsdl import WsdlError, wsdl_for

    try:
        wsdl = wsdl_for(model, root)
    except WsdlError as exc:
        raise InspectError(str(exc)) from None
    lines: list[str] = []
    for service in wsdl.document.services.values():
        for port in service.ports.values():
            lines.append(f"{service.name} / {port.name}")
            for op_name, op in sorted(port.binding._operations.items()):
                lines.append(f"  {op_name}")
                lines.append(f"    in:  {op.input.signature(as_output=False) if op.input else '-'}")
                lines.append(
                    f"    out: {op.output.signature(as_output=True) if op.output else '-'}"
                )
                lines.extend(_path_lines(answer_of(op_name, op)))
    return lines


def _path_lines(answer: Answer | None) -> list[str]:
    """The answer's fields as ``path:`` sees them: each JMESPath that reaches one, its type."""
    if answer is None:
        return []
    inside = f" (inside {'.'.join(answer.unwrapped)}, unwrapped)" if answer.unwrapped else ""
    found = list(paths(answer.shape))
    if not found:
        what = "anything" if answer.shape.open else f"one value ({answer.shape.type}): '@'"
        return [f"    path: {what}{inside}"]
    width = max(len(p) for p, _ in found)
    lines = [f"    path:{inside}"]
    for path, shape in found:
        lines.append(f"      {path.ljust(width)}  {_kind(shape)}")
    return lines


def _kind(shape: Shape) -> str:
    if shape.item is not None:
        return f"list of {_kind(shape.item)}"
    if shape.open:
        return "anything"
    return shape.type or ("object" if shape.fields is not None else "value")


# -- GraphQL ---------------------------------------------------------------------------------


def _graphql_schema(project: Any, name: str, model: Any) -> graphql.GraphQLSchema:
    if model.schema_:
        path = (
            Path(model.schema_)
            if Path(model.schema_).is_absolute()
            else project.root / model.schema_
        )
        try:
            return graphql.build_schema(path.read_text(encoding="utf-8"))
        except (OSError, graphql.GraphQLError) as exc:  # validate reports it too, with its place
            raise InspectError(f"the schema '{model.schema_}' cannot be read: {exc}") from None

    async def introspect() -> Any:
        try:
            body = json.dumps({"query": graphql.get_introspection_query()}).encode()
            conn = project.connections.get(name)
            response = await conn.send(
                "POST", "", content=body, headers={"Content-Type": "application/json"}, write=False
            )
        finally:
            await project.aclose()
        if response.status_code >= 400:
            raise InspectError(f"the introspection query was answered {response.status_code}")
        try:
            return json.loads(response.content)
        except ValueError:
            raise InspectError("the introspection query was not answered with JSON") from None

    answer = asyncio.run(introspect())
    if not isinstance(answer, dict) or not isinstance(answer.get("data"), dict):
        raise InspectError(f"the introspection query was refused: {str(answer)[:200]}")
    return graphql.build_client_schema(answer["data"])


def graphql_fields(schema: graphql.GraphQLSchema) -> list[str]:
    """Queries and mutations with their arguments and result types."""
    lines: list[str] = []
    for title, root in (("queries", schema.query_type), ("mutations", schema.mutation_type)):
        if root is None:
            continue
        lines.append(title)
        for field_name, f in sorted(root.fields.items()):
            args = ", ".join(f"{a}: {arg.type}" for a, arg in f.args.items())
            lines.append(f"  {field_name}({args}): {f.type}")
    return lines
