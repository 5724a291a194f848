"""Coffield.io's order status connector (seed 003), as Coffield.io calls it.

Coffield POSTs ``{kind, reference, context, tenant_id}``, signs the raw body
(``X-Coffield-Signature: sha256=<hex>``), stamps it (``X-Coffield-Timestamp``), and waits 8 s
(configurable). It expects ``{ok: true, status, summary, details}`` or
``{ok: false, error_code, message}`` with error_code one of not_found, unauthorized,
invalid_reference, receiver_error.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from channels_support import (
    KEYS,
    LOOKUP_FLOW,
    PATIENT_SHOP,
    ShopAdmin,
    coffield_request,
    serving,
    sign,
    write,
)

SECRET = KEYS["COFFIELD_SECRET"]
ERROR_CODES = {"not_found", "unauthorized", "invalid_reference", "receiver_error"}


def post(client: httpx.Client, body: bytes, headers: dict[str, str], timeout: float = 8.0):
    return client.post("/coffield/lookup", content=body, headers=headers, timeout=timeout)


def assert_failure(r: httpx.Response, code: str) -> dict:
    body = r.json()
    assert body["ok"] is False and body["error_code"] == code
    assert set(body) <= {"ok", "error_code", "message"}
    return body


def test_a_found_order_is_ok_with_status_summary_and_details(server):
    body, headers = coffield_request("ORD-1003", context={"email": "shipped@demo.shop"})
    r = post(server, body, headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    answer = r.json()
    assert answer["ok"] is True and answer["status"] == "shipped"
    assert "ORD-1003" in answer["summary"]
    assert answer["details"] == {"carrier": "UPS", "tracking": "1Z999AA10123456784"}


def test_context_is_optional(server):
    body, headers = coffield_request("ORD-1005")
    r = post(server, body, headers)
    assert r.json()["ok"] is True and r.json()["status"] == "delivered"


def test_unknown_reference_is_not_found_with_a_message(server):
    body, headers = coffield_request("ORD-4242")
    r = post(server, body, headers)
    assert r.status_code == 200
    assert "couldn't find" in assert_failure(r, "not_found")["message"]


@pytest.mark.parametrize(
    "tamper",
    [
        "no signature",
        "wrong secret",
        "signature of another body",
        "no sha256= prefix",
        "stale timestamp",
        "timestamp from the future",
        "no timestamp",
        "not a timestamp",
        "tenant header differs from the signed body",
    ],
)
def test_an_unproven_request_is_unauthorized(server, tamper):
    body, headers = coffield_request("ORD-1003", context={"email": "shipped@demo.shop"})
    if tamper == "no signature":
        del headers["X-Coffield-Signature"]
    elif tamper == "wrong secret":
        headers["X-Coffield-Signature"] = sign("not-the-secret", body)
    elif tamper == "signature of another body":
        body = body.replace(b"ORD-1003", b"ORD-1005")
    elif tamper == "no sha256= prefix":
        headers["X-Coffield-Signature"] = headers["X-Coffield-Signature"].removeprefix("sha256=")
    elif tamper == "stale timestamp":
        headers["X-Coffield-Timestamp"] = str(int(time.time()) - 301)
    elif tamper == "timestamp from the future":
        headers["X-Coffield-Timestamp"] = str(int(time.time()) + 3600)
    elif tamper == "no timestamp":
        del headers["X-Coffield-Timestamp"]
    elif tamper == "not a timestamp":
        headers["X-Coffield-Timestamp"] = "yesterday"
    elif tamper == "tenant header differs from the signed body":
        headers["X-Coffield-Tenant-Id"] = "43"
    r = post(server, body, headers)
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error_code": "unauthorized"}


def test_a_timestamp_inside_max_age_is_accepted(server):
    body, headers = coffield_request("ORD-1003", timestamp=time.time() - 290)
    assert post(server, body, headers).json()["ok"] is True


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"kind": "project", "reference": "P-1", "tenant_id": 42}, "project"),
        ({"kind": "order", "reference": "", "tenant_id": 42}, "reference"),
        ({"kind": "order", "tenant_id": 42}, "reference"),
        (
            {"kind": "order", "reference": "ORD-1", "context": {"email": "nope"}, "tenant_id": 42},
            "email",
        ),
    ],
)
def test_a_reference_that_cannot_be_looked_up_is_invalid_reference(server, payload, words):
    body = json.dumps(payload).encode()
    _, headers = coffield_request("x")
    headers["X-Coffield-Signature"] = sign(SECRET, body)
    r = post(server, body, headers)
    assert r.status_code == 200
    assert words in assert_failure(r, "invalid_reference")["message"]


def test_a_signed_body_that_is_not_json_is_invalid_reference(server):
    body = b"{not json"
    _, headers = coffield_request("x")
    headers["X-Coffield-Signature"] = sign(SECRET, body)
    assert_failure(post(server, body, headers), "invalid_reference")


def test_a_body_over_64_kib_is_refused_with_413(server):
    body, headers = coffield_request("ORD-1003", context={"note": "x" * 70_000})
    r = post(server, body, headers)
    assert r.status_code == 413
    assert_failure(r, "invalid_reference")


def test_a_streamed_body_over_64_kib_without_length_is_refused(server):
    body, headers = coffield_request("ORD-1003", context={"note": "x" * 70_000})

    def chunks() -> Iterator[bytes]:  # chunked: no Content-Length to trust
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    r = server.post("/coffield/lookup", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert r.status_code == 413


def test_order_api_down_is_receiver_error(server, shop):
    # A reference no other test of this server signs: the same signed body twice is a replay.
    body, headers = coffield_request("ORD-1004")
    with ShopAdmin(shop).down():
        r = post(server, body, headers)
    assert r.status_code == 503
    assert_failure(r, "receiver_error")


def test_a_slow_merchant_gets_receiver_error_within_the_channel_timeout(shop, tmp_path):
    project = write(
        tmp_path,
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "channels.yaml": """
                coffield:
                  type: coffield
                  path: /coffield/lookup
                  signing_secret: {env: COFFIELD_SECRET}
                  timeout: 1s
                  kinds:
                    order: {flow: lookup, inputs: {order_number: "{{ request.reference }}"}}
                  found: "{{ outputs.found }}"
            """,
        },
    )
    body, headers = coffield_request("ORD-1003")
    with serving(project, {**shop.env(), **KEYS}) as client, ShopAdmin(shop).slow(1_200):
        started = time.perf_counter()
        r = post(client, body, headers)
        elapsed = time.perf_counter() - started
    assert r.status_code == 503
    assert_failure(r, "receiver_error")
    assert 0.4 < elapsed < 1.0
