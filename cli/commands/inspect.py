"""``csflow inspect CONNECTION``: what an API offers, for authors picking fields.

REST, with ``--get PATH``: the JSON answer, each leaf beside the JMESPath that reaches it.
SOAP: the operations with their input and output fields, from the WSDL.
GraphQL: the queries and mutations with their arguments, from the schema or introspection.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from csflow.cli.guard import EXIT_FAILED, EXIT_OK, exit_after_output, usage_error
from csflow.cli.main import cli, guarded, parse_inputs, project_option
from csflow.cli.render import stdout_console

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
    """Show what CONNECTION offers: fields of a REST answer, SOAP operations, GraphQL fields.

    Exit codes: 0 listed; 1 the API answered an error (a 404, say) or could not be reached;
    2 a usage or project error.
    """
    from csflow import Project
    from csflow.adapters.introspect import InspectError, describe

    project = Project.load(project_dir)
    model = project.connection_models.get(connection)
    if model is None:
        from csflow.engine.suggest import did_you_mean

        hint = did_you_mean(connection, project.connection_models)
        raise usage_error(f"unknown connection '{connection}'{hint}")
    console = stdout_console()
    if model.type == "rest":
        if not get_path:
            raise usage_error(
                f"'{connection}' is a REST connection: say which answer to list, "
                "with --get PATH (--get /orders?email=...)"
            )
        if not get_path.startswith("/"):  # else it is glued to the base URL: "shoporders"
            raise click.BadParameter(
                f"'{get_path}' is not a path: start it with / (--get /{get_path})",
                param_hint="'--get'",
            )
        query = parse_inputs(pairs, None, option="--query")
        response = _get(project, connection, get_path, query)
        with exit_after_output(EXIT_OK if response.status_code < 400 else EXIT_FAILED):
            _rest(console, connection, get_path, response)
    if get_path or pairs:  # a SOAP or GraphQL API lists what it offers without a request
        given = "--get" if get_path else "--query"
        raise usage_error(
            f"{given} is for REST connections; '{connection}' is {model.type.upper()}, "
            "whose operations are listed without it"
        )
    try:
        lines = describe(project, connection)
    except InspectError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    with exit_after_output(EXIT_OK):
        for line in lines:
            console.print(line, markup=False)


def _get(project: Any, name: str, path: str, query: dict[str, Any]) -> Any:
    """One GET on the connection, with its auth; a failure to get any answer is a StepError."""

    async def fetch() -> Any:
        try:
            return await project.connections.get(name).send("GET", path, params=query or None)
        finally:
            await project.aclose()

    return asyncio.run(fetch())


def _rest(console: Console, name: str, path: str, response: Any) -> None:
    status = response.status_code
    console.print(
        Text(f"GET {name}{path} → {status}", style="bold" if status < 400 else "bold red")
    )
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
