"""``csflow``: run, validate, graph, demo and demo-merchant (§8).

Exit codes: 0 the run completed (or the project is valid), 1 the run failed, 2 a usage or
project error. A broken project prints ``PATH:LINE:COL: message`` lines, never a traceback.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from csflow import CsflowError, ProjectError, UsageError
from csflow.cli.render import mermaid, show_run
from csflow.engine.model import parse_duration

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

project_option = click.option(
    "--project",
    "-p",
    "project_dir",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The project folder.",
)


store_option = click.option(
    "--store",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="CSFLOW_STORE",
    default=None,
    help="The run store (SQLite). Default: PROJECT/.csflow/runs.sqlite3, or $CSFLOW_STORE.",
)


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(parse_duration(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def guarded(func: Callable[..., Any]) -> Callable[..., Any]:
    """Project and usage errors become messages and exit 2; nothing prints a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        err = Console(stderr=True, highlight=False)
        try:
            return func(*args, **kwargs)
        except ProjectError as exc:
            for problem in exc.problems:
                click.echo(
                    str(problem), err=True
                )  # one line each, never wrapped: editors parse them
            err.print(
                f"{len(exc.problems)} problem{'s' if len(exc.problems) != 1 else ''} found",
                style="red",
            )
            sys.exit(EXIT_USAGE)
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        except CsflowError as exc:
            err.print(f"error: {exc}", markup=False, style="red")
            sys.exit(EXIT_FAILED)
        except KeyboardInterrupt:
            sys.exit(130)
        except (
            Exception
        ) as exc:  # a bug of ours: say so in one line, keep the trace for CSFLOW_DEBUG
            if os.environ.get("CSFLOW_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (set CSFLOW_DEBUG=1 for the trace)",
                err=True,
            )
            sys.exit(3)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="csflow")
def cli() -> None:
    """csflow: customer-service flows over a merchant's REST, SOAP and GraphQL APIs."""


def _load(project_dir: Path) -> Any:
    from csflow import Project

    return Project.load(project_dir)


def parse_inputs(pairs: tuple[str, ...], inputs_json: str | None) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = json.loads(inputs_json)
        except ValueError as exc:
            raise UsageError(f"--inputs-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise UsageError("--inputs-json must be a JSON object")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--input takes KEY=VALUE, got {pair!r}")
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
    callback=_duration,
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
    store: Path | None,
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
        from csflow.flowtest.record import Recorder

        recorder = Recorder(project)
        recorder.install()
    try:
        result = project.run_sync(flow, inputs, deadline=deadline, dry_run=dry_run)
    finally:
        project.close_store()
    if recorder is not None and record_to is not None:
        from csflow.flowtest.record import dump_case

        record_to.write_text(dump_case(recorder.case(flow, inputs, result)), encoding="utf-8")
        click.echo(
            f"recorded {len(recorder.calls)} call(s) as a test case in {record_to}", err=True
        )
    if as_json:
        click.echo(result.to_json())
    else:
        show_run(Console(highlight=False), result)
    sys.exit(EXIT_OK if result.ok else EXIT_FAILED)


@cli.command()
@project_option
@guarded
def validate(project_dir: Path) -> None:
    """Check every flow, connection, channel and flow test of the project; list every problem."""
    from csflow.flowtest import load_test_files
    from csflow.serve import load_channels

    try:
        project = _load(project_dir)
    except ProjectError as exc:
        _, more = load_channels(project_dir, os.environ)  # one pass: channel problems too
        raise ProjectError([*exc.problems, *more]) from None
    channels, problems = load_channels(project_dir, os.environ, project=project)
    tests, more = load_test_files(project)
    if problems or more:
        raise ProjectError([*problems, *more])
    n, c = len(project.flows), len(project.connection_models)
    t = sum(len(tf.model.cases) for tf in tests)
    ch = len(channels.endpoints)
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
    project = _load(project_dir)
    click.echo(mermaid(project.flow(flow)), nl=False)


@cli.command()
@click.option(
    "--project",
    "-p",
    "project_dir",
    default=None,
    type=click.Path(file_okay=False, path_type=Path),
    help="The project to run (default: the shipped flows).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per conversation.")
@click.option("--serve", is_flag=True, help="Also serve the channels, and print a curl for each.")
@guarded
def demo(project_dir: Path | None, as_json: bool, serve: bool) -> None:
    """Start Demo Shop on loopback and run WISMO for one customer per case."""
    if serve:
        from csflow.cli.demo_serve import serve_demo  # the channels server: `csflow serve`

        sys.exit(serve_demo(project_dir))
    from csflow.cli.demo import run_demo

    sys.exit(run_demo(project_dir, as_json=as_json))


@cli.command("demo-merchant")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=int)
def demo_merchant(host: str, port: int) -> None:
    """Serve Demo Shop (REST, SOAP ERP, GraphQL subscriptions) until interrupted."""
    from csflow.demo.server import serve

    with contextlib.suppress(KeyboardInterrupt):
        serve(host=host, port=port)


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
