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
from csflow.engine.plan import FAIL, FlowPlan


def show_run(console: Console, result: RunResult, *, title: str | None = None) -> None:
    status = (
        Text("completed", style="bold green") if result.ok else Text("failed", style="bold red")
    )
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
    shown = {k: v for k, v in result.outputs.items() if v not in (None, [], {})}
    if shown:
        console.print(Text("  outputs", style="dim"))
        width = max(len(k) for k in shown)
        for key, value in shown.items():
            console.print(Text.assemble("    ", (key.ljust(width), "bold"), "  ", _short(value)))
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
        if not (s.id or s.verb in ("call", "flow") or not s.ok):
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
            str(s.attempts) if s.verb == "call" else "",
        )
    return table


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    text = (
        value if isinstance(value, str) else json.dumps(value, default=to_json, ensure_ascii=False)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mermaid(plan: FlowPlan) -> str:
    """A Mermaid flowchart of a flow: steps, jumps, switch branches and error paths."""
    lines = ["flowchart TD", f"    start([{plan.name}]) --> s0"]
    n = len(plan.steps)
    for step in plan.steps:
        label = _label(step)
        shape = (
            f"s{step.index}{{{{{label}}}}}"
            if step.verb == "switch"
            else f's{step.index}["{label}"]'
        )
        if step.verb in ("return", "fail"):
            shape = f's{step.index}(["{label}"])'
        lines.append(f"    {shape}")
    lines.append("    done([end])")
    for step in plan.steps:
        src = f"s{step.index}"
        if step.verb == "switch":
            for cond, target in step.cases:
                text = (
                    _escape(getattr(cond, "source", "if").strip()) if cond is not None else "else"
                )
                lines.append(f'    {src} -- "{text}" --> {_node(target, n)}')
            if all(cond is not None for cond, _ in step.cases):
                lines.append(f'    {src} -- "else" --> {_node(step.next, n)}')
        elif step.verb not in ("return", "fail"):
            lines.append(f"    {src} --> {_node(step.next, n)}")
        if step.verb == "return":
            lines.append(f"    {src} --> done")
        if step.on_error not in (FAIL, step.next):
            lines.append(f'    {src} -. "error" .-> {_node(step.on_error, n)}')
    return "\n".join(lines) + "\n"


def _node(index: int, n: int) -> str:
    return "done" if index >= n else f"s{index}"


def _label(step: Any) -> str:
    what = {"call": step.action_name, "flow": step.subflow}.get(step.verb)
    text = f"{step.id}: " if step.id else ""
    text += f"{step.verb} {what}" if what else step.verb
    return _escape(text)


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")
