"""The conversations pages and the test chat (§12 conversations, seen from the console).

The transcripts come from the store's conversation port. The test chat sends each message
to the project the console serves, ``Project.say``, in a conversation of its own
(``console-…``), and shows the answer as one turn: the customer's message, the reply, the
intent detected on the turn that started a conversation, the status (an ask waits, a
handoff says why, an expired wait says so) and a compact trace of the steps that ran
(``engine.trace``, the same as ``csflow chat``'s). A dry run is the default: the switch must
be turned off on purpose for a write to leave. Every turn, dry or not, is recorded in the
store like any other (a dry one marked so), so it is on the conversations and runs pages.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from csflow.engine.errors import CsflowError
from csflow.engine.result import RunResult
from csflow.engine.store.conversations import MAX_ID, MAX_TEXT
from csflow.engine.trace import trace
from csflow.serve.console.data import CONVERSATION_STATUSES, page_number

if TYPE_CHECKING:
    from csflow.serve.console.app import Console

_CONTEXT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CONVERSATION_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID}}}")
NO_STORE = "This server records no runs (it was started with --no-store)."


def new_conversation_id() -> str:
    # Marked as the console's, so that a transcript says where it came from.
    return f"console-{secrets.token_hex(6)}"


class Talk:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def conversations(self, request: Request) -> Response:
        params = dict(request.query_params)
        status = params.get("status")
        status = status if status in CONVERSATION_STATUSES else None
        page = await self.console.records.conversations(status, page_number(params))
        return self.console.render(
            request,
            "conversations.html",
            page=page,
            status=status,
            statuses=CONVERSATION_STATUSES,
            kept={"status": status} if status else {},
            note=None if self.console.records.recording else NO_STORE,
            section="conversations",
        )

    async def conversation(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        found = await self.console.records.conversation(conversation_id)
        if found is None:
            message = (
                f"There is no conversation '{conversation_id}'."
                if self.console.records.recording
                else NO_STORE
            )
            return self.console.render(
                request, "error.html", 404, title="Not found", message=message,
                section="conversations",
            )  # fmt: skip
        conversation, turns = found
        return self.console.render(
            request,
            "conversation.html",
            conversation=conversation,
            turns=turns,
            section="conversations",
        )

    async def chat(self, request: Request) -> Response:
        return self._chat_page(
            request, new_conversation_id(), waiting=False, dry_run=True, context=""
        )

    def _chat_page(
        self,
        request: Request,
        conversation_id: str,
        *,
        waiting: bool,
        dry_run: bool,
        context: str,
        **turn: Any,
    ) -> Response:
        """The chat page; with ``turn``'s values, the page after a message sent with no script."""
        return self.console.render(
            request,
            "chat.html",
            conversation_id=conversation_id,
            waiting=waiting,
            dry_run=dry_run,
            context=context,
            max_text=MAX_TEXT,
            recording=self.console.records.recording,
            has_turn=bool(turn),
            section="chat",
            **turn,
        )

    async def say(self, request: Request) -> Response:
        form: dict[str, str] = request.state.form
        text = form.get("text", "").strip()
        conversation_id = form.get("conversation_id", "")
        # Only an explicit "off" sends writes: a form that lost its switch stays a dry run.
        dry_run = form.get("dry_run") != "off"
        # Whether the conversation waited before this message (the page keeps it, from the
        # last answer): only a message that starts a conversation is classified.
        started = form.get("waiting") != "yes"
        context_text = form.get("context", "").strip().replace("\r\n", "\n")
        htmx = request.headers.get("hx-request") == "true"

        def turn(status: int, result: RunResult | None = None, problem: str = "") -> Response:
            # After the answer: does the conversation wait, and in which mode (a conversation
            # keeps the dry run of the message that started it)?
            waiting = result.status == "waiting" if result is not None else not started
            mode = result.dry_run if result is not None else dry_run
            values: dict[str, Any] = {
                "text": text, "started": started, "result": result, "problem": problem,
                "steps": trace(result.steps) if result is not None else [],
            }  # fmt: skip
            if not htmx:  # no script: the whole page, with this turn, ready for the next
                page = self._chat_page(
                    request, conversation_id, waiting=waiting, dry_run=mode,
                    context=context_text, **values,
                )  # fmt: skip
                page.status_code = status
                return page
            return self.console.render(
                request, "_turn.html", status, conversation_id=conversation_id,
                waiting=waiting, dry_run=mode, recording=self.console.records.recording,
                context=context_text, **values,
            )  # fmt: skip

        if not _CONVERSATION_ID.fullmatch(conversation_id):
            return turn(400, problem="This chat lost its conversation id: reload the page.")
        if not text or len(text) > MAX_TEXT:
            return turn(400, problem=f"Write a message of 1 to {MAX_TEXT} characters.")
        context, problem = parse_context(context_text)
        if problem:
            return turn(400, problem=problem)
        try:
            result = await self.console.project.say(
                conversation_id, text, dry_run=dry_run, context=context if started else None
            )
        except CsflowError as exc:  # the engine refused the message (busy, bad text)
            return turn(409, problem=self.console.redact(str(exc)))
        return turn(200, result=result)


def parse_context(text: str) -> tuple[dict[str, str], str]:
    """The context field's ``KEY=VALUE`` lines as a dict, or what is wrong with them."""
    context: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _CONTEXT_KEY.fullmatch(key):
            return {}, (
                f"Context line {number} is not KEY=VALUE: write one a line, like"
                " email=jane@example.com."
            )
        if key in context:
            return {}, f"The context gives {key} twice."
        context[key] = value.strip()
    return context, ""


__all__ = ["NO_STORE", "Talk", "new_conversation_id", "parse_context"]
