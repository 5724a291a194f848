"""The conversation channel (§12) over the ASGI app, in process: answers, refusals, keys,
the deadline and the conversation's turn slot. Conversations are kept in a ``MemoryStore``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from conversation_cases import BAD_MESSAGES, MESSAGES
from support import within

from csflow.engine.store.conversations import Conversation, Turn, TurnSlot
from csflow.engine.store.memory import MemoryStore
from csflow.serve.app import ChannelsApp, create_app
from csflow.serve.config import load_channels
from csflow.serve.conversation import ConversationEndpoint

PROJECT = Path(__file__).parent / "projects" / "conversation"
KEY = "unit-chat-key-0001"
HEADERS = {"x-api-key": KEY}
ANSWER_KEYS = {"conversation_id", "status", "reply", "intent", "run_id", "handoff"}


def app_with(store: MemoryStore) -> ChannelsApp:
    return create_app(PROJECT, {"CHAT_KEY": KEY}, store=store)


@asynccontextmanager
async def client_of(store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    app = app_with(store)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://chat") as client:
            yield client
    finally:
        await app.channels.aclose()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(MemoryStore()) as c:
        yield c


async def say(client: httpx.AsyncClient, cid: str, text: str, **body: Any) -> httpx.Response:
    return await client.post(MESSAGES.format(cid), json={"text": text, **body}, headers=HEADERS)


async def test_a_conversation_answers_in_the_shape_of_section_12(client) -> None:
    first = await say(client, "chat-1", "where is my order?", context={"email": "j@ex.com"})
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == ANSWER_KEYS
    assert body["conversation_id"] == "chat-1"
    assert body["status"] == "waiting"
    assert body["reply"] == "Which order is it? It looks like ORD-1234."
    assert body["intent"]["name"] == "wismo" and 0.5 <= body["intent"]["confidence"] <= 1
    assert set(body["intent"]) == {"name", "confidence"}
    assert body["handoff"] is None
    assert first.headers["x-csflow-run-id"] == body["run_id"]

    second = (await say(client, "chat-1", "it's ord 1004")).json()
    assert second["status"] == "completed"
    assert second["reply"] == "Order ORD-1004 is on its way."
    assert second["intent"] == body["intent"]  # the conversation's intent, on every turn
    assert second["run_id"] != body["run_id"]


async def test_a_handoff_carries_reason_note_and_intent(client) -> None:
    r = await say(client, "chat-2", "can I speak to a human", context={"email": "j@ex.com"})
    body = r.json()
    assert (body["status"], body["reply"]) == ("handoff", "A person from our team takes over now.")
    assert body["handoff"] == {
        "reason": "customer_asked",
        "note": "Asked for a person; write to j@ex.com.",
        "intent": "talk_to_person",
    }


@pytest.mark.parametrize(("path", "body", "code", "message"), BAD_MESSAGES)
async def test_a_bad_message_is_a_400_naming_the_problem(client, path, body, code, message):
    r = await client.post(path, json=body, headers=HEADERS)
    assert r.status_code == 400, r.text
    assert r.json() == {"error": code, "message": message}


async def test_a_body_that_is_not_json_or_not_unicode_is_refused(client) -> None:
    r = await client.post(MESSAGES.format("c"), content=b"{text", headers=HEADERS)
    assert (r.status_code, r.json()["message"]) == (400, "the body is not valid JSON")
    lone = b'{"text": "hi \\ud800"}'
    r = await client.post(MESSAGES.format("c"), content=lone, headers=HEADERS)
    assert r.json() == {
        "error": "bad_request",
        "message": "text: the text is not valid Unicode (a lone surrogate)",
    }


async def test_a_refused_message_leaves_no_turn() -> None:
    store = MemoryStore()
    async with client_of(store) as c:
        r = await say(c, "chat-3", "where is my order?", context={"email": "nope"})
        assert r.status_code == 400
    assert store.get_conversation("chat-3") is None


@pytest.mark.parametrize("key", [None, "", "wrong-key", KEY + "x"])
async def test_a_missing_or_wrong_key_is_a_401_before_the_body_is_read(client, key) -> None:
    headers = {} if key is None else {"x-api-key": key}
    r = await client.post(MESSAGES.format("bad id!"), content=b"not json", headers=headers)
    assert r.status_code == 401
    assert r.json() == {"error": "unauthorized", "message": "missing or invalid x-api-key"}


async def test_other_methods_are_405_and_other_paths_404(client) -> None:
    r = await client.get(MESSAGES.format("c"), headers=HEADERS)
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    for path in ("/v1/conversations/c", "/v1/conversations/c/messages/1", "/v1/conversations"):
        r = await client.post(path, json={"text": "hi"}, headers=HEADERS)
        assert r.status_code == 404, path


async def test_a_body_over_64_kib_is_413(client) -> None:
    r = await client.post(MESSAGES.format("c"), content=b" " * (64 * 1024 + 1), headers=HEADERS)
    assert r.status_code == 413 and r.json()["error"] == "too_large"


async def test_a_message_behind_a_turn_past_the_deadline_is_409_with_retry_after() -> None:
    store = MemoryStore()
    async with client_of(store) as c:
        # Another worker is answering this conversation's earlier message, for too long.
        async with store.take("chat-4", wait=1, hold=10):
            r = await say(c, "chat-4", "where is my order?")
        assert r.status_code == 409
        assert r.headers["retry-after"] == "1"
        assert r.json() == {
            "error": "busy",
            "message": "conversation 'chat-4' is still answering an earlier message: send "
            "this one again in a moment",
        }
        assert (await say(c, "chat-4", "where is my order?")).json()["status"] == "waiting"


class _StuckSlot:
    """A slot whose save never ends (a store that hangs): the turn is cut off by the backstop."""

    def __init__(self, slot: TurnSlot) -> None:
        self.conversation = slot.conversation
        self.cancelled = asyncio.Event()

    async def save(self, conversation: Conversation, turn: Turn) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            self.cancelled.set()


class StuckOnce(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.stuck: _StuckSlot | None = None

    @asynccontextmanager
    async def take(self, conversation_id: str, *, wait: float, hold: float):  # type: ignore[override]
        async with super().take(conversation_id, wait=wait, hold=hold) as slot:
            if self.stuck is None:
                self.stuck = _StuckSlot(slot)
                yield self.stuck
            else:
                yield slot


async def test_a_turn_cut_off_by_the_deadline_answers_503_and_frees_the_conversation() -> None:
    store = StuckOnce()
    async with client_of(store) as c:
        r = await say(c, "chat-5", "where is my order?")
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json() == {
            "error": "unavailable",
            "message": "the answer took longer than the channel's deadline of 1s; the "
            "conversation is as it was: send the message again",
        }
        assert store.stuck is not None
        await within(store.stuck.cancelled.wait(), what="the stuck turn to be cancelled")
        again = await say(c, "chat-5", "where is my order?")
        assert again.status_code == 200 and again.json()["status"] == "waiting"
    saved = store.get_conversation("chat-5")
    assert saved is not None and [t.status for t in saved[1]] == ["waiting"]


async def test_openapi_describes_the_channel_and_a_real_answer_fits_it(client) -> None:
    doc = (await client.get("/openapi.json")).json()
    post = doc["paths"]["/v1/conversations/{conversation_id}/messages"]["post"]
    assert set(post["responses"]) == {"200", "400", "401", "408", "409", "413", "503"}
    assert "Retry-After" in post["responses"]["409"]["headers"]
    schema = post["responses"]["200"]["content"]["application/json"]["schema"]
    request = post["requestBody"]["content"]["application/json"]["schema"]
    body = {"text": "can I speak to a human", "context": {"email": "j@ex.com"}}
    jsonschema.validate(body, request)
    for text in ("where is my order?", "ord 1004", "human please"):
        answer = (await say(client, "chat-6", text)).json()
        jsonschema.validate(answer, schema)
    id_pattern = post["parameters"][0]["schema"]["pattern"]
    assert json.dumps(id_pattern) == json.dumps("^[A-Za-z0-9._:-]{1,128}$")


def test_a_channel_without_intents_or_a_flow_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.yaml").write_text("name: hello\nsteps:\n  - reply: hi\n")
    channel = "chat:\n  type: conversation\n  path: /c\n  api_keys: [{env: K}]\n"
    (tmp_path / "channels.yaml").write_text(channel)
    _, problems = load_channels(tmp_path, {"K": "k"})
    assert [p.message for p in problems] == [
        "a conversation channel needs intents.yaml in the project to pick each conversation's"
        " flow, or 'flow:' naming the flow every conversation starts"
    ]
    (tmp_path / "channels.yaml").write_text(channel + "  flow: helo\n")
    _, problems = load_channels(tmp_path, {"K": "k"})
    assert [p.message for p in problems] == ["unknown flow 'helo' (did you mean 'hello'?)"]
    (tmp_path / "channels.yaml").write_text(channel + "  flow: hello\n")
    channels, problems = load_channels(tmp_path, {"K": "k"})
    assert problems == [] and isinstance(channels.endpoints["chat"], ConversationEndpoint)


async def test_a_channel_with_a_flow_starts_it_without_classifying(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "hello.yaml").write_text(
        "name: hello\nsteps:\n  - reply: Hello, how can I help?\n"
    )
    (tmp_path / "channels.yaml").write_text(
        "chat:\n  type: conversation\n  path: /c\n  api_keys: [{env: K}]\n  flow: hello\n"
    )
    app = create_app(tmp_path, {"K": KEY}, store=MemoryStore())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://chat") as c:
        r = await c.post("/c/x/messages", json={"text": "anything"}, headers=HEADERS)
    assert r.json()["status"] == "completed" and r.json()["intent"] is None
    assert r.json()["reply"] == "Hello, how can I help?"
