"""``csflow test``: run every flow test case of the project, with a summary and coverage."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.text import Text

from csflow import ProjectError
from csflow.cli.main import EXIT_FAILED, EXIT_OK, EXIT_USAGE, cli, guarded, project_option


@cli.command("test")
@project_option
@click.option(
    "-k", "keyword", default=None, help="Only cases whose flow or name contains this text."
)
@guarded
def test_command(project_dir: Path, keyword: str | None) -> None:
    """Run the flow tests in tests/flows/*.yaml against their mocks."""
    from csflow import Project
    from csflow.flowtest import load_test_files, run_case
    from csflow.flowtest.coverage import branch_coverage

    project = Project.load(project_dir)
    files, problems = load_test_files(project)
    if problems:
        raise ProjectError(problems)
    console = Console(highlight=False)
    if not files:
        click.echo(f"no flow tests in {project_dir / 'tests' / 'flows'}", err=True)
        sys.exit(EXIT_USAGE)

    async def run_all() -> list[Any]:
        outcomes = []
        for tf in files:
            for i, case in enumerate(tf.model.cases):
                if keyword and keyword not in f"{tf.model.flow} {case.name}":
                    continue
                outcome = await run_case(project, tf.model.flow, case)
                outcome.location = f"{tf.source.path}:{tf.case_line(i)}"  # type: ignore[attr-defined]
                outcomes.append(outcome)
        await project.aclose()
        return outcomes

    outcomes = asyncio.run(run_all())
    for o in outcomes:
        mark = Text("✓ ", style="green") if o.ok else Text("✗ ", style="red")
        console.print(Text.assemble(mark, (o.flow, "bold"), " · ", o.name))
        if not o.ok:
            console.print(Text(f"    {o.location}", style="dim"))
            for failure in o.failures:
                console.print(Text("    " + failure.replace("\n", "\n    "), style="red"))
    passed = sum(o.ok for o in outcomes)
    failed = len(outcomes) - passed
    console.print()
    for line in branch_coverage(project, outcomes):
        console.print(line)
    summary = f"{passed} passed, {failed} failed"
    console.print(Text(summary, style="bold green" if not failed else "bold red"))
    sys.exit(EXIT_OK if not failed else EXIT_FAILED)
