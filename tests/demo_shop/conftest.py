"""Fixtures: a Demo Shop over real loopback HTTP, shared per module or fresh per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from csflow.demo import DemoShop


def _client(s: DemoShop) -> httpx.Client:
    return httpx.Client(
        base_url=s.rest_url, headers={"Authorization": f"Bearer {s.token}"}, timeout=5
    )


@pytest.fixture
def fresh_shop() -> Iterator[DemoShop]:
    """A server of its own, for tests that change data or switches."""
    with DemoShop() as s:
        yield s


@pytest.fixture(scope="module")
def api(shop: DemoShop) -> Iterator[httpx.Client]:
    """REST client of the shared shop, authenticated, base URL .../api."""
    with _client(shop) as client:
        yield client


@pytest.fixture
def fresh_api(fresh_shop: DemoShop) -> Iterator[httpx.Client]:
    with _client(fresh_shop) as client:
        yield client
