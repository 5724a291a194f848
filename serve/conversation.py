"""The conversation channel (§12): a chat platform's customer messages, one turn each.

``POST {path}/{conversation_id}/messages {"text": ..., "context": {...}}`` with ``x-api-key``
answers 200 ``{"conversation_id", "status", "reply", "intent", "run_id", "handoff"}``, where
``status`` is ``waiting`` (the reply is a question), ``completed``, ``failed``, ``handoff`` or
``expired``. The conversation lives in the server's run store, so the next message may reach
another worker or a restarted server. Refusals are ``{"error": CODE, "message": ...}``:

- 400 ``bad_request``: the body is not a JSON object, has unknown keys, or the id, the text
  or the context is wrong (the engine's ``check_message`` names which);
  ``bad_context``: a context value the flow's input of that name refuses;
- 401 ``unauthorized``; 408 ``timeout`` (the body came too slowly); 413 ``too_large``;
- 409 ``busy`` with ``Retry-After``: earlier messages of this conversation were still being
  answered when this one's deadline came (docs/decisions.md, "Conversation channel");
- 503 ``unavailable`` with ``Retry-After``: the turn passed the deadline and was cut off, or
  the run store (PostgreSQL down) could not be asked; the conversation is as it was before
  the message, so sending it again is safe: this channel's "could not check right now";
- 500 ``internal_error``: a bug of ours, in the log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.engine.conversation import check_message
from csflow.engine.errors import StoreError, UsageError
from csflow.engine.store.conversations import ConversationBusy
from csflow.serve.config import DEFAULT_TENANT, LoadContext
from csflow.serve.endpoint import (
    Answer,
    BadBody,
    Caller,
    Endpoint,
    FlowCall,
    Inbound,
    parse_json_object,
    unencodable,
)
from csflow.serve.generic import RUN_ID_HEADER, error
from csflow.serve.models import DEFAULT_DEADLINE, ConversationChannel
from csflow.serve.runtime import ChannelRun, KeyRing, within

if TYPE_CHECKING:
    from csflow import Project, RunResult

SUFFIX = "/messages"
BODY_KEYS = frozenset({"text", "context"})
RETRY_AFTER = b"1"  # seconds: the earlier turn ends within its own deadline, already running

_UNAUTHORIZED = error(401, "unauthorized", "missing or invalid x-api-key")
_TOO_LARGE = error(413, "too_large", "the request body is over 64 KiB")
_INTERNAL = error(500, "internal_error", "the server could not answer; see its log")


@dataclass(frozen=True, slots=True)
class Message:
    """One customer message, checked: what parse hands the turn and render."""

    conversation_id: str
    text: str
    context: dict[str, Any]


def _retry_later(status: int, code: str, message: str) -> Answer:
    body = {"error": code, "message": message}
    return Answer.json(body, status, code, headers=((b"retry-after", RETRY_AFTER),))


def answer_body(result: RunResult) -> dict[str, Any]:
    """§12's answer of one turn, from the turn's RunResult."""
    intent = result.intent
    handoff = result.handoff
    return {
        "conversation_id": result.conversation_id,
        "status": result.status,
        "reply": result.reply,
        "intent": None
        if intent is None
        else {"name": intent.get("name"), "confidence": intent.get("confidence")},
        "run_id": result.run_id,
        "handoff": None
        if handoff is None
        else {k: handoff.get(k) for k in ("reason", "note", "intent")},
    }


def read_message(conversation_id: str, data: dict[str, Any]) -> Message:
    """The message in a body, or UsageError naming what is wrong with it."""
    unknown = sorted(set(data) - BODY_KEYS)
    if unknown:
        raise UsageError(f'unknown key \'{unknown[0]}\': send {{"text": ..., "context": {{...}}}}')
    text = data.get("text")
    if text is not None and not isinstance(text, str):
        raise UsageError("the message's text must be a string: what the customer wrote")
    context = check_message(conversation_id, text or "", data.get("context"))
    where = unencodable(text, "text") or unencodable(context, "context")
    if where is not None:
        raise UsageError(f"{where}: the text is not valid Unicode (a lone surrogate)")
    return Message(conversation_id, text or "", context)


@dataclass
class ConversationEndpoint(Endpoint[Message]):
    methods: ClassVar[tuple[str, ...]] = ("POST",)
    platform: ClassVar[str] = "conversation"
    name: str
    path: str
    keys: KeyRing
    project: Project
    flow: str | None  # None: intents.yaml picks each new conversation's flow
    timeout: float

    def match(self, path: str) -> dict[str, str] | None:
        # Any id between the two is this channel's: a bad one is refused by name, not 404.
        prefix = f"{self.path}/"
        if not (path.startswith(prefix) and path.endswith(SUFFIX)):
            return None
        return {"conversation_id": path[len(prefix) : -len(SUFFIX)]}

    async def authenticate(self, request: Inbound) -> Caller | Answer:
        if self.keys.match(request.headers.get("x-api-key")) is None:
            return _UNAUTHORIZED
        return Caller(DEFAULT_TENANT, self.project)

    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[Message] | Answer:
        try:
            data = parse_json_object(await request.body(self.timeout))
            message = read_message(request.path_params["conversation_id"], data)
        except (BadBody, UsageError) as exc:
            return error(400, "bad_request", str(exc))
        return FlowCall(caller, self.flow or "", message.context, message)

    async def run(self, call: FlowCall[Message], seconds: float) -> ChannelRun | Answer:
        message = call.request
        project = call.caller.project
        try:
            return await within(
                seconds,
                lambda deadline: project.say(
                    message.conversation_id, message.text, context=message.context,
                    flow=self.flow, deadline=deadline,
                ),
            )  # fmt: skip
        except ConversationBusy:
            return _retry_later(
                409,
                "busy",
                f"conversation '{message.conversation_id}' is still answering an earlier "
                "message: send this one again in a moment",
            )
        except StoreError as exc:
            # The store holds the conversation: without it the turn cannot be taken, nor
            # saved. Nothing of this message was kept, so it can be sent again.
            answer = _retry_later(
                503,
                "unavailable",
                "the conversation could not be checked right now (its store did not answer); "
                "it is as it was: send the message again",
            )
            return replace(answer, detail=str(exc))

    def refuse_inputs(self, call: FlowCall[Message], message: str) -> Answer:
        return error(400, "bad_context", message)

    def render(self, call: FlowCall[Message], outcome: ChannelRun) -> Answer:
        result = outcome.result
        if result is None:  # cut off: nothing of the turn was saved
            return _retry_later(
                503,
                "unavailable",
                f"the answer took longer than the channel's deadline of {self.timeout:g}s; the "
                "conversation is as it was: send the message again",
            )
        run_id = ((RUN_ID_HEADER, result.run_id.encode()),)
        return Answer.json(answer_body(result), 200, result.status, headers=run_id)

    def unavailable(self, detail: str | None = None) -> Answer:
        return replace(_INTERNAL, detail=detail)

    def too_large(self) -> Answer:
        return _TOO_LARGE

    def late_body(self, detail: str) -> Answer:
        message = f"the request body did not arrive within {self.timeout:g}s"
        return error(408, "timeout", message, "body_timeout")

    @classmethod
    def build(
        cls, name: str, model: ConversationChannel, ctx: LoadContext
    ) -> ConversationEndpoint | None:
        default = [(ref, (name, "api_keys", i)) for i, ref in enumerate(model.api_keys)]
        keys, served = ctx.key_ring(name, default, {})
        tenant = served.get(DEFAULT_TENANT)
        if tenant is None:  # the project did not load: its problems are reported already
            return None
        if model.flow is not None:
            ctx.flow_in(tenant, model.flow, (name, "flow"))
        elif tenant.project.intents is None:
            ctx.problem(
                (name, "type"),
                "a conversation channel needs intents.yaml in the project to pick each "
                "conversation's flow, or 'flow:' naming the flow every conversation starts",
            )
        return cls(
            name=name,
            path=model.path.rstrip("/"),
            keys=keys,
            project=tenant.project,
            flow=model.flow,
            timeout=model.timeout or DEFAULT_DEADLINE,
        )


__all__ = ["ConversationEndpoint", "Message", "answer_body", "read_message"]
