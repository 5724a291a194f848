"""The test chat and the conversations pages over HTTP, against the real engine and store.

The console serves the shipped project over this module's Demo Shop with a real
``SQLiteStore``: every message goes through ``Project.say``, and the pages read back what the
engine wrote. The runs page's filters and paging are checked against the same store too.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from console_support import BASE, CHANNEL_KEYS, PASSWORD, SIGNING_KEY, console_client, csrf_of, run
from support import SHIPPED

from csflow import Project
from csflow.adapters.sqlite_store import SQLiteStore
from csflow.demo import DemoShop
from csflow.engine.store.conversations import MAX_TEXT
from csflow.serve.console.data import PAGE_SIZE

WISMO = ["hi, where's my stuff??", "no idea", "it's ord 1003"]
PERSON = "can I talk to a real person please"


def text(page: httpx.Response | str) -> str:
    """The visible text, more or less: tags out, entities decoded, spaces folded."""
    source = page if isinstance(page, str) else page.text
    folded = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", source)).split())
    return re.sub(r" ([.,:;])", r"\1", folded)  # "<strong>x</strong>." reads "x."


@pytest.fixture
def env(shop: DemoShop) -> dict[str, str]:
    return {**os.environ, **shop.env()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "runs.sqlite3")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
async def client(store: SQLiteStore, env: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with console_client(store, env) as signed_in:
        yield signed_in


@dataclass
class Chat:
    """One test chat page, as htmx sends its form: the page's conversation id, its token, and
    the state the last answer left in the form (does the conversation wait, in which mode)."""

    client: httpx.AsyncClient
    conversation_id: str
    csrf: str
    waiting: str = "no"
    dry_run: str | None = "on"

    @classmethod
    async def open(cls, client: httpx.AsyncClient) -> Chat:
        page = await client.get(f"{BASE}/chat")
        assert page.status_code == 200
        found = re.search(r'name="conversation_id" value="(console-[0-9a-f]{12})"', page.text)
        assert found, page.text
        return cls(client, found.group(1), csrf_of(page.text))

    async def send(self, message: str, **form: str) -> httpx.Response:
        data = {"csrf": self.csrf, "conversation_id": self.conversation_id, "text": message,
                "waiting": self.waiting, "dry_run": "off", **form}  # fmt: skip
        if self.dry_run == "on" and "dry_run" not in form:
            data["dry_run"] = "on"  # the checkbox, after its hidden "off"
        answer = await self.client.post(f"{BASE}/chat", data=data, headers={"hx-request": "true"})
        swapped = re.search(r'name="waiting" value="(yes|no)"', answer.text)
        if swapped:  # the out-of-band swap that keeps the form's state
            self.waiting = swapped.group(1)
        return answer


async def three_turns(client: httpx.AsyncClient) -> tuple[Chat, list[httpx.Response]]:
    chat = await Chat.open(client)
    return chat, [await chat.send(message) for message in WISMO]


async def test_a_three_turn_chat_answers_with_project_say_its_intent_trace_and_status(
    client: httpx.AsyncClient, store: SQLiteStore
) -> None:
    page = await client.get(f"{BASE}/chat")
    assert re.search(r'<input type="checkbox" id="dry-run" name="dry_run" value="on" checked>',
                     page.text)  # fmt: skip
    assert 'href="/console/chat">start a new one' in page.text
    chat, (first, second, third) = await three_turns(client)
    assert chat.conversation_id not in page.text  # each page is a conversation of its own
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert "<html" not in first.text  # a turn for the log, not a page

    one = text(first)
    assert "hi, where's my stuff??" in one and "What's your order number?" in one
    assert "waiting" in one and "intent wismo 95 %" in one and "dry run" in one
    assert "✓ ok find (find_order)" in one and "✓ ok find.ask_order_number (ask)" in one
    assert "the next message answers it" in one
    assert 'id="dry-switch" class="switch-row" hx-swap-oob="true"' in first.text
    assert re.search(r'<input type="checkbox" disabled checked>', first.text)  # kept while it waits

    two = text(second)
    assert "couldn't find an order number" in two and "waiting" in two
    assert "intent" not in two  # only the message that starts a conversation is classified

    three = text(third)
    assert "on its way with UPS" in three and "1Z999AA10123456784" in three
    assert "completed" in three and "find.by_number (http 200)" in three
    assert "The conversation completed: the next message starts a new one." in three
    assert chat.waiting == "no"

    found = store.get_conversation(chat.conversation_id)
    assert found is not None
    conversation, turns = found
    assert conversation.status == "completed" and conversation.turns == 3
    assert [t.text for t in turns] == WISMO
    assert [t.extra.get("dry_run") for t in turns] == [True, True, True]
    runs = store.list_runs(conversation_id=chat.conversation_id)
    assert sorted((r.turn, r.dry_run) for r in runs) == [(1, True), (2, True), (3, True)]
    for record, answer in zip(sorted(runs, key=lambda r: r.turn or 0), (first, second, third),
                              strict=True):  # fmt: skip
        assert f'href="{BASE}/runs/{record.id}"' in answer.text  # each turn links its own run
    for secret in (*CHANNEL_KEYS.values(), PASSWORD, SIGNING_KEY):
        assert not any(secret in a.text for a in (page, first, second, third)), secret


async def test_the_conversations_pages_show_the_chat_as_the_store_keeps_it(
    client: httpx.AsyncClient, store: SQLiteStore
) -> None:
    handed = await Chat.open(client)
    await handed.send(PERSON)
    chat, _ = await three_turns(client)

    listed = await client.get(f"{BASE}/conversations")
    rows = re.findall(r'<tr class="conversation-row">(.*?)</tr>', listed.text, re.S)
    assert [chat.conversation_id in rows[0], handed.conversation_id in rows[1]] == [True, True]
    assert 'class="badge st-completed"' in rows[0] and "wismo 95 %" in text(rows[0])
    assert re.search(r'class="wide num">3<', rows[0])  # its turns
    assert 'class="badge st-handoff"' in rows[1] and "customer_asked" in text(rows[1])
    assert "ago" in text(rows[0]) or "just now" in text(rows[0])

    waiting_only = await client.get(f"{BASE}/conversations", params={"status": "handoff"})
    assert handed.conversation_id in waiting_only.text
    assert chat.conversation_id not in waiting_only.text

    transcript = await client.get(f"{BASE}/conversations/{chat.conversation_id}")
    shown = text(transcript)
    at = [shown.index(message) for message in WISMO]
    assert at == sorted(at)
    assert shown.index("What's your order number?") < at[1] < shown.index("on its way with UPS")
    assert "intent wismo 95 %" in shown and shown.count("intent wismo") == 1
    assert (
        transcript.text.count('class="badge dry"') == 3
        and shown.count("Asked, and waited for the answer.") == 2
    )
    runs = sorted(store.list_runs(conversation_id=chat.conversation_id), key=lambda r: r.turn or 0)
    links = re.findall(rf'href="{BASE}/runs/([0-9a-f]+)"', transcript.text)
    assert links == [r.id for r in runs]

    one_run = await client.get(f"{BASE}/runs/{runs[2].id}")
    assert f'href="{BASE}/conversations/{chat.conversation_id}#turn-3"' in one_run.text
    assert "turn 3" in text(one_run) and 'id="turn-3"' in transcript.text

    person = text(await client.get(f"{BASE}/conversations/{handed.conversation_id}"))
    assert "Handed to a person: customer_asked. The customer asked to talk to a person." in person
    assert "Handoff: customer_asked. The customer asked to talk to a person." in person


async def test_a_handoff_says_its_reason_and_note_and_a_real_turn_is_recorded_as_one(
    client: httpx.AsyncClient, store: SQLiteStore
) -> None:
    chat = await Chat.open(client)
    chat.dry_run = None
    answer = text(await chat.send(PERSON))
    assert "passing you to one of our team" in answer and "handoff" in answer
    assert "Handed to a person: customer_asked. The customer asked to talk to a person." in answer
    assert "The conversation was handed over: the next message starts a new one." in answer
    assert "dry run" not in answer.replace("Dry run", "")
    (recorded,) = store.list_runs(conversation_id=chat.conversation_id)
    assert recorded.status == "handoff" and recorded.dry_run is False and recorded.turn == 1


async def test_the_dry_run_switch_sends_no_write_unless_it_is_turned_off(
    client: httpx.AsyncClient, shop: DemoShop
) -> None:
    async def status_of(order: str) -> str:
        headers = {"Authorization": f"Bearer {shop.token}"}
        async with httpx.AsyncClient(base_url=shop.rest_url, headers=headers) as api:
            return str((await api.get(f"/orders/{order}")).json()["status"])

    before = await status_of("ORD-1001")
    dry = await Chat.open(client)
    kept = text(await dry.send("I want to cancel my order ORD-1001"))
    assert "cancel (soap not sent)" in kept and "dry run" in kept
    lost = await Chat.open(client)  # a form that lost its switch, hidden "off" and all
    lost.dry_run = None
    data = {"csrf": lost.csrf, "conversation_id": lost.conversation_id,
            "text": "I want to cancel my order ORD-1001"}  # fmt: skip
    kept = text(await client.post(f"{BASE}/chat", data=data, headers={"hx-request": "true"}))
    assert "cancel (soap not sent)" in kept
    assert await status_of("ORD-1001") == before

    real = await Chat.open(client)
    real.dry_run = None
    sent = text(await real.send("I want to cancel my order ORD-1001"))
    assert "cancel (soap" in sent and "not sent" not in sent and "is cancelled" in sent
    assert await status_of("ORD-1001") not in (before, "")


async def test_a_message_is_refused_without_its_token_a_good_id_or_a_good_text(
    client: httpx.AsyncClient, store: SQLiteStore
) -> None:
    chat = await Chat.open(client)
    assert (await chat.send("where is my order?", csrf="forged")).status_code == 403
    bad_id = await chat.send("where is my order?", conversation_id="a b")
    assert bad_id.status_code == 400 and "lost its conversation id" in text(bad_id)
    for wrong in ("   ", "x" * (MAX_TEXT + 1)):
        refused = await chat.send(wrong)
        assert refused.status_code == 400 and "Write a message of 1 to 4000" in text(refused)
    assert store.list_conversations() == []  # nothing refused reached the engine


async def test_without_a_script_a_message_answers_with_the_whole_page(
    client: httpx.AsyncClient,
) -> None:
    chat = await Chat.open(client)
    form = {"csrf": chat.csrf, "conversation_id": chat.conversation_id, "text": WISMO[0],
            "waiting": "no", "dry_run": "on"}  # fmt: skip
    page = await client.post(f"{BASE}/chat", data=form)
    assert page.status_code == 200 and "<html" in page.text and "hx-swap-oob" not in page.text
    assert f'name="conversation_id" value="{chat.conversation_id}"' in page.text
    assert 'name="waiting" value="yes"' in page.text and "What's your order number?" in text(page)


async def test_a_wait_that_ran_out_reads_as_expired_until_the_next_message(
    client: httpx.AsyncClient, store: SQLiteStore, env: dict[str, str]
) -> None:
    project = Project.load(SHIPPED, environ={**env, **CHANNEL_KEYS}, store=store)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    waited = await project.say("zc-late", "has my parcel shipped yet", now=long_ago)
    waits = await project.say("zc-now", "has my parcel shipped yet")
    assert waited.status == waits.status == "waiting"

    rows = re.findall(r'<tr class="conversation-row">(.*?)</tr>',
                      (await client.get(f"{BASE}/conversations")).text, re.S)  # fmt: skip
    late = next(row for row in rows if "zc-late" in row)
    now = next(row for row in rows if "zc-now" in row)
    assert "st-expired" in late and "since" in text(late)
    assert "st-waiting" in now and "until in 2" in text(now)  # a 30-minute ask: "in 29 min"
    page = text(await client.get(f"{BASE}/conversations/zc-late"))
    assert "expired" in page and "Expired" in page and "did not answer in time" in page
    assert "Waiting for the customer's answer" in text(
        await client.get(f"{BASE}/conversations/zc-now")
    )
    (conversation,) = [c for c in store.list_conversations() if c.id == "zc-late"]
    assert conversation.status == "waiting"  # the store's is unchanged: expiry is lazy


async def test_the_runs_filters_and_paging_work_against_a_real_sqlite_store(
    client: httpx.AsyncClient, store: SQLiteStore
) -> None:
    now = dt.datetime.now(dt.UTC)

    def at(minutes_ago: float) -> str:
        moment = now - dt.timedelta(minutes=minutes_ago)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    records = [run(f"old-{i:04d}", at=at(3 * 24 * 60 + i)) for i in range(PAGE_SIZE + 5)]
    records += [
        run("recent-failed", status="failed", at=at(10),
            error={"kind": "http_status", "step": "order", "message": "answered 503"}),
        run("recent-waiting", status="waiting", at=at(20), conversation_id="zc-7", turn=1),
        run("day-old", flow="cancel_order", at=at(60 * 20)),
    ]  # fmt: skip
    for record in records:
        await store.finish(record)

    def shown(page: httpx.Response) -> list[str]:
        assert page.status_code == 200, page.text
        return re.findall(rf'<td><a href="{BASE}/runs/([\w-]+)">', page.text)

    everything = shown(await client.get(f"{BASE}/runs"))
    assert everything[:3] == ["recent-failed", "recent-waiting", "day-old"]
    assert len(everything) == PAGE_SIZE
    second = await client.get(f"{BASE}/runs", params={"page": "2"})
    assert shown(second) == [f"old-{i:04d}" for i in range(PAGE_SIZE - 3, PAGE_SIZE + 5)]
    assert "Older" not in text(second) and "Newer" in text(second)

    async def ids(**params: str) -> list[str]:
        return shown(await client.get(f"{BASE}/runs", params=params))

    assert await ids(status="failed") == ["recent-failed"]
    assert await ids(status="waiting", flow="wismo") == ["recent-waiting"]
    assert await ids(within="1h") == ["recent-failed", "recent-waiting"]
    assert await ids(within="24h", flow="cancel_order") == ["day-old"]
    assert len(await ids(within="7d")) == PAGE_SIZE
    since = (now - dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    until = (now - dt.timedelta(minutes=15)).strftime("%Y-%m-%dT%H:%M")
    assert await ids(since=since, until=until) == ["recent-waiting"]
    assert await ids(conversation="zc-7") == ["recent-waiting"]
    assert await ids(status="expired") == []
    listed = text(await client.get(f"{BASE}/runs", params={"status": "failed"}))
    assert "http_status at step order: answered 503" in listed


async def test_the_context_field_gives_a_new_conversation_what_the_platform_knows(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get(f"{BASE}/chat")
    assert '<textarea id="context" name="context"' in page.text
    chat = await Chat.open(client)
    # With the customer's email known, wismo finds the latest order instead of asking.
    known = await chat.send(WISMO[0], context="email=shipped@demo.shop\r\n")
    assert known.status_code == 200, text(known)
    said = text(known)
    assert "ORD-1003" in said and "on its way with UPS" in said and "completed" in said
    assert "What's your order number?" not in said
    assert ">email=shipped@demo.shop</textarea>" in known.text  # kept for the next one
    # Without it, the same message asks; while it waits, the field is shown, not editable.
    chat = await Chat.open(client)
    asked = await chat.send(WISMO[0])
    assert "What's your order number?" in text(asked)
    assert '<textarea id="context"' not in asked.text
    answer = await chat.send("it's ord 1003", context="email=someone@else.example")
    assert "on its way with UPS" in text(answer)  # an answer is not given a context


@pytest.mark.parametrize(
    ("context", "problem"),
    [
        ("email jane@example.com", "Context line 1 is not KEY=VALUE"),
        ("email=a@b.example\n\n2x=1", "Context line 3 is not KEY=VALUE"),
        ("email=a@b.example\nemail=c@d.example", "The context gives email twice."),
    ],
)
async def test_a_context_that_is_not_key_value_lines_is_refused_before_the_engine(
    client: httpx.AsyncClient, store: SQLiteStore, context: str, problem: str
) -> None:
    chat = await Chat.open(client)
    refused = await chat.send(WISMO[0], context=context)
    assert refused.status_code == 400 and problem in text(refused)
    assert store.list_conversations() == []
