"""Invariants of the seeded data that flows and tests rely on (no server needed)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from csflow.demo.models import REST_STATUS
from csflow.demo.store import Store, phone_key

NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def store() -> Store:
    return Store(NOW)


def test_each_customer_has_a_phone_key_of_their_own(store: Store) -> None:
    owners: dict[str, set[str]] = {}
    for order in store.orders.values():
        owners.setdefault(phone_key(order.phone), set()).add(order.customer.email)
    for customer in store.customers.values():
        owners.setdefault(phone_key(customer.phone), set()).add(customer.email)
    shared = {key: emails for key, emails in owners.items() if len(emails) > 1}
    assert shared == {}


def test_identifiers_are_unique(store: Store) -> None:
    orders = list(store.orders.values())
    refs = Counter(o.ref for o in orders)
    tracking = Counter(s.tracking_number for o in orders for s in o.shipments if s.tracking_number)
    assert max(refs.values()) == 1
    assert max(tracking.values()) == 1
    assert len(store.customers) == len({c.id for c in store.customers.values()})


def test_every_status_case_is_seeded(store: Store) -> None:
    statuses = {o.status for o in store.orders.values() if not o.erp_only}
    assert statuses == set(REST_STATUS)
    assert [o.number for o in store.orders.values() if o.erp_only] == ["ORD-1008"]
    assert {o.currency for o in store.orders.values()} == {"USD", "EUR"}
    subs = Counter(s.status for s in store.subscriptions.values())
    assert set(subs) == {"ACTIVE", "PAUSED", "CANCELLED"}


def test_dates_are_relative_to_now(store: Store) -> None:
    window = NOW - timedelta(days=30)
    inside = store.orders["ORD-1005"].shipments[0].delivered_at
    outside = store.orders["ORD-1006"].shipments[0].delivered_at
    assert inside is not None and window < inside < NOW
    assert outside is not None and outside < window
    for order in store.orders.values():
        assert order.created_at <= order.updated_at <= NOW
        for s in order.shipments:
            assert all(e.at <= NOW for e in s.events)
            if s.shipped_at:
                assert order.created_at < s.shipped_at <= NOW
    shipped = store.orders["ORD-1003"]
    assert shipped.expected_delivery is not None and shipped.expected_delivery > NOW.date()


def test_the_most_recent_order_is_not_the_first_listed(store: Store) -> None:
    orders = store.find_orders(email="repeat@demo.shop")
    assert max(orders, key=lambda o: o.created_at) is orders[-1]
    assert len(orders) == 3


def test_an_unrelated_filter_does_not_widen_the_search(store: Store) -> None:
    assert store.find_orders() == []
    assert store.find_orders(email="shipped@demo.shop", phone="8675309") == []
