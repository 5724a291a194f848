"""The test chat's one call into the engine: ``say``, a customer's message in a conversation.

It is ``Project.say(conversation_id, text, context=None, dry_run=...)`` (spec §12), which
classifies the message, runs or resumes the conversation's flow and returns its
``RunResult``: ``status`` (completed, failed, waiting, handoff, expired), ``reply``,
``intent`` and ``handoff``. A csflow without conversations has no ``Project.say``; then
``ChatUnavailable`` says so and the test chat shows it, rather than a made-up answer.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from csflow.engine.result import RunResult

UNAVAILABLE = (
    "The test chat needs conversations (Project.say, spec §12), which this csflow does not "
    "have yet. Flows and runs work; run a flow with csflow run or a channel meanwhile."
)


class ChatUnavailable(Exception):
    """The project cannot hold a conversation: this csflow has no ``Project.say``."""


@runtime_checkable
class Talks(Protocol):
    """A project that holds conversations (§12)."""

    async def say(
        self,
        conversation_id: str,
        text: str,
        context: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
    ) -> RunResult: ...


def can_talk(project: object) -> bool:
    return isinstance(project, Talks)


async def say(project: object, conversation_id: str, text: str, *, dry_run: bool) -> RunResult:
    """The project's answer to ``text`` in ``conversation_id``; ``dry_run`` sends no write."""
    if not isinstance(project, Talks):
        raise ChatUnavailable(UNAVAILABLE)
    return await project.say(conversation_id, text, dry_run=dry_run)


__all__ = ["UNAVAILABLE", "ChatUnavailable", "Talks", "can_talk", "say"]
