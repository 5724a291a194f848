"""What a SOAP or GraphQL connection offers, read from its WSDL or schema (``csflow inspect``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import graphql


def describe(project: Any, name: str) -> list[str]:
    model = project.connection_models[name]
    if model.type == "soap":
        return soap_operations(model.wsdl, project.root)
    return graphql_fields(_graphql_schema(project, name, model))


# -- SOAP ------------------------------------------------------------------------------------


def soap_operations(wsdl: str, root: Path) -> list[str]:
    """Each operation with its input and output fields, from a WSDL file of the project."""
    import zeep
    from zeep.settings import Settings

    if "://" in wsdl:
        raise ValueError("inspect reads a WSDL from the project folder; save the URL's WSDL there")
    path = Path(wsdl) if Path(wsdl).is_absolute() else root / wsdl
    client = zeep.Client(  # type: ignore[no-untyped-call]
        str(path), settings=Settings(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    )
    lines: list[str] = []
    for service in client.wsdl.services.values():
        for port in service.ports.values():
            lines.append(f"{service.name} / {port.name}")
            for op_name, op in sorted(port.binding._operations.items()):
                lines.append(f"  {op_name}")
                lines.append(f"    in:  {op.input.signature(as_output=False) if op.input else '-'}")
                lines.append(
                    f"    out: {op.output.signature(as_output=True) if op.output else '-'}"
                )
    return lines


# -- GraphQL ---------------------------------------------------------------------------------


def _graphql_schema(project: Any, name: str, model: Any) -> graphql.GraphQLSchema:
    if model.schema_:
        path = (
            Path(model.schema_)
            if Path(model.schema_).is_absolute()
            else project.root / model.schema_
        )
        return graphql.build_schema(path.read_text(encoding="utf-8"))

    async def introspect() -> Any:
        try:
            body = json.dumps({"query": graphql.get_introspection_query()}).encode()
            conn = project.connections.get(name)
            response = await conn.send(
                "POST", "", content=body, headers={"Content-Type": "application/json"}, write=False
            )
            return json.loads(response.content)
        finally:
            await project.aclose()

    answer = asyncio.run(introspect())
    if not isinstance(answer, dict) or "data" not in answer:
        raise ValueError(f"the introspection query was refused: {str(answer)[:200]}")
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
