"""``csflow schema``: JSON Schemas of the project files, from the models that validate them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from csflow.cli.guard import EXIT_OK, exit_after_output
from csflow.cli.main import cli, guarded

KINDS = ("flow", "connections", "channels", "test", "intents")


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of one kind of file; ``csflow schema`` and the editor use the same."""
    from csflow.engine.model import Connection, Flow, FlowTestFile

    if kind == "flow":
        schema = Flow.model_json_schema(by_alias=True)
        title = "csflow flow (flows/*.yaml)"
    elif kind == "intents":
        from csflow.engine.intents import IntentsFile

        schema = IntentsFile.model_json_schema(by_alias=True)
        title = "csflow intents.yaml"
    elif kind == "test":
        schema = FlowTestFile.model_json_schema(by_alias=True)
        title = "csflow flow test (tests/flows/*.yaml)"
    elif kind == "connections":
        inner = Connection.model_json_schema(by_alias=True)
        defs = {**inner.pop("$defs", {}), "Connection": inner}
        for definition in defs.values():
            _allow_env(definition)
        defs["EnvRef"] = ENV_REF
        schema = {
            "type": "object",
            "additionalProperties": {"$ref": "#/$defs/Connection"},
            "$defs": defs,
        }
        title = "csflow connections.yaml"
    else:
        try:
            from csflow.serve.models import channels_schema
        except ImportError:
            raise click.UsageError("channels are not available in this build") from None
        schema = channels_schema()
        title = "csflow channels.yaml"
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": title}


# Any value in connections.yaml may be {env: NAME} (with a default when it is no secret).
ENV_REF = {
    "type": "object",
    "properties": {"env": {"type": "string"}, "default": {}},
    "required": ["env"],
    "additionalProperties": False,
}


def _allow_env(definition: dict[str, Any]) -> None:
    for name, prop in list(definition.get("properties", {}).items()):
        if name != "type":
            definition["properties"][name] = {"anyOf": [prop, {"$ref": "#/$defs/EnvRef"}]}


@cli.command()
@click.argument("kind", type=click.Choice(KINDS), required=False)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write csflow-KIND.schema.json into this folder: KIND's, or every kind's if none.",
)
@guarded
def schema(kind: str | None, out_dir: Path | None) -> None:
    """Print the JSON Schema of a flow (the default), connections, channels, test or intents file.

    For completion and inline errors in VS Code (yaml-language-server), write the schemas
    with --out and point at them in .vscode/settings.json (see the README).
    """
    if out_dir is None:
        with exit_after_output(EXIT_OK):
            json.dump(schema_for(kind or "flow"), sys.stdout, indent=2)
            sys.stdout.write("\n")
        return
    written = []
    for k in (kind,) if kind else KINDS:
        try:
            text = json.dumps(schema_for(k), indent=2)
        except click.UsageError:
            if kind:
                raise
            continue  # every kind: a build without channels skips theirs
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"csflow-{k}.schema.json"
        target.write_text(text + "\n", encoding="utf-8")
        written.append(target)
    with exit_after_output(EXIT_OK):
        for target in written:
            click.echo(target)
