"""The conversations pages and the test chat (§12 conversations, seen from the console).

The transcripts come from the store's conversation port. The test chat sends each message
through ``chat.say`` and shows the answer as one turn: the reply, the detected intent, the
status (an ask waits, a handoff says why) and a compact trace of the steps that ran. A dry
run is the default: the switch must be turned off on purpose for a write to leave.
"""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from csflow.engine.errors import CsflowError
from csflow.engine.store.conversations import MAX_ID, MAX_TEXT
from csflow.serve.console.chat import UNAVAILABLE, ChatUnavailable, can_talk, say
from csflow.serve.console.data import CONVERSATION_STATUSES, page_number

if TYPE_CHECKING:
    from csflow.serve.console.app import Console

_CONVERSATION_ID = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_ID}}}")


def new_conversation_id() -> str:
    # Marked as the console's, so that a transcript says where it came from.
    return f"console-{secrets.token_hex(6)}"


class Talk:
    def __init__(self, console: Console) -> None:
        self.console = console

    def _store_note(self) -> str | None:
        records = self.console.records
        if not records.recording:
            return "This server records no runs (it was started with --no-store)."
        if not records.conversations_kept:
            return (
                "This server's run store keeps no conversations yet: they come with "
                "conversations (spec §12)."
            )
        return None

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
            note=self._store_note(),
            section="conversations",
        )

    async def conversation(self, request: Request) -> Response:
        conversation_id = request.path_params["conversation_id"]
        found = await self.console.records.conversation(conversation_id)
        if found is None:
            message = self._store_note() or f"There is no conversation '{conversation_id}'."
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
        return self.console.render(
            request,
            "chat.html",
            available=can_talk(self.console.project),
            unavailable=UNAVAILABLE,
            conversation_id=new_conversation_id(),
            max_text=MAX_TEXT,
            section="chat",
        )

    async def say(self, request: Request) -> Response:
        form: dict[str, str] = request.state.form
        text = form.get("text", "").strip()
        conversation_id = form.get("conversation_id", "")
        # Only an explicit "on" sends writes: a form that lost its switch stays a dry run.
        dry_run = form.get("dry_run") != "off"

        def turn(status: int, **context: object) -> Response:
            return self.console.render(
                request, "_turn.html", status, text=text, dry_run=dry_run,
                conversation_id=conversation_id, **{"result": None, "problem": None, **context},
            )  # fmt: skip

        if not _CONVERSATION_ID.fullmatch(conversation_id):
            return turn(400, problem="This chat lost its conversation id: reload the page.")
        if not text or len(text) > MAX_TEXT:
            return turn(400, problem=f"Write a message of 1 to {MAX_TEXT} characters.")
        try:
            result = await say(self.console.project, conversation_id, text, dry_run=dry_run)
        except ChatUnavailable as exc:
            return turn(503, problem=str(exc))
        except CsflowError as exc:  # the engine refused the message (busy, bad text)
            return turn(409, problem=self.console.redact(str(exc)))
        return turn(200, result=result)


__all__ = ["Talk", "new_conversation_id"]
