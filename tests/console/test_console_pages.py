"""What each page of the console shows, over HTTP, with the store a fake that says what it was
asked (the reader's ``list_runs(flow, status, since, until, conversation_id, limit, offset)``)."""

from __future__ import annotations

import hashlib
import html
import re
from pathlib import Path

import httpx
import pytest
from console_support import (
    BASE,
    CHANNEL_KEYS,
    PASSWORD,
    SIGNING_KEY,
    FakeStore,
    console_client,
    run,
)
from support import SHIPPED

from csflow import Project
from csflow.engine.graph import mermaid
from csflow.engine.store.conversations import Conversation, Turn
from csflow.serve.console.app import STATIC
from csflow.serve.console.data import PAGE_SIZE

FAILED = run(
    "run-failed-0001",
    status="failed",
    duration_ms=102.0,
    error={"kind": "http_status", "step": "order", "message": "GET shop/orders answered 503"},
    steps=[
        {"id": "order", "verb": "call", "action": "http", "ok": False, "status": 503,
         "duration_ms": 101.0, "attempts": 3, "error": {"kind": "http_status", "message": "answered 503"}},
    ],
)  # fmt: skip
UNKNOWN = run(
    "run-unknown-0001",
    flow="cancel_order",
    status="failed",
    conversation_id="zc-42",
    turn=2,
    steps=[{"id": "cancel", "verb": "call", "action": "http", "ok": False, "outcome": "unknown",
            "duration_ms": 8000.0, "attempts": 1}],
)  # fmt: skip


