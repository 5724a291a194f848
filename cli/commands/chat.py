"""``csflow chat``: talk to the project as a customer would, in the terminal (§12).

Each message is one turn of one conversation (``Project.say``). The first message of a
conversation is classified, and its intent and confidence are shown; every turn shows the
reply and a compact trace of the steps it ran. Off a terminal it reads one message per line
(a script of a conversation), and echoes each so that the transcript reads in order.
``--record FILE`` writes the session's conversations as flow test cases when it ends
(``flowtest.record_turns``).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click
from rich.console import Console
from rich.text import Text

from csflow.cli.main import cli, guarded, parse_inputs, project_option
from csflow.cli.options import duration, output_file, store_option
from csflow.cli.render import STATUS_STYLES, stdout_console
from csflow.engine.result import RunResult
from csflow.engine.trace import trace as trace_steps

if TYPE_CHECKING:
    from csflow.flowtest.record_turns import ConversationRecorder

QUIT = frozenset({"/quit", "/exit"})


@cli.command("chat")
@project_option
@click.option("--flow", metavar="NAME", help="Talk to this flow instead of picking by intent.")
@click.option(
    "--context",
    "-c",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="What the chat platform knows (the flow's inputs), e.g. -c email=jane@example.com.",
)
@click.option("--dry-run", is_flag=True, help="Make the reads, send no write.")
@click.option(
    "--deadline", default="8s", show_default=True, callback=duration, help="Each turn's deadline."
)
@store_option
@click.option(
    "--record",
    "record_to",
    type=click.Path(dir_okay=False, path_type=Path),
    callback=output_file,  # checked before the first message, not after the last
    help="Write the conversations as flow test cases (answers as mocks, secrets and PII"
    " scrubbed) when the chat ends.",
)
@guarded
def chat_command(
    project_dir: Path,
    flow: str | None,
    pairs: tuple[str, ...],
    dry_run: bool,
    deadline: float,
    store: Path | None,
    record_to: Path | None,
) -> None:
    """A test chat: type as a customer; each reply shows its intent and steps. Ctrl-D ends."""
    from csflow import Project

    context = parse_inputs(pairs, None, option="--context")
    # A dry run changes nothing, so it leaves no history either: its conversation is kept
    # in memory. Otherwise the turns are recorded like `csflow run` (csflow runs lists them).
    project = Project.load(project_dir, store=None if dry_run else (store or True))
    if flow is not None:
        project.flow(flow)  # an unknown flow is a usage error before the first message
    elif project.intents is None:
        raise click.UsageError(
            f"{project_dir} has no intents.yaml to pick a flow by: give --flow NAME"
        )
    chat = Chat(project, stdout_console(), flow, context, dry_run, deadline)
    if record_to is not None:
        from csflow.flowtest.record_turns import ConversationRecorder

        chat.recorder = ConversationRecorder(project, flow, dry_run)
    try:
        asyncio.run(chat.run(sys.stdin))
    finally:
        if chat.recorder is not None and record_to is not None:
            _write_record(chat.recorder, record_to)


def _write_record(recorder: ConversationRecorder, path: Path) -> None:
    from csflow.flowtest.record import dump_case

    talks = len(recorder.conversations)
    if not talks:
        click.echo(f"nothing said, so nothing recorded: {path} is left as it was", err=True)
        return
    path.write_text(dump_case(recorder.file(), "csflow chat --record"), encoding="utf-8")
    click.echo(
        f"recorded {talks} conversation(s) and {recorder.recorded_calls} call(s) as test cases"
        f" in {path}",
        err=True,
    )


class Chat:
    """One terminal session: a conversation, restarted after each one that ends."""

    def __init__(
        self,
        project: Any,
        console: Console,
        flow: str | None,
        context: dict[str, Any],
        dry_run: bool,
        deadline: float,
    ) -> None:
        self.project = project
        self.console = console
        self.flow = flow
        self.context = context
        self.dry_run = dry_run
        self.deadline = deadline
        self.conversation = _new_id()
        self.waiting = False
        self.recorder: ConversationRecorder | None = None

    async def run(self, stdin: TextIO) -> None:
        interactive = stdin.isatty()
        if interactive:
            mode = " (dry run: no write is sent)" if self.dry_run else ""
            self.console.print(Text(f"Talk as a customer{mode}. Ctrl-D ends.", style="dim"))
        try:
            while True:
                line = await asyncio.to_thread(_read, stdin, interactive)
                if line is None or line.strip() in QUIT:
                    break
                if not line.strip():
                    continue
                if not interactive:
                    self.console.print(Text.assemble(("you  > ", "bold"), line))
                await self.turn(line)
        finally:
            await self.project.aclose()

    async def turn(self, text: str) -> None:
        started = not self.waiting
        result: RunResult = await self.project.say(
            self.conversation,
            text,
            context=self.context if started else None,
            flow=self.flow,
            dry_run=self.dry_run,
            deadline=self.deadline,
        )
        if self.recorder is not None:
            self.recorder.turn(text, self.context if started else None, result)
        if started and self.flow is None:
            self._intent(text)
        self.console.print(Text.assemble(("bot  > ", "bold cyan"), (result.reply or "", "cyan")))
        self.console.print(trace(result))
        self.waiting = result.status == "waiting"
        if not self.waiting:
            self.conversation = _new_id()  # a fresh conversation for the next message
            self.console.print(Text(_ended(result), style="dim"))

    def _intent(self, text: str) -> None:
        c = self.project.intents.classify(text)
        runner = (
            f", runner-up {c.runner_up.name} {c.runner_up.confidence:.2f}" if c.runner_up else ""
        )
        if c.name is None:
            head = f"not understood (best {c.best.name} {c.confidence:.2f}{runner})"
        else:
            head = f"{c.name} {c.confidence:.2f}{runner}"
        self.console.print(Text(f"       intent {head}", style="magenta"))


def trace(result: RunResult) -> Text:
    """The turn's steps in one line: ``✓ find → ✓ find.ask_order_number (ask) · waiting``."""
    parts = [
        Text.assemble(
            ("✓ ", "green") if s.ok else ("✗ ", "red"), s.label, (f" ({s.detail})", "dim")
        )
        for s in trace_steps(result.steps)
    ]
    line = Text("       ", style="dim")
    line.append_text(Text(" → ", style="dim").join(parts) if parts else Text("no steps"))
    status = result.status
    line.append_text(Text(f"  · {status}", style=STATUS_STYLES.get(status, "white")))
    return line


def _ended(result: RunResult) -> str:
    if result.status == "handoff" and result.handoff is not None:
        h = result.handoff
        note = f": {h['note']}" if h.get("note") else ""
        return f"       handed over to a person ({h['reason']}){note}"
    if result.status == "failed" and result.error is not None:
        return f"       the run failed ({result.error['kind']}): {result.error['message']}"
    return f"       conversation {result.status}; the next message starts a new one"


def _read(stdin: TextIO, interactive: bool) -> str | None:
    if interactive:
        try:
            return input("you  > ")
        except EOFError:
            return None
    line = stdin.readline()
    return None if line == "" else line.rstrip("\n")


def _new_id() -> str:
    return f"chat-{uuid.uuid4().hex[:12]}"
