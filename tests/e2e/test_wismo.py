"""WISMO and find_order end to end: real loopback HTTP against Demo Shop's REST API."""

from __future__ import annotations

import httpx
import pytest

from csflow import UsageError


def step(result, step_id):
    return next(s for s in result.steps if s.id == step_id)


CASES = [
    # inputs, status, reply must contain, path must include
    (
        {"email": "pending@demo.shop"},
        "pending",
        "waiting to be processed",
        ["find.by_email", "pending"],
    ),
    (
        {"email": "processing@demo.shop"},
        "processing",
        "being prepared",
        ["find.by_email", "processing"],
    ),
    ({"order_number": "ORD-1003"}, "shipped", "1Z999AA10123456784", ["find.by_number", "shipped"]),
    (
        {"email": "partial@demo.shop"},
        "shipped",
        "will follow in a separate parcel",
        ["partly_shipped"],
    ),
    ({"phone": "(212) 555-0147"}, "delivered", "was delivered", ["find.by_phone", "delivered"]),
    ({"email": "cancelled@demo.shop"}, "cancelled", "was cancelled", ["cancelled"]),
]


@pytest.mark.parametrize(
    ("inputs", "status", "words", "path"),
    CASES,
    ids=[c[1] + ":" + next(iter(c[0].values())) for c in CASES],
)
async def test_wismo_answers_each_status(shipped, inputs, status, words, path):
    result = await shipped.run("wismo", inputs)
    assert result.status == "completed", result.error
    assert result.outputs["found"] is True
    assert result.outputs["order_status"] == status
    assert words in result.reply
    for step in path:
        assert step in result.path
    call = next(s for s in result.steps if s.verb == "call")
    assert call.status == 200 and call.ok


async def test_shipped_reply_carries_tracking_from_the_merchant(shipped, demo_shop):
    result = await shipped.run("wismo", {"email": "shipped@demo.shop"})
    order = httpx.get(
        f"{demo_shop.rest_url}/orders/{result.outputs['order_number']}",
        headers={"Authorization": f"Bearer {demo_shop.token}"},
    ).json()
    shipment = [s for s in order["shipments"] if s["tracking_number"]][-1]
    assert result.outputs["tracking_number"] == shipment["tracking_number"]
    assert shipment["tracking_url"] in result.reply
    assert result.outputs["carrier"] == shipment["carrier"]


async def test_most_recent_order_wins_for_a_repeat_customer(shipped, demo_shop):
    orders = httpx.get(
        f"{demo_shop.rest_url}/orders",
        params={"email": "repeat@demo.shop"},
        headers={"Authorization": f"Bearer {demo_shop.token}"},
    ).json()
    newest = max(orders, key=lambda o: o["created_at"])
    result = await shipped.run("find_order", {"email": "REPEAT@demo.shop "})
    assert len(orders) > 1
    assert result.outputs["order_number"] == newest["number"]


async def test_partly_shipped_counts_what_is_still_to_come(shipped):
    result = await shipped.run("find_order", {"email": "partial@demo.shop"})
    assert result.outputs["unshipped_items"] > 0
    assert all(p["tracking_number"] for p in result.outputs["parcels"])


async def test_unknown_order_is_not_found(shipped):
    result = await shipped.run("wismo", {"order_number": "ORD-4242"})
    assert result.status == "completed"
    assert result.outputs["found"] is False
    assert "couldn't find" in result.reply
    assert step(result, "find.by_number").status == 404


async def test_an_order_is_not_shown_to_another_customers_email(shipped):
    result = await shipped.run("wismo", {"order_number": "ORD-1003", "email": "pending@demo.shop"})
    assert result.outputs["found"] is False
    assert "1Z999" not in (result.reply or "")


async def test_api_down_fails_with_a_friendly_reply(shipped, demo_shop):
    admin = {"Authorization": f"Bearer {demo_shop.token}"}
    httpx.post(
        f"{demo_shop.base_url}/_admin/outage", json={"on": True}, headers=admin
    ).raise_for_status()
    try:
        result = await shipped.run("wismo", {"email": "shipped@demo.shop"})
    finally:
        httpx.post(f"{demo_shop.base_url}/_admin/outage", json={"on": False}, headers=admin)
    assert result.status == "failed"
    assert result.error["kind"] == "flow_failed"
    assert "503" in result.error["message"]
    assert "can't reach our order system" in result.reply
    call = next(s for s in result.steps if s.verb == "call")
    assert call.status == 503 and call.attempts == 2  # the connection retries 503 once


async def test_wrong_token_is_an_auth_error(shop_env, shipped_copy):
    from csflow import Project

    project_dir = shipped_copy
    (project_dir / "secrets" / "demo-shop.token").write_text("wrong-token-123\n")
    project = Project.load(project_dir, environ=shop_env)
    result = await project.run("find_order", {"email": "shipped@demo.shop"})
    await project.aclose()
    assert result.status == "failed"
    assert step(result, "by_email").error["kind"] == "auth"
    assert step(result, "by_email").status == 401
    assert "wrong-token-123" not in result.to_json()


async def test_unknown_input_is_a_usage_error_and_nothing_runs(shipped):
    with pytest.raises(UsageError, match="unknown input 'emial' \\(did you mean 'email'\\?\\)"):
        await shipped.run("wismo", {"emial": "x@demo.shop"})


async def test_deadline_cuts_a_slow_merchant(shipped, demo_shop):
    import time

    admin = {"Authorization": f"Bearer {demo_shop.token}"}
    r = httpx.post(f"{demo_shop.base_url}/_admin/delay", json={"ms": 5000}, headers=admin)
    r.raise_for_status()
    try:
        started = time.monotonic()
        result = await shipped.run("wismo", {"email": "shipped@demo.shop"}, deadline=1.0)
        elapsed = time.monotonic() - started
    finally:
        httpx.post(f"{demo_shop.base_url}/_admin/delay", json={"ms": 0}, headers=admin)
    assert result.status == "failed"
    assert result.error["kind"] == "deadline"
    assert elapsed < 1.5
