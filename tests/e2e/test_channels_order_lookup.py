"""The custom order-tracking endpoint of seed 000, as its platform calls it.

The platform filters by at least one of email, order_id, phone (its last 7 digits, non-digits
removed) and ref_id, and always gets an array of orders in the seed's suggested schema.
"""

from __future__ import annotations

import time

import httpx
import pytest
from channels_support import KEYS, PATIENT_SHOP, ShopAdmin, serving, write
from support import SHIPPED

KEY = KEYS["ORDERS_API_KEY"]
STATUSES = {"pending", "processing", "shipped", "delivered", "cancelled"}


def lookup(client: httpx.Client, key: str | None = KEY, **params: str) -> httpx.Response:
    headers = {"x-api-key": key} if key is not None else {}
    return client.get("/orders", params=params, headers=headers)


def assert_order_schema(order: dict) -> None:
    """The seed's TypeScript ``Order``: required fields present and typed, status in its set."""
    assert isinstance(order["id"], str) and order["status"] in STATUSES
    assert isinstance(order["created_at"], str) and order["created_at"].endswith("Z")
    assert isinstance(order["customer"]["email"], str)
    assert order["items"], "at least one product item"
    for item in order["items"]:
        assert isinstance(item["sku"], str) and isinstance(item["name"], str)
        assert isinstance(item["quantity"], int) and isinstance(item["price"], int | float)
    assert isinstance(order["total"], int | float) and isinstance(order["currency"], str)
    address = order.get("shipping_address")
    if address is not None:
        assert {"line1", "city", "postal_code", "country"} <= set(address)


def test_every_seeded_status_is_mapped_into_the_schema(server):
    seen = {}
    for n in range(1001, 1013):
        r = lookup(server, order_id=f"ORD-{n}")
        assert r.status_code == 200
        orders = r.json()
        assert isinstance(orders, list) and len(orders) == 1
        assert_order_schema(orders[0])
        seen[orders[0]["id"]] = orders[0]["status"]
    assert seen["ORD-1001"] == "pending" and seen["ORD-1002"] == "processing"
    assert seen["ORD-1003"] == "shipped" and seen["ORD-1005"] == "delivered"
    assert seen["ORD-1007"] == "cancelled"


def test_an_email_returns_all_of_its_orders(server):
    orders = lookup(server, email="repeat@demo.shop").json()
    assert [o["id"] for o in orders] == ["ORD-1009", "ORD-1010", "ORD-1011"]
    assert orders[-1]["tracking_number"] == "CE123456789IE"
    assert all(o["customer"]["email"] == "repeat@demo.shop" for o in orders)


@pytest.mark.parametrize(
    "phone", ["+1 (415) 867-5309", "4158675309", "867-5309", "001 415 867 5309"]
)
def test_a_phone_matches_on_its_last_7_digits(server, phone):
    orders = lookup(server, phone=phone).json()
    assert [o["id"] for o in orders] == ["ORD-1001"]


def test_fewer_than_7_digits_match_nothing(server):
    r = lookup(server, phone="53-09")
    assert r.status_code == 200 and r.json() == []


def test_ref_id_and_fields_of_the_suggested_schema(server):
    (order,) = lookup(server, ref_id="SF-88003").json()
    assert order["id"] == "ORD-1003" and order["external_ref_id"] == "SF-88003"
    assert order["tracking_number"] == "1Z999AA10123456784"
    assert order["shipping_address"]["city"] == "San Francisco"


def test_filters_together_must_all_match(server):
    assert (
        lookup(server, email="pending@demo.shop", order_id="ORD-1001").json()[0]["id"] == "ORD-1001"
    )
    assert lookup(server, email="pending@demo.shop", order_id="ORD-1003").json() == []


def test_no_match_is_an_empty_array(server):
    r = lookup(server, email="nobody@example.com")
    assert r.status_code == 200 and r.json() == []


@pytest.mark.parametrize("params", [{}, {"email": ""}, {"customer": "jane@example.com"}])
def test_no_parameter_is_400(server, params):
    r = lookup(server, **params)
    assert r.status_code == 400
    assert r.json()["error"] == "missing_parameter"
    assert "email, order_id, phone, ref_id" in r.json()["message"]


@pytest.mark.parametrize("key", [None, "wrong", KEY.upper()])
def test_a_missing_or_wrong_key_is_401(server, key):
    r = lookup(server, key=key, email="pending@demo.shop")
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_a_bearer_key_is_accepted(server):
    r = server.get(
        "/orders", params={"order_id": "ORD-1002"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert r.status_code == 200 and r.json()[0]["id"] == "ORD-1002"


def test_order_api_down_is_503(server, shop):
    with ShopAdmin(shop).down():
        r = lookup(server, email="pending@demo.shop")
    assert r.status_code == 503 and r.json()["error"] == "unavailable"


def test_a_body_over_64_kib_is_refused(server):
    r = server.request(
        "GET",
        "/orders",
        params={"email": "pending@demo.shop"},
        headers={"x-api-key": KEY},
        content=b"x" * (64 * 1024 + 1),
    )
    assert r.status_code == 413


def test_a_slow_merchant_gets_503_within_the_channel_timeout(shop, tmp_path):
    project = write(
        tmp_path,
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/list_orders.yaml": (SHIPPED / "flows" / "list_orders.yaml").read_text(),
            "channels.yaml": """
                orders:
                  type: order_lookup
                  path: /orders
                  api_key: {env: ORDERS_API_KEY}
                  flow: list_orders
                  timeout: 1s
            """,
        },
    )
    with serving(project, {**shop.env(), **KEYS}) as client, ShopAdmin(shop).slow(1_200):
        started = time.perf_counter()
        r = lookup(client, email="pending@demo.shop")
        elapsed = time.perf_counter() - started
    assert r.status_code == 503
    assert 0.4 < elapsed < 1.0
