"""``csflow runs``: the run history, newest first; ``csflow runs show ID``: one run's trace.

The store is read where ``csflow run`` writes it: ``--store PATH``, else ``$CSFLOW_STORE``,
else ``PROJECT/.csflow/runs.sqlite3``. The project itself is not loaded, so the history of
a project that no longer loads can still be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from csflow.adapters.stores import is_url, open_store, store_path
from csflow.cli.guard import exit_after_output
from csflow.cli.main import EXIT_OK, cli, guarded, store_option
from csflow.cli.options import nested_project, project_folder_option, project_problem
from csflow.cli.render import stdout_console
from csflow.engine.coerce import to_json
from csflow.engine.errors import StoreError
from csflow.engine.store import RunRecord, RunStore

STYLE = {"completed": "green", "failed": "red", "in_flight": "yellow"}


def _store(project_dir: Path, store: Path | str | None) -> RunStore | None:
    """The store to read, or None when no run was recorded there yet."""
    where = store or store_path(project_dir)
    if is_url(where):
        return open_store(where)
    path = Path(where)
    if store is None and not path.exists() and nested_project(project_dir) is not None:
        # A forgotten -p at the repository root: the runs are in flows/.csflow. Any other
        # folder with no store has simply recorded no runs, project or not (yet).
        problem = project_problem(project_dir)
        raise click.BadParameter(str(problem), param_hint="'--project' / '-p'")
    try:
        return open_store(path, create=False)
    except StoreError:
        if not path.exists():
            return None
        raise


def _reason(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    where = f" at {error['step']}" if error.get("step") else ""
    return f"{error.get('kind')}{where}: {error.get('message', '')}"


def _when(started_at: str) -> str:
    return started_at.replace("T", " ")[:19]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@cli.group(invoke_without_command=True)
@project_folder_option(checked=False)  # a store may outlive its project: checked in _store
@store_option
@click.option("--flow", default=None, help="Only the runs of this flow.")
@click.option("--failed", is_flag=True, help="Only failed runs.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="A JSON list of run summaries.")
@click.pass_context
@guarded
def runs(
    ctx: click.Context,
    project_dir: Path,
    store: Path | str | None,
    flow: str | None,
    failed: bool,
    limit: int,
    as_json: bool,
) -> None:
    """List recorded runs, newest first, and each flow's last failure."""
    ctx.obj = {"project_dir": project_dir, "store": store}  # `runs -p DIR show ID` reads them
    if ctx.invoked_subcommand is not None:
        return
    opened = _store(project_dir, store)
    found = opened.list_runs(flow=flow, failed=failed, limit=limit) if opened else []
    with exit_after_output(EXIT_OK):
        if as_json:
            summaries = [r.summary() for r in found]
            click.echo(json.dumps(summaries, default=to_json, ensure_ascii=False))
        elif not found:
            where = store or store_path(project_dir)
            click.echo(f"no runs recorded{' that match' if opened else ''} in {where}")
        else:
            assert opened is not None
            _list(stdout_console(wide_tables=True), opened, found, flow)


def _list(console: Console, opened: RunStore, found: list[RunRecord], flow: str | None) -> None:
    # On a terminal the error column takes the room that is left and folds; off one (a pipe,
    # a file, a CI log) every row stays one line, whatever its length, to be grepped.
    terminal = console.is_terminal
    table = Table(box=None, header_style="dim", padding=(0, 1), pad_edge=False, expand=terminal)
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("flow", no_wrap=True, min_width=max(len(r.flow) for r in found))
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("started (UTC)", no_wrap=True, min_width=19)
    table.add_column("ms", justify="right", no_wrap=True, min_width=7)
    if terminal:
        table.add_column("error", ratio=1, overflow="fold")
    else:
        table.add_column("error", no_wrap=True, overflow="ignore")
    for r in found:
        table.add_row(
            r.id[:12],
            r.flow,
            Text(r.status, style=STYLE.get(r.status, "")),
            _when(r.started_at),
            _ms(r.duration_ms),
            Text(_reason(r.error), style="red"),
        )
    console.print(table)
    failures = opened.last_failures()
    shown = {name: f for name, f in failures.items() if flow is None or name == flow}
    if shown:
        console.print(Text("\nlast failure of each flow", style="dim"))
        width = max(len(n) for n in shown)
        for name, f in shown.items():
            console.print(
                Text.assemble(
                    "  ",
                    (name.ljust(width), "bold"),
                    f"  {_when(f.started_at)}  {f.id[:12]}  ",
                    (_reason(f.error), "red"),
                )
            )


