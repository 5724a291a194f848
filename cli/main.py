"""``csflow``: run, validate, graph, demo and demo-merchant (§8).

Exit codes: 0 the run completed (or the project is valid), 1 the run failed, 2 a usage or
project error, 3 a bug of ours (``cli/guard.py``). A broken project prints
``PATH:LINE:COL: message`` lines, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from csflow.cli.guard import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    exit_after_output,
    guarded,
    usage_error,
)
from csflow.cli.options import (
    duration,
    output_file,
    project_folder_option,
    project_option,
    store_option,
)
from csflow.cli.render import show_run, stdout_console
from csflow.engine.graph import mermaid

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "cli",
    "guarded",
    "main",
    "parse_inputs",
    "project_option",
    "store_option",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="csflow")
def cli() -> None:
    """csflow: customer-service flows over a merchant's REST, SOAP and GraphQL APIs."""


def parse_inputs(
    pairs: tuple[str, ...], inputs_json: str | None, *, option: str = "--input"
) -> dict[str, Any]:
    """``KEY=VALUE`` pairs (and a JSON object) as a dict; a malformed one is a usage error."""
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = json.loads(inputs_json)
        except ValueError as exc:
            raise click.BadParameter(
                f"not valid JSON: {exc}", param_hint="'--inputs-json'"
            ) from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="'--inputs-json'")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"takes KEY=VALUE, got {pair!r}", param_hint=f"'{option}'")
        inputs[key.strip()] = value
    return inputs


@cli.command()
@click.argument("flow")
@click.option(
    "--input", "-i", "pairs", multiple=True, metavar="KEY=VALUE", help="An input; repeat for more."
)
@click.option("--inputs-json", metavar="JSON", help="Inputs as one JSON object.")
@project_option
@click.option("--json", "as_json", is_flag=True, help="Print the RunResult as one JSON object.")
@click.option(
    "--deadline",
    default="8s",
    show_default=True,
    callback=duration,
    help="The run's overall deadline.",
)
@store_option
@click.option(
    "--dry-run", is_flag=True, help="Make the reads, send no write; show what would be sent."
)
@click.option(
    "--record",
    "record_to",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=output_file,  # checked before the run makes its writes, not after
    help="Write the run as a flow test case (answers as mocks, secrets and PII scrubbed).",
)
@guarded
def run(
    flow: str,
    pairs: tuple[str, ...],
    inputs_json: str | None,
    project_dir: Path,
    as_json: bool,
    deadline: float,
    store: Path | str | None,
    dry_run: bool,
    record_to: Path | None,
) -> None:
    """Run FLOW once and show its reply, outputs and steps; the run is recorded (csflow runs)."""
    from csflow import Project

    inputs = parse_inputs(pairs, inputs_json)
    # A dry run changes nothing, so it leaves no history either.
    project = Project.load(project_dir, store=None if dry_run else (store or True))
    recorder = None
    if record_to is not None:
        from csflow.flowtest.record import CaseRecorder

        recorder = CaseRecorder(project)
        recorder.install()

    async def once() -> Any:
        try:
            return await project.run(flow, inputs, deadline=deadline, dry_run=dry_run)
        finally:
            await project.aclose()

    result = asyncio.run(once())
    if recorder is not None and record_to is not None:
        from csflow.flowtest.record import dump_case

        record_to.write_text(dump_case(recorder.case(flow, inputs, result)), encoding="utf-8")
        click.echo(
            f"recorded {len(recorder.calls)} call(s) as a test case in {record_to}", err=True
        )
    with exit_after_output(EXIT_OK if result.ok else EXIT_FAILED):
        if as_json:
            click.echo(result.to_json())
        else:
            show_run(stdout_console(), result)


@cli.command()
@project_option
@guarded
def validate(project_dir: Path) -> None:
    """Check every flow, connection, channel and flow test of the project; list every problem."""
    import os

    from csflow import Project, ProjectError
    from csflow.flowtest import load_test_files
    from csflow.serve import load_channels

    try:
        project = Project.load(project_dir)
    except ProjectError as exc:
        _, more = load_channels(project_dir, os.environ)  # one pass: channel problems too
        raise ProjectError([*exc.problems, *more]) from None
    channels, problems = load_channels(project_dir, os.environ, project=project)
    tests, more = load_test_files(project)
    if problems or more:
        raise ProjectError([*problems, *more])
    for warning in project.warnings:
        click.echo(str(warning), err=True)
    n, c = len(project.flows), len(project.connection_models)
    t = sum(len(tf.model.cases) for tf in tests)
    ch = len(channels.endpoints) + len(channels.mounts)
    if channels.demo_keys:
        click.echo(
            f"note: demo keys from channels.yaml for {', '.join(channels.demo_keys)} (not set); "
            "csflow serve refuses them unless given --demo-keys",
            err=True,
        )
    with exit_after_output(EXIT_OK):
        click.echo(
            f"{project_dir}: ok — {n} flow{'s' * (n != 1)}, {c} connection{'s' * (c != 1)}, "
            f"{ch} channel{'s' * (ch != 1)}, {t} test case{'s' * (t != 1)}"
        )


@cli.command()
@click.argument("flow")
@project_option
@guarded
def graph(flow: str, project_dir: Path) -> None:
    """Print FLOW as a Mermaid flowchart."""
    from csflow import Project

    project = Project.load(project_dir)
    with exit_after_output(EXIT_OK):
        click.echo(mermaid(project.flow(flow)), nl=False)


@cli.command()
@project_folder_option(default=None)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per conversation.")
@click.option("--serve", is_flag=True, help="Also serve the channels, and print a curl for each.")
@guarded
def demo(project_dir: Path | None, as_json: bool, serve: bool) -> None:
    """Start Demo Shop on loopback and run one conversation per case (default: the shipped
    flows)."""
    if serve:
        if as_json:
            raise usage_error("--json and --serve do not go together")
        from csflow.cli.demo_serve import serve_demo  # the channels server: `csflow serve`

        sys.exit(serve_demo(project_dir))
    from csflow.cli.demo import run_demo

    code = run_demo(project_dir, as_json=as_json)
    with exit_after_output(code):
        pass


@cli.command("demo-merchant")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@guarded
def demo_merchant(host: str, port: int) -> None:
    """Serve Demo Shop (REST, SOAP ERP, GraphQL subscriptions) until interrupted."""
    from csflow.adapters.listen import ListenError
    from csflow.demo.server import serve

    try:
        serve(host=host, port=port)
    except ListenError as exc:  # the port is taken, or the address is not ours
        raise usage_error(str(exc)) from None


def _load_command_modules() -> None:
    """Commands beyond the core live in ``cli/commands/*.py``, each adding itself to ``cli``."""
    import importlib
    import pkgutil

    import csflow.cli.commands

    for info in sorted(pkgutil.iter_modules(csflow.cli.commands.__path__), key=lambda i: i.name):
        importlib.import_module(f"csflow.cli.commands.{info.name}")


def main() -> None:
    _load_command_modules()
    cli(prog_name="csflow")