def text(page: httpx.Response) -> str:
    """The page's visible text, more or less: tags out, entities decoded, spaces folded."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page.text)).split())


async def test_the_runs_filters_are_the_readers_keywords_and_the_page_is_a_link(shop_env):
    store = FakeStore([FAILED])
    async with console_client(store, shop_env) as client:
        page = await client.get(
            f"{BASE}/runs",
            params={"flow": "wismo", "status": "failed", "since": "2026-11-20T14:00",
                    "until": "2026-11-20T15:00", "page": "3"},
        )  # fmt: skip
        assert page.status_code == 200
        assert store.asked[-1] == {
            "flow": "wismo",
            "status": "failed",
            "since": "2026-11-20T14:00:00.000Z",
            "until": "2026-11-20T15:00:00.000Z",
            "limit": PAGE_SIZE + 1,  # one more: is there a next page?
            "offset": 2 * PAGE_SIZE,
        }
        assert 'option value="failed" selected' in page.text  # the form shows what is asked
        store.asked.clear()
        await client.get(f"{BASE}/runs", params={"flow": "nope", "status": "bogus", "since": "x"})
        assert store.asked == [{"limit": PAGE_SIZE + 1, "offset": 0}]  # no filter not a choice
        await client.get(f"{BASE}/runs", params={"within": "1h"})
        assert set(store.asked[-1]) == {"since", "limit", "offset"}


async def test_the_runs_list_shows_why_each_run_failed_newest_first_with_paging(shop_env):
    older = [run(f"run-{i:04d}", at=f"2026-11-19T10:{i:02d}:00.000Z") for i in range(PAGE_SIZE)]
    store = FakeStore([FAILED, *older])
    async with console_client(store, shop_env) as client:
        page = await client.get(f"{BASE}/runs", params={"flow": "wismo"})
        shown = text(page)
        assert "http_status at step order: GET shop/orders answered 503" in shown
        assert page.text.index("/runs/run-failed-0001") < page.text.index("/runs/run-0000")
        assert f'href="{BASE}/runs?flow=wismo&amp;page=2"' in page.text  # filters kept
        second = await client.get(f"{BASE}/runs", params={"flow": "wismo", "page": "2"})
        assert "Page 2" in text(second) and "Newer" in text(second)
        assert f'href="{BASE}/runs?flow=wismo"' in second.text  # page 1 is the plain link


async def test_a_run_shows_its_steps_attempts_and_an_unknown_outcome_that_stands_out(shop_env):
    async with console_client(FakeStore([FAILED, UNKNOWN]), shop_env) as client:
        failed = text(await client.get(f"{BASE}/runs/run-failed-0001"))
        assert "Why it failed http_status at step order: GET shop/orders answered 503" in failed
        assert "order call http" in failed and "HTTP 503" in failed and "101 ms" in failed
        unknown = await client.get(f"{BASE}/runs/run-unknown-0001")
        assert 'class="alert unknown" role="alert"' in unknown.text
        assert "Outcome unknown at step cancel" in text(unknown)
        assert f'href="{BASE}/conversations/zc-42#turn-2"' in unknown.text  # its turn
        missing = await client.get(f"{BASE}/runs/nope")
        assert missing.status_code == 404 and "There is no run" in text(missing)


async def test_no_secret_reaches_a_page_even_one_a_record_holds(shop_env):
    leaky = run("run-leaky-0001", reply=f"key {CHANNEL_KEYS['ZIPCHAT_API_KEY']}",
                outputs={"token": CHANNEL_KEYS["ORDERS_API_KEY"]})  # fmt: skip
    async with console_client(FakeStore([leaky, FAILED]), shop_env) as client:
        pages = [await client.get(f"{BASE}{p}") for p in
                 ("/", "/flows/wismo", "/runs", "/runs/run-leaky-0001", "/chat", "/conversations")]  # fmt: skip
        assert all(p.status_code == 200 for p in pages)
        assert "***" in pages[3].text
        for secret in (*CHANNEL_KEYS.values(), PASSWORD, SIGNING_KEY):
            assert not any(secret in p.text for p in pages), secret


async def test_the_flows_page_lists_every_flow_with_its_last_run_and_last_failure(shop_env):
    async with console_client(FakeStore([FAILED]), shop_env) as client:
        page = text(await client.get(f"{BASE}/"))
        project = Project.load(SHIPPED, environ={**shop_env, **CHANNEL_KEYS})
        for name, plan in project.flows.items():
            assert name in page
            assert " ".join((plan.model.description or "").split()) in page
        assert "failed" in page and "GET shop/orders answered 503" in page
        assert "never ran" in page


async def test_a_flow_page_draws_the_same_mermaid_as_csflow_graph(shop_env):
    async with console_client(FakeStore([FAILED]), shop_env) as client:
        page = await client.get(f"{BASE}/flows/wismo")
        drawn = re.search(r'<pre class="mermaid" id="diagram"[^>]*>(.*?)</pre>', page.text, re.S)
        assert drawn is not None
        project = Project.load(SHIPPED, environ={**shop_env, **CHANNEL_KEYS})
        assert html.unescape(drawn.group(1)) == mermaid(project.flows["wismo"])
        assert "/static/vendor/mermaid-11.17.2.min.js" in page.text
        shown = text(page)
        assert "Inputs" in shown and "order_number" in shown and "tracking_url" in shown
        assert "All runs of wismo" in shown
        typo = await client.get(f"{BASE}/flows/wsimo")
        assert typo.status_code == 404 and "did you mean 'wismo'?" in text(typo)


async def test_empty_states_say_what_to_do(shop_env):
    async with console_client(FakeStore(), shop_env) as client:
        assert "No runs yet: try the test chat" in text(await client.get(f"{BASE}/runs"))
        assert "No runs yet: try the test chat" in text(await client.get(f"{BASE}/"))
        assert "No runs match these filters" in text(
            await client.get(f"{BASE}/runs", params={"status": "failed"})
        )
    async with console_client(None, shop_env) as client:
        assert "records no runs" in text(await client.get(f"{BASE}/runs"))
        assert "records no runs" in text(await client.get(f"{BASE}/conversations"))


async def test_conversations_are_transcripts_with_intent_runs_and_handoffs(shop_env):
    handed = Conversation(
        "zc-42", "handoff", "2026-11-20T14:00:00.000Z", "2026-11-20T14:02:00.000Z",
        flow="cancel_order", intent={"name": "cancel_order", "confidence": 0.91}, turns=2,
        handoff={"reason": "asked for a person", "note": "angry about a late parcel"},
    )  # fmt: skip
    turns = [
        Turn(1, "2026-11-20T14:00:00.000Z", "cancel my order", "waiting",
             reply="Which order?", run_id="run-unknown-0001", intent={"name": "cancel_order", "confidence": 0.91}),
        Turn(2, "2026-11-20T14:02:00.000Z", "a human please", "handoff",
             handoff={"reason": "asked for a person", "note": "angry about a late parcel"}),
    ]  # fmt: skip
    store = FakeStore([UNKNOWN], conversations={"zc-42": (handed, turns)})
    async with console_client(store, shop_env) as client:
        listed = text(await client.get(f"{BASE}/conversations"))
        assert (
            "zc-42" in listed and "cancel_order 91 %" in listed and "asked for a person" in listed
        )
        one = await client.get(f"{BASE}/conversations/zc-42")
        shown = text(one)
        assert (
            shown.index("cancel my order")
            < shown.index("Which order?")
            < shown.index("a human please")
        )
        assert "Handoff: asked for a person . angry about a late parcel" in shown
        assert f'href="{BASE}/runs/run-unknown-0001"' in one.text
        assert (await client.get(f"{BASE}/conversations/nope")).status_code == 404


def test_the_vendored_files_are_the_ones_vendor_md_names() -> None:
    vendor = STATIC / "vendor"
    listed = dict(
        re.findall(
            r"^\| `([^`]+)` \| `([0-9a-f]{64})` \|$", (vendor / "VENDOR.md").read_text(), re.M
        )
    )
    assert set(listed) == {p.name for p in vendor.iterdir() if p.name != "VENDOR.md"}
    for name, digest in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(
    "template", sorted(p.name for p in (STATIC.parent / "templates").iterdir())
)
def test_no_template_reaches_outside_the_server(template: str) -> None:
    source = (STATIC.parent / "templates" / template).read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", source), template


def test_the_style_sheet_and_script_fetch_nothing_either() -> None:
    for path in (STATIC / "console.css", STATIC / "console.js"):
        assert not re.search(r"https?://|@import|url\(", Path(path).read_text()), path
