"""One turn of a conversation (§12): a customer's message in, the run's answer out.

A message to a conversation that waits answers its ``ask``: the saved run is checked against
the flow (``Suspended.check``) and resumed. Any other message starts a run: its intent is
classified (or the flow is given), and the message's entities and the platform's ``context``
become the flow's inputs where the flow declares them. Each turn holds the conversation's one
turn slot (``ConversationStore.take``), so two messages never run two turns at once, in any
process; the turn and the conversation's new state are saved together before the answer
leaves.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from csflow.engine.errors import UsageError
from csflow.engine.intents import Intents
from csflow.engine.plan import FlowPlan
from csflow.engine.ports import Gateway
from csflow.engine.result import RunResult
from csflow.engine.runner import DEFAULT_DEADLINE, resume_plan, run_plan
from csflow.engine.store import Recorder, RunStore
from csflow.engine.store.conversations import MAX_ID, MAX_TEXT, Conversation, Turn, TurnSlot
from csflow.engine.suspend import FlowChanged, Suspended

_ID = re.compile(rf"[A-Za-z0-9._:-]{{1,{MAX_ID}}}")
HOLD_MARGIN = 5.0  # how long past its deadline a turn may hold the conversation

# What the customer reads when the conversation cannot go on as it was. Never "our system
# is down": nothing is down, the conversation is just over.
REPHRASE = "Sorry, I didn't quite get that. Could you say it another way?"
EXPIRED = (
    "Sorry, I waited a while for your answer and closed our conversation. What can I help you with?"
)
MISSING = "Let me pass you to one of our team, who can help you with that."
RESTARTED = (
    "Sorry, I lost track of our conversation while we were updating how I handle it."
    " Could you tell me again what you need?"
)


def check_message(conversation_id: str, text: str, context: Any) -> dict[str, Any]:
    """UsageError naming what is wrong with a message; its context as a dict otherwise."""
    if not isinstance(conversation_id, str) or not _ID.fullmatch(conversation_id):
        raise UsageError(
            f"the conversation id must be 1 to {MAX_ID} characters of A-Z, a-z, 0-9, '.', '_',"
            f" ':' and '-' ({_shown(conversation_id)}{_length(conversation_id)} is not)"
        )
    if not isinstance(text, str) or not text.strip():
        raise UsageError("the message's text is empty: send what the customer wrote")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the message's text is {len(text)} characters; at most {MAX_TEXT}")
    if context is None:
        return {}
    if not isinstance(context, Mapping):
        raise UsageError("the message's context must be an object of the flow's inputs")
    return dict(context)


def _length(value: Any) -> str:
    return f", {len(value)} characters," if isinstance(value, str) and len(value) > MAX_ID else ""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


class ConversationTurn:
    """What one turn needs: the project's flows and intents, the gateway and the store."""

    def __init__(
        self,
        flows: Mapping[str, FlowPlan],
        intents: Intents | None,
        gateway: Gateway,
        store: RunStore,
    ) -> None:
        self.flows = flows
        self.intents = intents
        self.gateway = gateway
        self.store = store

    async def say(
        self,
        conversation_id: str,
        text: str,
        *,
        context: Mapping[str, Any] | None = None,
        flow: str | None = None,
        dry_run: bool = False,
        deadline: float = DEFAULT_DEADLINE,
        now: dt.datetime | None = None,
    ) -> RunResult:
        """The answer to ``text`` in the conversation ``conversation_id``; UsageError for a bad
        message, ConversationBusy when earlier messages took longer than ``deadline``."""
        values = check_message(conversation_id, text, context)
        if flow is not None and flow not in self.flows:
            raise UsageError(f"unknown flow '{flow}'")
        if flow is None and self.intents is None:
            raise UsageError(
                "the project has no intents.yaml, so a message cannot pick its flow:"
                " name the flow to talk to"
            )
        hold = deadline + HOLD_MARGIN
        queued = time.monotonic()
        async with self.store.take(conversation_id, wait=deadline, hold=hold) as slot:
            # The time spent behind earlier messages is the turn's too: the run gets what is
            # left of the deadline, so that the caller's own deadline never cuts it off after
            # a write went out and before the turn was saved.
            deadline = max(deadline - (time.monotonic() - queued), 0.05)
            clock = now if now is not None else dt.datetime.now(dt.UTC)
            current = slot.conversation
            if current is not None and current.waiting:
                return await self._answer(slot, current, text, deadline, clock)
            return await self._start(
                slot, conversation_id, current, text, values, flow, dry_run, deadline, clock
            )

    async def _start(
        self,
        slot: TurnSlot,
        conversation_id: str,
        previous: Conversation | None,
        text: str,
        context: dict[str, Any],
        flow: str | None,
        dry_run: bool,
        deadline: float,
        clock: dt.datetime,
    ) -> RunResult:
        entities = self.intents.entities(text) if self.intents is not None else {}
        intent: dict[str, Any] | None = None
        if flow is None:
            assert self.intents is not None
            classification = self.intents.classify(text)
            intent = {
                "name": classification.name,
                "confidence": round(classification.confidence, 4),
            }
            flow = self.intents.flow_for(classification)
        started = _iso(clock)
        # An ended conversation's id starts a new one; its transcript goes on numbering turns.
        turns = previous.turns if previous is not None else 0
        conversation = Conversation(
            id=conversation_id, status="completed", started_at=started, updated_at=started,
            flow=flow, intent=intent, turns=turns,
        )  # fmt: skip
        if flow is None:  # not understood, and no fallback flow: ask to rephrase
            result = RunResult(flow="", status="completed", reply=REPHRASE, run_id=_new_id())
            return await self._save(slot, conversation, text, result, clock, True)
        plan = self.flows[flow]
        # The platform's context, then what the customer said now, where the flow takes them.
        given = {**context, **entities}
        inputs = {name: given[name] for name in plan.inputs if name in given}
        missing = [
            name
            for name, spec in plan.inputs.items()
            if spec.required and spec.default is None and name not in inputs
        ]
        if missing:
            # The flow cannot start from words alone and does not ask: a person takes over,
            # told what was missing, rather than the customer reading an error.
            note = f"The flow '{flow}' needs {', '.join(missing)}, which the message did not give."
            result = RunResult(flow=flow, status="handoff", reply=MISSING, run_id=_new_id())
            result.handoff = {"reason": "missing_details", "note": note, "intent": None}
            return await self._save(slot, conversation, text, result, clock, intent is not None)
        recorder = Recorder(self.store, inputs, self.gateway.redact, deadline)
        recorder.conversation_id, recorder.turn = conversation_id, turns + 1
        result = await run_plan(
            plan, inputs, self.gateway, deadline=deadline, dry_run=dry_run,
            before_write=recorder.before_write, on_end=recorder.end, now=clock,
            intents=self.intents,
        )  # fmt: skip
        await recorder.committed()
        return await self._save(slot, conversation, text, result, clock, intent is not None)

    async def _answer(
        self,
        slot: TurnSlot,
        conversation: Conversation,
        text: str,
        deadline: float,
        clock: dt.datetime,
    ) -> RunResult:
        assert conversation.state is not None and conversation.flow is not None
        flow = conversation.flow
        if conversation.expires_at is not None and _at(conversation.expires_at) <= clock:
            result = RunResult(flow=flow, status="expired", reply=EXPIRED, run_id=_new_id())
            return await self._save(slot, conversation, text, result, clock)
        plan = self.flows.get(flow)
        try:
            if plan is None:
                raise FlowChanged(f"flow '{flow}' is no longer in the project")
            suspended = Suspended.from_json(conversation.state)
            suspended.check(plan)
        except (FlowChanged, KeyError, TypeError, ValueError) as exc:
            error = {"kind": "flow_changed", "message": str(exc), "step": None}
            result = RunResult(
                flow=flow, status="failed", reply=RESTARTED, error=error, run_id=_new_id()
            )
            return await self._save(slot, conversation, text, result, clock)
        recorder = Recorder(self.store, {"answer": text}, self.gateway.redact, deadline)
        recorder.conversation_id, recorder.turn = conversation.id, conversation.turns + 1
        result = await resume_plan(
            plan, suspended, text, self.gateway, deadline=deadline,
            before_write=recorder.before_write, on_end=recorder.end, now=clock,
            intents=self.intents,
        )  # fmt: skip
        await recorder.committed()
        return await self._save(slot, conversation, text, result, clock)

    async def _save(
        self,
        slot: TurnSlot,
        conversation: Conversation,
        text: str,
        result: RunResult,
        clock: dt.datetime,
        classified: bool = False,
    ) -> RunResult:
        """The conversation's new state and the turn, saved together; then the answer.
        ``classified``: this turn's message was classified (the transcript shows its intent)."""
        intent = conversation.intent
        result.conversation_id = conversation.id
        result.intent = intent
        if result.handoff is not None:
            result.handoff["intent"] = intent.get("name") if intent else result.flow
        suspended = result.suspended
        conversation.status = result.status
        conversation.state = suspended.to_json() if suspended is not None else None
        conversation.expires_at = suspended.expires_at if suspended is not None else None
        conversation.handoff = result.handoff
        conversation.turns += 1
        conversation.updated_at = _iso(clock)
        conversation.last_run_id = result.run_id
        turn = Turn(
            seq=conversation.turns,
            at=conversation.updated_at,
            text=text,
            status=result.status,
            reply=result.reply,
            run_id=result.run_id,
            flow=result.flow or None,
            intent=intent if classified else None,
            handoff=result.handoff,
            error=result.error,
            extra={"dry_run": True} if result.dry_run else {},
        )
        await slot.save(conversation, turn)
        return result


def _new_id() -> str:
    return uuid.uuid4().hex


__all__ = ["EXPIRED", "REPHRASE", "RESTARTED", "ConversationTurn", "check_message"]
