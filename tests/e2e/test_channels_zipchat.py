"""Zipchat's custom order-tracking API (seed 001), as Zipchat calls it.

Zipchat sends ``GET <endpoint>?order_id=..&customer_email=..`` with the key in ``x-api-key``
and waits 5 s. It expects 200 ``{context, tracking_url}``, 404 ``{context}``, 401 with no body,
all ``application/json``; past 5 s its agent says it could not check the order.
"""

from __future__ import annotations

import logging
import time

import httpx
import pytest
from channels_support import (
    KEYS,
    LOOKUP_FLOW,
    PATIENT_SHOP,
    ShopAdmin,
    serving,
    wait_for_access_lines,
    write,
)

KEY = KEYS["ZIPCHAT_API_KEY"]
ZIPCHAT_TIMEOUT = 5.0  # seed 001: "All requests have a 5 second timeout rule"


def zipchat(client: httpx.Client, order_id: str | None, email: str | None, key: str | None = KEY):
    params = {k: v for k, v in (("order_id", order_id), ("customer_email", email)) if v is not None}
    headers = {"x-api-key": key} if key is not None else {}
    return client.get("/zipchat/order", params=params, headers=headers, timeout=ZIPCHAT_TIMEOUT)


def test_found_order_answers_context_and_tracking_url(server, shop):
    r = zipchat(server, "ORD-1003", "shipped@demo.shop")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"context", "tracking_url"}
    assert "ORD-1003" in body["context"] and "1Z999AA10123456784" in body["context"]
    assert body["tracking_url"] == "https://www.ups.com/track?tracknum=1Z999AA10123456784"


def test_an_order_number_typed_with_a_hash_is_found(server):
    r = zipchat(server, "#ORD-1003", "shipped@demo.shop")
    assert r.status_code == 200 and "ORD-1003" in r.json()["context"]


def test_order_without_tracking_has_a_null_tracking_url(server):
    r = zipchat(server, "ORD-1001", "pending@demo.shop")
    assert r.status_code == 200
    assert r.json()["tracking_url"] is None
    assert "ORD-1001" in r.json()["context"]


def test_not_found_is_404_with_a_context(server):
    r = zipchat(server, "ORD-4242", "shipped@demo.shop")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert set(r.json()) == {"context"}
    assert "couldn't find an order" in r.json()["context"]


def test_another_customers_email_is_not_found(server):
    r = zipchat(server, "ORD-1003", "pending@demo.shop")
    assert r.status_code == 404


@pytest.mark.parametrize("key", [None, "", "wrong-key", KEY + "x", KEY[:-1]])
def test_missing_or_wrong_key_is_401_without_a_body(server, key):
    r = zipchat(server, "ORD-1003", "shipped@demo.shop", key=key)
    assert r.status_code == 401
    assert r.content == b""


def test_a_key_in_the_query_string_is_not_a_key(server):
    r = server.get(
        "/zipchat/order",
        params={"order_id": "ORD-1003", "customer_email": "shipped@demo.shop", "x-api-key": KEY},
    )
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("order_id", "email", "named"),
    [
        (None, "shipped@demo.shop", "order_id"),
        ("ORD-1003", None, "customer_email"),
        ("  ", "shipped@demo.shop", "order_id"),
    ],
)
def test_missing_parameter_is_400_naming_it(server, order_id, email, named):
    r = zipchat(server, order_id, email)
    assert r.status_code == 400
    assert named in r.json()["context"]


def test_an_email_the_flow_refuses_is_400_saying_why(server):
    r = zipchat(server, "ORD-1003", "not-an-email")
    assert r.status_code == 400
    assert "email" in r.json()["context"]


def test_order_api_down_is_503_saying_it_could_not_check(server, shop):
    with ShopAdmin(shop).down():
        r = zipchat(server, "ORD-1003", "shipped@demo.shop")
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/json"
    assert "could not be checked right now" in r.json()["context"]


def test_a_hanging_merchant_gets_an_answer_within_zipchats_5_seconds(shop, tmp_path):
    # A connection that would wait 30 s for a shop that takes 4.8: only the channel's deadline
    # stands between Zipchat and a wait. The answer must come before Zipchat gives up.
    project = write(
        tmp_path,
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "channels.yaml": """
                zipchat:
                  type: zipchat
                  path: /zipchat/order
                  api_key: {env: ZIPCHAT_API_KEY}
                  flow: lookup
                  inputs: {order_number: "{{ request.order_id }}"}
                  found: "{{ outputs.found }}"
                  unavailable: "Order {{ request.order_id }} could not be checked right now."
            """,
        },
    )
    with serving(project, {**shop.env(), **KEYS}) as client, ShopAdmin(shop).slow(4_800):
        started = time.perf_counter()
        r = zipchat(client, "ORD-1003", "shipped@demo.shop")
        elapsed = time.perf_counter() - started
    assert r.status_code == 503
    assert r.json() == {"context": "Order ORD-1003 could not be checked right now."}
    assert 3.5 < elapsed < ZIPCHAT_TIMEOUT


def test_the_log_has_no_key_no_query_and_is_json(server, caplog):
    with caplog.at_level(logging.INFO, logger="csflow"):
        zipchat(server, "ORD-1003", "shipped@demo.shop")
        zipchat(server, "ORD-1003", "shipped@demo.shop", key="a-wrong-key-9999")
        lines = wait_for_access_lines(caplog, 2)
    access = [line for line in lines if line["logger"] == "csflow.access"]
    assert [line["status"] for line in access] == [200, 401]
    assert access[0]["flow"] == "wismo" and access[0]["outcome"] == "found"
    assert access[1]["outcome"] == "unauthorized" and "flow" not in access[1]
    text = caplog.text + repr(lines)
    for secret in (KEY, "a-wrong-key-9999", "shipped@demo.shop", "order_id=", "?"):
        assert secret not in text
