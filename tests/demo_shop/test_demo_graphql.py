"""The GraphQL subscriptions API through gql's httpx transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, GraphQLRequest, gql
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportQueryError, TransportServerError
from gql.transport.httpx import HTTPXAsyncTransport
from graphql import GraphQLError

from csflow import demo
from csflow.demo import DemoShop

SDL = (Path(demo.__file__).parent / "subscriptions.graphql").read_text(encoding="utf-8")

CUSTOMER = gql("""
query Customer($email: String!, $status: SubscriptionStatus) {
  customer(email: $email) {
    id name email
    subscriptions(status: $status) {
      id status nextOrderDate pausedUntil cancelledAt cancelReason createdAt
      plan { id name price currency tier frequency { interval unit label } }
      items { sku quantity }
      lastCharge { id amount currency date refunded refundedAt }
    }
  }
}
""")
SUB = "{ id status nextOrderDate pausedUntil cancelledAt cancelReason plan { id tier } }"
CANCEL = gql(
    f"mutation($id: ID!, $reason: String) {{ cancelSubscription(id: $id, reason: $reason) {SUB} }}"
)
PAUSE = gql(
    f"mutation($id: ID!, $until: Date!) {{ pauseSubscription(id: $id, until: $until) {SUB} }}"
)
RESUME = gql(f"mutation($id: ID!) {{ resumeSubscription(id: $id) {SUB} }}")
CHANGE = gql("""
mutation($id: ID!, $plan: ID!) {
  changePlan(id: $id, planId: $plan) { id status plan { id tier } items { sku quantity } }
}
""")
REFUND = gql("""
mutation($id: ID!) {
  refundLastCharge(id: $id) {
    id amount currency createdAt charge { id refunded refundedAt } subscription { id }
  }
}
""")


async def open_session(s: DemoShop) -> AsyncIterator[AsyncClientSession]:
    transport = HTTPXAsyncTransport(url=s.graphql_url, headers={"X-API-Key": s.graphql_key})
    # The SDL doubles as the client's schema: queries are validated before they are sent.
    async with Client(transport=transport, schema=SDL) as session:
        yield session


@pytest.fixture
async def gq(shop: DemoShop) -> AsyncIterator[AsyncClientSession]:
    async for session in open_session(shop):
        yield session


@pytest.fixture
async def fresh_gq(fresh_shop: DemoShop) -> AsyncIterator[AsyncClientSession]:
    async for session in open_session(fresh_shop):
        yield session


async def failing(
    session: AsyncClientSession, query: GraphQLRequest, **variables: Any
) -> dict[str, Any]:
    """The single business error of a call, with the partial data next to it."""
    with pytest.raises(TransportQueryError) as caught:
        await session.execute(GraphQLRequest(query, variable_values=variables))
    assert caught.value.errors is not None
    (error,) = caught.value.errors
    return {"error": error, "data": caught.value.data}


def today() -> date:
    return datetime.now(UTC).date()


# -- HTTP and auth ----------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "nope"}])
def test_the_api_key_is_required(shop: DemoShop, headers: dict[str, str]) -> None:
    r = httpx.post(shop.graphql_url, json={"query": "{ plans { id } }"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"


async def test_gql_sees_a_wrong_key_as_an_http_401(shop: DemoShop) -> None:
    # The 401 body is a gateway's, not a GraphQL result: gql keeps the HTTP status.
    transport = HTTPXAsyncTransport(url=shop.graphql_url, headers={"X-API-Key": "nope"})
    with pytest.raises(TransportServerError) as caught:
        async with Client(transport=transport) as session:
            await session.execute(gql("{ plans { id } }"))
    assert caught.value.code == 401


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"[]", 400), (b'{"query": ""}', 400), (b'{"query": "{ nope }"}', 200)],
)
def test_malformed_requests(shop: DemoShop, body: bytes, status: int) -> None:
    headers = {"X-API-Key": shop.graphql_key, "Content-Type": "application/json"}
    r = httpx.post(shop.graphql_url, content=body, headers=headers)
    assert r.status_code == status
    assert r.json()["errors"][0]["message"]
    assert "data" not in r.json()


async def test_the_sdl_validates_queries_client_side(gq: AsyncClientSession) -> None:
    with pytest.raises(GraphQLError, match="Cannot query field 'price'"):
        await gq.execute(gql('{ customer(email: "a@b.c") { price } }'))


# -- queries ----------------------------------------------------------------------------


async def test_a_customer_with_their_subscriptions(gq: AsyncClientSession) -> None:
    r = await gq.execute(GraphQLRequest(CUSTOMER, variable_values={"email": "REPEAT@demo.shop"}))
    customer = r["customer"]
    assert customer["name"] == "Emma Wilson"
    subs = {s["id"]: s for s in customer["subscriptions"]}
    assert set(subs) == {"SUB-2005", "SUB-2006"}
    active, cancelled = subs["SUB-2005"], subs["SUB-2006"]
    assert active["status"] == "ACTIVE"
    assert date.fromisoformat(active["nextOrderDate"]) > today()
    assert active["plan"]["frequency"] == {"interval": 30, "unit": "DAY", "label": "every 30 days"}
    assert active["lastCharge"]["refunded"] is False
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["cancelReason"] == "Switching to a smaller box"
    assert cancelled["nextOrderDate"] is None
    assert cancelled["cancelledAt"].endswith("Z")


async def test_subscriptions_filter_by_status(gq: AsyncClientSession) -> None:
    r = await gq.execute(
        GraphQLRequest(CUSTOMER, variable_values={"email": "repeat@demo.shop", "status": "ACTIVE"})
    )
    assert [s["id"] for s in r["customer"]["subscriptions"]] == ["SUB-2005"]


async def test_unknown_customers_and_subscriptions_are_null(gq: AsyncClientSession) -> None:
    r = await gq.execute(GraphQLRequest(CUSTOMER, variable_values={"email": "nobody@demo.shop"}))
    assert r == {"customer": None}
    r = await gq.execute(gql('{ subscription(id: "SUB-9999") { id } }'))
    assert r == {"subscription": None}


async def test_order_customers_exist_without_subscriptions(gq: AsyncClientSession) -> None:
    r = await gq.execute(GraphQLRequest(CUSTOMER, variable_values={"email": "pending@demo.shop"}))
    assert r["customer"]["name"] == "Olivia Bennett"
    assert r["customer"]["subscriptions"] == []


async def test_subscription_by_id_and_the_seeded_states(gq: AsyncClientSession) -> None:
    query = gql("""
    query($id: ID!) {
      subscription(id: $id) { id status pausedUntil customer { email } lastCharge { refunded } }
    }
    """)
    seen = {}
    for sid in ("SUB-2001", "SUB-2002", "SUB-2003", "SUB-2004"):
        seen[sid] = (await gq.execute(GraphQLRequest(query, variable_values={"id": sid})))[
            "subscription"
        ]
    assert [s["status"] for s in seen.values()] == ["ACTIVE", "PAUSED", "CANCELLED", "ACTIVE"]
    assert seen["SUB-2001"]["customer"]["email"] == "active@demo.shop"
    assert date.fromisoformat(seen["SUB-2002"]["pausedUntil"]) > today()
    assert seen["SUB-2004"]["lastCharge"]["refunded"] is True


async def test_plans(gq: AsyncClientSession) -> None:
    r = await gq.execute(gql("{ plans { id name price currency tier items { sku quantity } } }"))
    assert [(p["id"], p["price"], p["tier"]) for p in r["plans"]] == [
        ("basic", 19.0, 1),
        ("standard", 29.0, 2),
        ("premium", 49.0, 3),
    ]
    assert {p["currency"] for p in r["plans"]} == {"USD"}


# -- mutations --------------------------------------------------------------------------


async def test_cancel_a_subscription_once(fresh_gq: AsyncClientSession) -> None:
    r = await fresh_gq.execute(
        GraphQLRequest(CANCEL, variable_values={"id": "SUB-2001", "reason": "Moving abroad"})
    )
    sub = r["cancelSubscription"]
    assert (sub["status"], sub["cancelReason"], sub["nextOrderDate"]) == (
        "CANCELLED",
        "Moving abroad",
        None,
    )
    assert sub["cancelledAt"].endswith("Z")
    again = await failing(fresh_gq, CANCEL, id="SUB-2001", reason="again")
    assert again["error"]["extensions"]["code"] == "ALREADY_CANCELLED"
    assert again["error"]["path"] == ["cancelSubscription"]
    assert again["data"] == {"cancelSubscription": None}


async def test_a_paused_subscription_can_be_cancelled(fresh_gq: AsyncClientSession) -> None:
    r = await fresh_gq.execute(GraphQLRequest(CANCEL, variable_values={"id": "SUB-2002"}))
    assert r["cancelSubscription"]["status"] == "CANCELLED"
    assert r["cancelSubscription"]["pausedUntil"] is None


async def test_pause_then_resume(fresh_gq: AsyncClientSession) -> None:
    until = (today() + timedelta(days=30)).isoformat()
    paused = await fresh_gq.execute(
        GraphQLRequest(PAUSE, variable_values={"id": "SUB-2001", "until": until})
    )
    assert paused["pauseSubscription"]["status"] == "PAUSED"
    assert paused["pauseSubscription"]["pausedUntil"] == until
    assert paused["pauseSubscription"]["nextOrderDate"] == until

    twice = await failing(fresh_gq, PAUSE, id="SUB-2001", until=until)
    assert twice["error"]["extensions"]["code"] == "NOT_ACTIVE"

    resumed = await fresh_gq.execute(GraphQLRequest(RESUME, variable_values={"id": "SUB-2001"}))
    sub = resumed["resumeSubscription"]
    assert (sub["status"], sub["pausedUntil"]) == ("ACTIVE", None)
    assert sub["nextOrderDate"] == (today() + timedelta(days=30)).isoformat()


@pytest.mark.parametrize(
    ("until_days", "code"), [(0, "INVALID_DATE"), (-3, "INVALID_DATE"), (91, "PAUSE_TOO_LONG")]
)
async def test_pause_dates_are_checked(gq: AsyncClientSession, until_days: int, code: str) -> None:
    until = (today() + timedelta(days=until_days)).isoformat()
    failed = await failing(gq, PAUSE, id="SUB-2001", until=until)
    assert failed["error"]["extensions"]["code"] == code


async def test_a_malformed_date_is_refused_before_running(gq: AsyncClientSession) -> None:
    failed = await failing(gq, PAUSE, id="SUB-2001", until="next tuesday")
    assert "Date" in failed["error"]["message"]
    literal = gql('mutation { pauseSubscription(id: "SUB-2001", until: "2020-13-45") { id } }')
    with pytest.raises(TransportQueryError, match="Date"):
        await gq.execute(literal)


async def test_resume_needs_a_paused_subscription(gq: AsyncClientSession) -> None:
    failed = await failing(gq, RESUME, id="SUB-2001")
    assert failed["error"]["extensions"]["code"] == "NOT_PAUSED"


async def test_change_plan_up_and_down(fresh_gq: AsyncClientSession) -> None:
    up = await fresh_gq.execute(
        GraphQLRequest(CHANGE, variable_values={"id": "SUB-2001", "plan": "premium"})
    )
    assert up["changePlan"]["plan"] == {"id": "premium", "tier": 3}
    assert {i["sku"] for i in up["changePlan"]["items"]} == {"COF-BNS-1KG", "COF-SGL-250"}
    down = await fresh_gq.execute(
        GraphQLRequest(CHANGE, variable_values={"id": "SUB-2001", "plan": "basic"})
    )
    assert down["changePlan"]["plan"] == {"id": "basic", "tier": 1}
    assert down["changePlan"]["items"] == [{"sku": "COF-BNS-1KG", "quantity": 1}]


@pytest.mark.parametrize(
    ("sid", "plan", "code"),
    [
        ("SUB-2001", "standard", "SAME_PLAN"),
        ("SUB-2001", "platinum", "UNKNOWN_PLAN"),
        ("SUB-2003", "basic", "ALREADY_CANCELLED"),
        ("SUB-9999", "basic", "NOT_FOUND"),
    ],
)
async def test_change_plan_refusals(gq: AsyncClientSession, sid: str, plan: str, code: str) -> None:
    failed = await failing(gq, CHANGE, id=sid, plan=plan)
    assert failed["error"]["extensions"]["code"] == code


async def test_the_last_charge_is_refunded_once_only(fresh_gq: AsyncClientSession) -> None:
    r = await fresh_gq.execute(GraphQLRequest(REFUND, variable_values={"id": "SUB-2001"}))
    refund = r["refundLastCharge"]
    assert (refund["amount"], refund["currency"]) == (29.0, "USD")
    assert refund["charge"]["id"] == "CH-5001"
    assert refund["charge"]["refunded"] is True
    assert refund["subscription"] == {"id": "SUB-2001"}

    again = await failing(fresh_gq, REFUND, id="SUB-2001")
    assert again["error"]["extensions"]["code"] == "ALREADY_REFUNDED"
    assert "already refunded" in again["error"]["message"]
    assert again["data"] == {"refundLastCharge": None}


async def test_the_seeded_refunded_charge_cannot_be_refunded(gq: AsyncClientSession) -> None:
    failed = await failing(gq, REFUND, id="SUB-2004")
    assert failed["error"]["extensions"]["code"] == "ALREADY_REFUNDED"
