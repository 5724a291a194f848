"""The REST API under /api, over loopback HTTP."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from csflow.demo import DemoShop


def numbers(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [o["number"] for o in response.json()]


def parse_ts(value: str) -> datetime:
    assert value.endswith("Z")
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic ZGVtbzpkZW1v"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
def test_requests_without_the_token_get_401_json(shop: DemoShop, headers: dict[str, str]) -> None:
    r = httpx.get(f"{shop.rest_url}/orders", params={"email": "shipped@demo.shop"}, headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_the_bearer_scheme_is_case_insensitive(shop: DemoShop) -> None:
    r = httpx.get(
        f"{shop.rest_url}/orders/ORD-1001", headers={"Authorization": f"bearer {shop.token}"}
    )
    assert r.status_code == 200
    assert r.json()["number"] == "ORD-1001"


# -- searching --------------------------------------------------------------------------


def test_search_by_email_is_case_insensitive(api: httpx.Client) -> None:
    assert numbers(api.get("/orders", params={"email": "  Shipped@Demo.SHOP "})) == ["ORD-1003"]


def test_a_customer_with_several_orders_gets_all_oldest_first(api: httpx.Client) -> None:
    r = api.get("/orders", params={"email": "repeat@demo.shop"})
    assert numbers(r) == ["ORD-1009", "ORD-1010", "ORD-1011"]
    latest = max(r.json(), key=lambda o: o["created_at"])
    assert latest["number"] == "ORD-1011"  # "most recent" is the last one, not the first


def test_unknown_email_and_customers_without_orders_get_an_empty_array(api: httpx.Client) -> None:
    assert api.get("/orders", params={"email": "nobody@demo.shop"}).json() == []
    assert api.get("/orders", params={"email": "active@demo.shop"}).json() == []


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+1 (415) 867-5309", ["ORD-1001"]),
        ("8675309", ["ORD-1001"]),
        ("415.867.5309", ["ORD-1001"]),
        ("+49 151 2345 6789", ["ORD-1002"]),
        ("0151-23456789", ["ORD-1002"]),
        ("4151234567", ["ORD-1003"]),
        ("+1 415 123 4567", ["ORD-1003"]),
        # Emma typed her phone two ways; both forms find all three orders.
        ("+353 86 555 0123", ["ORD-1009", "ORD-1010", "ORD-1011"]),
        ("086 555 0123", ["ORD-1009", "ORD-1010", "ORD-1011"]),
        ("555-0000", []),
        ("12345", []),  # fewer than 7 digits cannot match anything
    ],
)
def test_phone_matches_on_the_last_7_digits(
    api: httpx.Client, phone: str, expected: list[str]
) -> None:
    assert numbers(api.get("/orders", params={"phone": phone})) == expected


def test_search_by_ref_number_and_their_aliases(api: httpx.Client) -> None:
    assert numbers(api.get("/orders", params={"ref": "SF-88003"})) == ["ORD-1003"]
    assert numbers(api.get("/orders", params={"ref_id": "sf-88005"})) == ["ORD-1005"]
    assert numbers(api.get("/orders", params={"number": "ord-1004"})) == ["ORD-1004"]
    assert numbers(api.get("/orders", params={"order_id": "ORD-1012"})) == ["ORD-1012"]
    assert numbers(api.get("/orders", params={"number": "ORD-9999"})) == []


def test_filters_combine_with_and(api: httpx.Client) -> None:
    both = {"email": "repeat@demo.shop", "number": "ORD-1010"}
    assert numbers(api.get("/orders", params=both)) == ["ORD-1010"]
    mismatch = {"email": "repeat@demo.shop", "number": "ORD-1003"}
    assert numbers(api.get("/orders", params=mismatch)) == []
    phone_and_ref = {"phone": "086 555 0123", "ref": "SF-88009"}
    assert numbers(api.get("/orders", params=phone_and_ref)) == ["ORD-1009"]


@pytest.mark.parametrize("params", [{}, {"email": ""}, {"colour": "red"}])
def test_a_search_without_any_filter_is_a_400(api: httpx.Client, params: dict[str, str]) -> None:
    r = api.get("/orders", params=params)
    assert r.status_code == 400
    assert r.json()["error"] == "missing_filter"


# -- one order --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("ORD-1001", "NEW"),
        ("ORD-1002", "PRC"),
        ("ORD-1003", "SHP"),
        ("ORD-1004", "SHP"),
        ("ORD-1005", "DLV"),
        ("ORD-1006", "DLV"),
        ("ORD-1007", "CNL"),
        ("ORD-1008", None),
    ],
)
def test_orders_carry_the_merchants_status_codes(
    api: httpx.Client, number: str, status: str | None
) -> None:
    r = api.get(f"/orders/{number}")
    assert r.status_code == 200
    assert r.json()["status"] == status


def test_order_detail_has_every_documented_field(api: httpx.Client) -> None:
    o = api.get("/orders/ORD-1003").json()
    assert o["customer"] == {
        "email": "shipped@demo.shop",
        "phone": "4151234567",
        "name": "Jane Doe",
    }
    assert o["ref"] == "SF-88003"
    assert o["currency"] == "USD"
    assert o["total"] == 158.0 == sum(x["price"] * x["quantity"] for x in o["lines"])
    assert o["lines"][0] == {
        "sku": "SHO-TRL-42",
        "name": "Trail Running Shoes",
        "quantity": 1,
        "price": 129.0,
        "image_url": "https://cdn.demo-shop.example/img/sho-trl-42.jpg",
        "shipped_quantity": 1,
    }
    assert o["shipping_address"] == {
        "line1": "500 Howard Street",
        "line2": "Apt 4B",
        "city": "San Francisco",
        "postal_code": "94105",
        "country": "US",
    }
    (parcel,) = o["shipments"]
    assert parcel["carrier"] == "UPS"
    assert parcel["tracking_number"] == "1Z999AA10123456784"
    assert parcel["tracking_url"].endswith("1Z999AA10123456784")
    assert parcel["status"] == "in_transit"
    assert parcel["delivered_at"] is None
    assert parse_ts(parcel["shipped_at"]) > parse_ts(o["created_at"])
    assert date.fromisoformat(o["expected_delivery"]) > datetime.now(UTC).date()
    assert parse_ts(o["updated_at"]) >= parse_ts(o["created_at"])


def test_order_numbers_are_case_insensitive_and_unknown_ones_are_404(api: httpx.Client) -> None:
    assert api.get("/orders/ord-1001").json()["number"] == "ORD-1001"
    r = api.get("/orders/ORD-9999")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


def test_a_partly_shipped_order_shows_which_lines_left(api: httpx.Client) -> None:
    o = api.get("/orders/ORD-1004").json()
    shipped = {x["sku"]: x["shipped_quantity"] for x in o["lines"]}
    assert shipped == {"HOM-DUV-220": 1, "HOM-PIL-050": 0, "HOM-BLK-075": 0}
    assert [s["status"] for s in o["shipments"]] == ["in_transit", "preparing"]
    assert o["shipments"][1]["tracking_number"] is None
    assert o["shipments"][1]["shipped_at"] is None


def test_an_order_in_several_parcels_all_shipped(api: httpx.Client) -> None:
    o = api.get("/orders/ORD-1012").json()
    assert len(o["shipments"]) == 2
    assert all(s["shipped_at"] and s["tracking_number"] for s in o["shipments"])
    assert [s["status"] for s in o["shipments"]] == ["delivered", "in_transit"]
    assert all(x["shipped_quantity"] == x["quantity"] for x in o["lines"])


def test_the_erp_only_order_has_no_status_and_no_parcels(api: httpx.Client) -> None:
    o = api.get("/orders/ORD-1008").json()
    assert o["status"] is None
    assert o["shipments"] == []
    assert {x["shipped_quantity"] for x in o["lines"]} == {None}
    assert api.get("/orders/ORD-1008/shipments").json() == []


def test_delivered_orders_sit_on_either_side_of_the_30_day_return_window(
    api: httpx.Client,
) -> None:
    now = datetime.now(UTC)
    recent = parse_ts(api.get("/orders/ORD-1005").json()["shipments"][0]["delivered_at"])
    old = parse_ts(api.get("/orders/ORD-1006").json()["shipments"][0]["delivered_at"])
    assert now - timedelta(days=30) < recent < now
    assert old < now - timedelta(days=30)


def test_a_cancelled_order_says_when_and_why(api: httpx.Client) -> None:
    o = api.get("/orders/ORD-1007").json()
    assert o["cancel_reason"] == "Customer changed their mind"
    assert parse_ts(o["cancelled_at"]) < datetime.now(UTC)
    assert o["expected_delivery"] is None
    assert o["shipments"] == []


# -- parcels and tracking ---------------------------------------------------------------


def test_shipments_come_with_tracking_events_newest_first(api: httpx.Client) -> None:
    parcels = api.get("/orders/ORD-1005/shipments").json()
    assert len(parcels) == 1
    events = parcels[0]["events"]
    assert events[0]["status"] == "delivered"
    assert [e["at"] for e in events] == sorted((e["at"] for e in events), reverse=True)
    assert api.get("/orders/ORD-9999/shipments").status_code == 404


def test_tracking_by_number(api: httpx.Client) -> None:
    t = api.get("/tracking/1z999aa10123456786").json()
    assert t["tracking_number"] == "1Z999AA10123456786"
    assert t["order_number"] == "ORD-1012"
    assert t["carrier"] == "UPS"
    assert t["status"] == "in_transit"
    assert date.fromisoformat(t["eta"]) > datetime.now(UTC).date()
    assert all(parse_ts(e["at"]) <= datetime.now(UTC) for e in t["events"])


def test_unknown_tracking_numbers_and_routes_are_json_404s(api: httpx.Client) -> None:
    r = api.get("/tracking/NOPE123")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = api.get("/customers")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")


# -- admin switches ---------------------------------------------------------------------


def test_the_outage_switch_turns_the_api_to_503_and_back(
    fresh_shop: DemoShop, fresh_api: httpx.Client
) -> None:
    admin = f"{fresh_shop.base_url}/_admin"
    auth = {"Authorization": f"Bearer {fresh_shop.token}"}
    assert httpx.post(f"{admin}/outage", json={"on": True}).status_code == 401

    r = httpx.post(f"{admin}/outage", json={"on": True}, headers=auth)
    assert r.json() == {"down": ["rest"]}
    down = fresh_api.get("/orders/ORD-1001")
    assert down.status_code == 503
    assert down.json()["error"] == "service_unavailable"
    assert httpx.get(f"{admin}/health").json()["down"] == ["rest"]

    # The alias under /api keeps working during the outage.
    r = httpx.post(f"{fresh_shop.rest_url}/_admin/outage", json={"on": False}, headers=auth)
    assert r.json() == {"down": []}
    assert fresh_api.get("/orders/ORD-1001").status_code == 200


def test_admin_refuses_malformed_switches(fresh_shop: DemoShop) -> None:
    auth = {"Authorization": f"Bearer {fresh_shop.token}"}
    for body in ({"on": "yes"}, {"on": True, "services": ["mail"]}):
        r = httpx.post(f"{fresh_shop.base_url}/_admin/outage", json=body, headers=auth)
        assert r.status_code == 400
    r = httpx.post(f"{fresh_shop.base_url}/_admin/delay", json={"ms": -1}, headers=auth)
    assert r.status_code == 400


def test_an_injected_delay_slows_the_api(fresh_shop: DemoShop, fresh_api: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {fresh_shop.token}"}
    r = httpx.post(f"{fresh_shop.base_url}/_admin/delay", json={"ms": 300}, headers=auth)
    assert r.json()["delays_ms"] == {"rest": 300}
    started = time.perf_counter()
    assert fresh_api.get("/orders/ORD-1001").status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_health_needs_no_auth(shop: DemoShop) -> None:
    r = httpx.get(f"{shop.base_url}/_admin/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
