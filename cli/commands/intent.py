"""``csflow intent "TEXT"``: how the project's intents.yaml understands a message (§12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from csflow import UsageError
from csflow.cli.main import cli, guarded, project_option


def as_json(data: dict[str, Any]) -> str:
    """§12's shape: ``intent`` is the name (null when not understood), then the rest."""
    shown = {
        "intent": data["name"],
        "confidence": data["confidence"],
        "runner_up": data["runner_up"],
        "entities": data["entities"],
    }
    return json.dumps(shown, ensure_ascii=False)


@cli.command("intent")
@click.argument("text")
@project_option
@click.option("--json", "as_json_output", is_flag=True, help="Print one JSON object.")
@guarded
def intent_command(text: str, project_dir: Path, as_json_output: bool) -> None:
    """The best intent of TEXT, its confidence, the runner-up and the entities found."""
    from csflow.engine.intents import FILE_NAME
    from csflow.engine.loader import load_project

    loaded = load_project(project_dir)
    if loaded.intents is None:
        raise UsageError(
            f"{project_dir / FILE_NAME} not found: the project has no intents to classify with"
            " (see docs/reference/intents.md)"
        )
    understood = loaded.intents.understand(text)
    data = understood.as_data()
    if as_json_output:
        click.echo(as_json(data))
        return
    c = understood.classification
    table = Table(show_edge=False, header_style="bold")
    for column in ("intent", "confidence", "runner-up", "entities"):
        table.add_column(column)
    name = c.name or f"not understood (best: {c.best.name})"
    runner_up = f"{c.runner_up.name} {c.runner_up.confidence:.2f}" if c.runner_up else "-"
    entities = ", ".join(f"{k}={v}" for k, v in understood.entities.items()) or "-"
    table.add_row(name, f"{c.confidence:.2f}", runner_up, entities)
    console = Console(highlight=False)
    console.print(table)
    verdict = "at or over" if c.understood else "under"
    console.print(f"[dim]{c.confidence:.2f} is {verdict} the threshold {c.threshold:.2f}[/dim]")
