"""``csflow chat --record FILE``: the conversations of a chat session as flow test cases.

Each conversation (the chat starts a new one after each that ends) becomes one case with
``turns``: what the customer said, and what each turn answered (its status and reply, the
intent on the first turn, the handoff's reason, a completed turn's outputs). The answers its
calls got become the case's mocks, in order, as ``csflow run --record`` keeps them
(``flowtest.record``): secrets redacted, personal data replaced by the same stand-ins in
the messages, the mocks and the expectations, so the case replays. A chat picked by intent
gives a ``conversation: true`` file; ``--flow NAME`` gives that flow's file.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any

from csflow.engine.result import RunResult
from csflow.flowtest.record import CaseRecorder

MIN_AFTER = 60.0  # a pause shorter than this cannot change a turn (asks wait 30 min)


@dataclass
class _Turn:
    text: str
    result: RunResult
    pause: float  # seconds since the turn before


@dataclass
class _Conversation:
    context: dict[str, Any]
    now: dt.datetime
    first_call: int
    last_call: int = -1
    turns: list[_Turn] = field(default_factory=list)


class ConversationRecorder:
    """Keeps a chat's conversations and the calls each made; ``file()`` is the test file."""

    def __init__(self, project: Any, flow: str | None, dry_run: bool) -> None:
        self.calls = CaseRecorder(project)
        self.calls.install()
        self.flow = flow
        self.dry_run = dry_run
        self.conversations: list[_Conversation] = []
        self._open: _Conversation | None = None
        self._last = 0.0

    def turn(self, text: str, context: dict[str, Any] | None, result: RunResult) -> None:
        """One turn said and answered; a turn with no conversation open starts one."""
        now = time.monotonic()
        talk = self._open
        if talk is None:
            moment = dt.datetime.now(dt.UTC).replace(microsecond=0)
            talk = _Conversation(dict(context or {}), moment, len(self.calls.calls))
            self.conversations.append(talk)
            self._open, self._last = talk, now
        talk.turns.append(_Turn(text, result, now - self._last))
        self._last = now
        talk.last_call = len(self.calls.calls)
        if result.status != "waiting":
            self._open = None

    @property
    def recorded_calls(self) -> int:
        return len(self.calls.calls)

    def file(self) -> dict[str, Any]:
        """The test file: a case per conversation, every value scrubbed the same way."""
        recorder = self.calls
        # Every value is read first, so that each one's stand-in is known; then the texts.
        contexts = [recorder.scrub(talk.context) for talk in self.conversations]
        parsed = [recorder.parse(call) for call in recorder.calls]
        outputs = [
            [json.loads(json.dumps(recorder.scrub(t.result.outputs), default=str)) for t in c.turns]
            for c in self.conversations
        ]
        cases = [
            self._case(n, talk, context, parsed[talk.first_call : talk.last_call], outs)
            for n, (talk, context, outs) in enumerate(
                zip(self.conversations, contexts, outputs, strict=True), 1
            )
        ]
        head: dict[str, Any] = {"flow": self.flow} if self.flow else {"conversation": True}
        return {**head, "cases": cases}

    def _case(
        self,
        number: int,
        talk: _Conversation,
        context: dict[str, Any],
        calls: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
    ) -> dict[str, Any]:
        scrubber = self.calls.scrubber
        first = talk.turns[0].result
        about = (first.intent or {}).get("name") or self.flow or "a message not understood"
        case: dict[str, Any] = {
            "name": f"recorded conversation {number}: {about}",
            "now": talk.now.isoformat().replace("+00:00", "Z"),
        }
        if self.dry_run:  # replayed as it ran: the writes stay back again, so need no mock
            case["dry_run"] = True
        if context:
            case["inputs"] = context
        if calls:
            case["mocks"] = [self.calls.finish(call) for call in calls]
        turns = []
        for index, (said, outs) in enumerate(zip(talk.turns, outputs, strict=True)):
            result = said.result
            expect: dict[str, Any] = {}
            if index == 0 and self.flow is None:
                expect["intent"] = (result.intent or {}).get("name")
            expect["status"] = result.status
            if result.reply:
                expect["reply"] = scrubber.text(result.reply)
            if result.handoff is not None:
                expect["handoff"] = {"reason": result.handoff["reason"]}
            if result.status == "completed" and outs:
                expect["outputs"] = scrubber.strings(outs)
            turn: dict[str, Any] = {"say": scrubber.text(said.text)}
            if said.pause >= MIN_AFTER:
                turn["after"] = f"{int(said.pause)}s"
            turn["expect"] = expect
            turns.append(turn)
        case["turns"] = turns
        return case


__all__ = ["ConversationRecorder"]
