"""Human output of the CLI: a run's reply, outputs and step table, read at a glance."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from csflow import RunResult
from csflow.engine.coerce import to_json

UNBOUNDED = 100_000  # columns: a table as wide as its longest row
# How each status reads: waiting for the customer's answer, handed over to a person (§12).
STATUS_STYLES = {
    "completed": "green",
    "waiting": "yellow",
    "handoff": "blue",
    "expired": "bright_black",
    "failed": "red",
}


class OutputConsole(Console):
    """rich's Console, but a reader that has gone (``| head``) is the command's to handle:
    rich's own answer is ``SystemExit(1)``, which would turn a completed run into "failed"."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def stdout_console(*, wide_tables: bool = False) -> Console:
    """The console for a command's output.

    Off a terminal (a pipe, a file, a CI log) no line is wrapped, so a URL or an error is
    never broken mid-token. Rules and tables keep the width (COLUMNS, else 80), unless
    ``wide_tables``: then a table is as wide as its rows, for tables of long messages.
    """
    console = OutputConsole(highlight=False)
    if not console.is_terminal:
        console.soft_wrap = True
        if wide_tables:
            console.width = UNBOUNDED
    return console


def show_run(
    console: Console, result: RunResult, *, title: str | None = None, expected: bool = False
) -> None:
    """A run at a glance; ``expected``: its failure was the point (the demo's outage case)."""
    if result.ok:
        status = Text(result.status, style=f"bold {STATUS_STYLES.get(result.status, 'green')}")
    elif expected:
        status = Text("failed, as expected", style="bold yellow")
    else:
        status = Text("failed", style="bold red")
    head = Text.assemble(
        (title or result.flow, "bold"), "  ", status, f"  {result.duration_ms:.1f} ms"
    )
    console.print(head)
    if result.reply:
        console.print(Text.assemble(("  reply  ", "dim"), (result.reply, "cyan")))
    if result.error:
        where = f" at step {result.error['step']}" if result.error.get("step") else ""
        console.print(
            Text.assemble(
                ("  error  ", "dim"),
                (f"{result.error['kind']}{where}: {result.error['message']}", "red"),
            )
        )
    if result.handoff:
        h = result.handoff
        note = f": {h['note']}" if h.get("note") else ""
        console.print(Text.assemble(("  handoff  ", "dim"), (f"{h['reason']}{note}", "blue")))
    _show_outputs(console, "  outputs", result.outputs)
    # A dry run's outputs past its first kept-back write are not claims (engine.dry_run).
    _show_outputs(console, "  would return, had the writes been sent", result.preview_outputs)
    console.print(step_table(result))
    for s in result.steps:
        if s.dry_run is not None:
            w = s.dry_run
            console.print(
                Text.assemble(
                    ("  dry run  ", "yellow"),
                    f"{s.id or s.action}: not sent ",
                    (f"{w['method']} {w['url']}", "bold"),
                )
            )
            if w.get("body"):
                console.print(Text(f"           {_short(w['body'], 300)}", style="dim"))


def _show_outputs(console: Console, title: str, outputs: dict[str, Any]) -> None:
    shown = {k: v for k, v in outputs.items() if v not in (None, [], {})}
    if shown:
        console.print(Text(title, style="dim"))
        width = max(len(k) for k in shown)
        for key, value in shown.items():
            console.print(Text.assemble("    ", (key.ljust(width), "bold"), "  ", _short(value)))


def step_table(result: RunResult) -> Table:
    """Steps with an id, calls and failures; anonymous switches and returns stay out of the way."""
    table = Table(show_header=True, header_style="dim", box=None, padding=(0, 2), pad_edge=True)
    for col, justify in (
        ("step", "left"),
        ("verb", "left"),
        ("does", "left"),
        ("status", "right"),
        ("ms", "right"),
        ("tries", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in result.steps:
        if not (s.id or s.action or s.flow or not s.ok):  # calls and sub-flows always show
            continue
        ok = Text("✓ ", style="green") if s.ok else Text("✗ ", style="red")
        what = s.action or s.flow or ""
        status = str(s.status or "")
        if s.dry_run is not None:
            status = "not sent"
        if s.outcome == "unknown":
            status += " (outcome unknown)"
        table.add_row(
            Text.assemble(ok, s.id or f"line {s.line}"),
            s.verb,
            what,
            status,
            f"{s.duration_ms:.1f}",
            str(s.attempts) if s.action is not None else "",
        )
    return table


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    text = (
        value if isinstance(value, str) else json.dumps(value, default=to_json, ensure_ascii=False)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"
