"""``csflow test``: run every flow test case of the project, with a summary and coverage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.text import Text

from csflow import ProjectError
from csflow.cli.guard import exit_after_output, usage_error
from csflow.cli.main import EXIT_FAILED, EXIT_OK, cli, guarded, project_option
from csflow.cli.render import stdout_console

if TYPE_CHECKING:
    from csflow.flowtest.cases import CaseOutcome

EXIT_NO_CASES = 5  # as pytest: nothing was collected


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
    from csflow.flowtest.cases import CONVERSATION, select

    project = Project.load(project_dir)
    files, problems = load_test_files(project)
    if problems:
        raise ProjectError(problems)
    console = stdout_console()
    if not files:
        raise usage_error(f"no flow tests in {project_dir / 'tests' / 'flows'}")

    chosen = select(files, keyword)
    if not chosen:
        click.echo(f"no case matches -k {keyword!r}", err=True)
        raise SystemExit(EXIT_NO_CASES)

    async def run_all() -> list[tuple[CaseOutcome, str]]:
        """Each case's outcome, with the place of the case (``FILE:LINE``)."""
        outcomes = []
        try:
            for tf, i, case in chosen:
                outcome = await run_case(project, tf.model.flow, case)
                outcomes.append((outcome, f"{tf.source.path}:{tf.case_line(i)}"))
        finally:
            await project.aclose()
        return outcomes

    located = asyncio.run(run_all())
    outcomes = [o for o, _ in located]
    passed = sum(o.ok for o in outcomes)
    failed = len(outcomes) - passed
    with exit_after_output(EXIT_OK if not failed else EXIT_FAILED):
        # -k: coverage of the flows chosen, and of those the chosen conversations ran.
        selected = (
            {tf.model.flow for tf, _, _ in chosen if tf.model.flow}
            | {r.flow for o in outcomes if o.flow == CONVERSATION for r in o.results}
            if keyword
            else None
        )
        _report(console, project, located, passed, failed, selected)


def _report(
    console: Console,
    project: Any,
    located: list[tuple[CaseOutcome, str]],
    passed: int,
    failed: int,
    selected: set[str] | None,
) -> None:
    from csflow.flowtest.coverage import branch_coverage

    for o, where in located:
        mark = Text("✓ ", style="green") if o.ok else Text("✗ ", style="red")
        console.print(Text.assemble(mark, (o.flow, "bold"), " · ", o.name))
        if not o.ok:
            console.print(Text(f"    {where}", style="dim"))
            for failure in o.failures:
                console.print(Text("    " + failure.replace("\n", "\n    "), style="red"))
    console.print()
    for line in branch_coverage(project, [o for o, _ in located], selected):
        console.print(line)
    summary = f"{passed} passed, {failed} failed"
    console.print(Text(summary, style="bold green" if not failed else "bold red"))
