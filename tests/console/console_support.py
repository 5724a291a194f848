"""Helpers of the console's tests: its sign-in, a store to read from, a console in-process.

The in-process console is the real Starlette app of a real ``console`` entry, mounted the way
``csflow serve`` mounts it, over the shipped project. Its store is a real one
(``SQLiteStore``) where a test needs the engine to have written it, or a small fake that
holds exactly the records a test wants and remembers what it was asked.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from support import SHIPPED

from csflow.engine.store import RunRecord
from csflow.engine.store.conversations import Conversation, Turn
from csflow.serve.app import create_app

USER = "ops"
PASSWORD = "test-console-password-0001"
SIGNING_KEY = "test-console-signing-key-0123456789abcdef"
CHANNEL_KEYS = {
    "CSFLOW_API_KEY": "test-generic-key-0001",
    "ZIPCHAT_API_KEY": "test-zipchat-key-0001",
    "COFFIELD_SECRET": "test-coffield-secret-0001",
    "ORDERS_API_KEY": "test-orders-key-0001",
    "CONSOLE_OPS_PASSWORD": PASSWORD,
    "CSFLOW_CONSOLE_KEY": SIGNING_KEY,
}
BASE = "/console"


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, f"no CSRF token in the page:\n{html[:2000]}"
    return found.group(1)


def run(run_id: str, flow: str = "wismo", status: str = "completed", **more: Any) -> RunRecord:
    return RunRecord(
        id=run_id,
        flow=flow,
        status=status,
        started_at=more.pop("at", "2026-11-20T14:03:07.123Z"),
        **more,
    )


@dataclass
class FakeStore:
    """A run store's reading half, holding what it is given; ``asked`` is every ``list_runs``
    call. Its conversations are listed in the order given (a real store's is newest first)."""

    runs: list[RunRecord] = field(default_factory=list)
    asked: list[dict[str, Any]] = field(default_factory=list)
    conversations: dict[str, tuple[Conversation, list[Turn]]] = field(default_factory=dict)

    async def begin(self, record: RunRecord) -> None:
        raise AssertionError("the console writes nothing")

    def finish(self, record: RunRecord) -> Any:
        raise AssertionError("the console writes nothing")

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass

    def list_runs(self, **asked: Any) -> list[RunRecord]:
        self.asked.append(asked)
        found = [
            r
            for r in self.runs
            if asked.get("flow") in (None, r.flow)
            and asked.get("status") in (None, r.status)
            and (asked.get("since") is None or r.started_at >= asked["since"])
            and (asked.get("until") is None or r.started_at <= asked["until"])
            and asked.get("conversation_id") in (None, r.conversation_id)
        ]
        offset = asked.get("offset", 0)
        return found[offset : offset + asked.get("limit", 20)]

    def last_failures(self) -> dict[str, RunRecord]:
        out: dict[str, RunRecord] = {}
        for r in self.runs:
            if r.status == "failed":
                out.setdefault(r.flow, r)
        return out

    def get_run(self, run_id: str) -> RunRecord | None:
        return next((r for r in self.runs if r.id == run_id), None)

    def list_conversations(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        found = [c for c, _ in self.conversations.values() if status in (None, c.status)]
        return found[offset : offset + limit]

    def get_conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        return self.conversations.get(conversation_id)


@asynccontextmanager
async def console_client(
    store: Any, env: Mapping[str, str], *, signed_in: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The shipped project's console over ``store``, answering in-process; signed in as ops."""
    app = create_app(SHIPPED, {**env, **CHANNEL_KEYS}, store=store)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        if signed_in:
            await sign_in(client)
        try:
            yield client
        finally:
            await app.channels.aclose()


async def sign_in(
    client: httpx.AsyncClient, user: str = USER, password: str = PASSWORD, next: str = ""
) -> httpx.Response:
    page = await client.get(f"{BASE}/login")
    form = {"csrf": csrf_of(page.text), "user": user, "password": password, "next": next}
    return await client.post(f"{BASE}/login", data=form)
