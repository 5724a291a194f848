"""One call's view of the connections: a custom action's ``ctx.http`` writes are counted, and
a dry run keeps them back with a stand-in answer, never an exception through the action."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from unit_support import ProjectFiles, answer

CONNECTIONS = """
shop:
  type: rest
  base_url: https://shop.example.com/api
  timeout: 2s
"""

ACTIONS = {
    "notes": """
    from typing import Any

    from csflow import action


    @action("shop.add_note")
    async def add_note(order: str, *, ctx: Any) -> dict[str, Any]:
        client = ctx.http("shop")
        seen = await client.get(f"/orders/{order}")
        made = await client.post(f"/orders/{order}/notes", json={"note": "called"})
        return {"before": seen.json()["notes"], "status": made.status_code}
    """,
}

FLOWS = {
    "note": """
    name: note
    inputs:
      order: string
    steps:
      - id: add
        call: shop.add_note
        with: {order: "{{ order }}"}
        retry: {attempts: 3, backoff: 10ms, on: [timeout, action]}
    """,
}


@pytest.fixture
def project(tmp_path: Path) -> Any:
    ProjectFiles(tmp_path).write(flows=FLOWS, connections=CONNECTIONS, actions=ACTIONS)
    return ProjectFiles(tmp_path).load()


def _shop(lose_the_write: bool = False) -> Any:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"notes": 2})
        if lose_the_write:
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(201, json={"id": "n1"})

    return handle


def test_a_custom_action_s_write_is_done(project: Any) -> None:
    seen = answer(project, _shop())
    result = project.run_sync("note", {"order": "ORD-1"})
    assert result.status == "completed", result.error
    (step,) = result.steps
    assert step.outcome == "done"
    assert [r.method for r in seen] == ["GET", "POST"]


def test_a_custom_action_s_lost_write_is_unknown_and_not_retried(project: Any) -> None:
    seen = answer(project, _shop(lose_the_write=True))
    result = project.run_sync("note", {"order": "ORD-1"})
    assert result.status == "failed"
    (step,) = result.steps
    assert step.outcome == "unknown"
    assert step.attempts == 1  # no idempotency_key: a retry could add the note twice
    assert [r.method for r in seen] == ["GET", "POST"]


def test_a_dry_run_keeps_a_custom_action_s_write_back(project: Any) -> None:
    seen = answer(project, _shop())
    result = project.run_sync("note", {"order": "ORD-1"}, dry_run=True)
    assert result.status == "completed", result.error
    (step,) = result.steps
    assert [r.method for r in seen] == ["GET"]  # the read went out, the write did not
    assert step.dry_run is not None
    assert step.dry_run["method"] == "POST"
    assert step.dry_run["url"] == "https://shop.example.com/api/orders/ORD-1/notes"
    assert step.dry_run["body"] == '{"note":"called"}'
    assert step.outcome is None and step.attempts == 1


def test_a_cookie_one_run_gets_never_goes_out_on_the_next(project: Any) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        headers = {"Set-Cookie": "session=customer-one; Path=/"}
        return httpx.Response(200, json={"notes": 0}, headers=headers)

    seen = answer(project, handle)

    async def twice() -> None:
        try:
            await project.run("note", {"order": "ORD-1"}, dry_run=True)
            await project.run("note", {"order": "ORD-2"}, dry_run=True)
        finally:
            await project.aclose()

    asyncio.run(twice())
    assert [r.url.path for r in seen] == ["/api/orders/ORD-1", "/api/orders/ORD-2"]
    assert all("cookie" not in r.headers for r in seen)