@runs.command("show")
@click.argument("run_id")
@project_folder_option(default=None, checked=False)
@store_option
@click.option("--json", "as_json", is_flag=True, help="The whole run as one JSON object.")
@click.pass_context
@guarded
def show(
    ctx: click.Context,
    run_id: str,
    project_dir: Path | None,
    store: Path | str | None,
    as_json: bool,
) -> None:
    """Show one run's whole trace: inputs, outputs, reply, error and every step.

    -p and --store may come before show (csflow runs -p DIR show ID) or after it.
    """
    given = ctx.obj or {}
    project_dir = project_dir or given.get("project_dir") or Path(".")
    store = store or given.get("store")
    opened = _store(project_dir, store)
    record = opened.get_run(run_id) if opened else None
    if record is None:
        where = store or store_path(project_dir)
        raise click.BadParameter(
            f"no recorded run has the id '{run_id}' in {where}", param_hint="'RUN_ID'"
        )
    with exit_after_output(EXIT_OK):
        if as_json:
            click.echo(json.dumps(record.as_dict(), default=to_json, ensure_ascii=False))
        else:
            _show(stdout_console(wide_tables=True), record)


def _show(console: Console, r: RunRecord) -> None:
    console.print(
        Text.assemble(
            (r.flow, "bold"),
            "  ",
            (r.status, f"bold {STYLE.get(r.status, '')}"),
            f"  {_ms(r.duration_ms)} ms  {r.started_at}  {r.id}",
        )
    )
    if r.reply:
        console.print(Text.assemble(("  reply  ", "dim"), (r.reply, "cyan")))
    if r.error:
        console.print(Text.assemble(("  error  ", "dim"), (_reason(r.error), "red")))
    for title, values in (("inputs", r.inputs), ("outputs", r.outputs)):
        shown = {k: v for k, v in values.items() if v is not None}
        if shown:
            console.print(Text(f"  {title}", style="dim"))
            width = max(len(k) for k in shown)
            for key, value in shown.items():
                text = value if isinstance(value, str) else json.dumps(value, default=to_json)
                console.print(Text.assemble("    ", (key.ljust(width), "bold"), "  ", text))
    table = Table(box=None, header_style="dim", padding=(0, 1), pad_edge=True)
    for col in ("step", "verb", "does", "status", "ms", "tries", "outcome"):
        table.add_column(col, no_wrap=True)
    failures = []
    for s in r.steps:
        mark = {True: ("✓ ", "green"), False: ("✗ ", "red")}[bool(s["ok"])]
        if s.get("state") == "in_flight":
            mark = ("… ", "yellow")
        name = s["id"] or f"(line {s.get('line')})"
        table.add_row(
            Text.assemble(mark, name),
            s["verb"],
            s.get("action") or s.get("flow") or "",
            "" if s.get("status") is None else str(s["status"]),
            _ms(s.get("duration_ms")),
            str(s.get("attempts") or "") if s.get("action") else "",
            Text(s.get("outcome") or "", style="yellow" if s.get("outcome") == "unknown" else ""),
        )
        if s.get("error"):
            failures.append((name, _reason(s["error"])))
    console.print(table)
    for name, reason in failures:
        console.print(Text.assemble(("  ✗ ", "red"), (name, "bold"), "  ", (reason, "red")))
