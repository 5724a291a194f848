"""``csflow inspect CONNECTION``: what an API offers, for authors picking fields.

REST, with ``--get PATH``: the JSON answer, each leaf beside the JMESPath that reaches it.
SOAP: the operations with their input and output fields, from the WSDL.
GraphQL: the queries and mutations with their arguments, from the schema or introspection.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from csflow import UsageError
from csflow.cli.main import cli, guarded, parse_inputs, project_option

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(JMESPath, value) for every leaf of a JSON value, in document order."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            part = key if _IDENT.match(key) else json.dumps(key)
            yield from leaves(item, f"{path}.{part}" if path else part)
    elif isinstance(value, list) and value:
        for i, item in enumerate(value):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield (path or "@"), value


@cli.command()
@click.argument("connection")
@click.option("--get", "get_path", metavar="PATH", help="REST: GET this path and list its fields.")
@click.option(
    "--query", "-q", "pairs", multiple=True, metavar="KEY=VALUE", help="REST: a query parameter."
)
@project_option
@guarded
def inspect(
    connection: str, get_path: str | None, pairs: tuple[str, ...], project_dir: Path
) -> None:
    """Show what CONNECTION offers: fields of a REST answer, SOAP operations, GraphQL fields."""
    from csflow import Project

    project = Project.load(project_dir)
    model = project.connection_models.get(connection)
    if model is None:
        from csflow.engine.compiler import did_you_mean

        hint = did_you_mean(connection, project.connection_models)
        raise UsageError(f"unknown connection '{connection}'{hint}")
    console = Console(highlight=False)
    if model.type == "rest":
        if not get_path:
            raise UsageError(
                "a REST connection is inspected with --get PATH (say --get /orders?email=...)"
            )
        _rest(console, project, connection, get_path, parse_inputs(pairs, None))
    else:
        from csflow.adapters.introspect import describe

        for line in describe(project, connection):
            console.print(line, markup=False)


def _rest(console: Console, project: Any, name: str, path: str, query: dict[str, Any]) -> None:
    async def fetch() -> Any:
        try:
            conn = project.connections.get(name)
            response = await conn.send("GET", path, params=query or None)
            return response
        finally:
            await project.aclose()

    response = asyncio.run(fetch())
    console.print(Text(f"GET {name}{path} → {response.status_code}", style="bold"))
    try:
        body = json.loads(response.content)
    except ValueError:
        console.print(response.text[:2000], markup=False)
        return
    rows = list(leaves(body))
    width = min(max((len(p) for p, _ in rows), default=1), 60)
    for jpath, value in rows:
        console.print(
            Text.assemble((jpath.ljust(width), "cyan"), "  ", json.dumps(value, ensure_ascii=False))
        )
