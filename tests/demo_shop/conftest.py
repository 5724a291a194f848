"""Fixtures: a Demo Shop over real loopback HTTP, shared per module or fresh per test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo import DemoShop


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShop]:
    """One server per module, for tests that only read."""
    with DemoShop() as s:
        yield s


@pytest.fixture
def fresh_shop() -> Iterator[DemoShop]:
    """A server of its own, for tests that change data or switches."""
    with DemoShop() as s:
        yield s


def rest_client(s: DemoShop, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=s.rest_url, headers={"Authorization": f"Bearer {token or s.token}"}, timeout=5
    )


@pytest.fixture(scope="module")
def api(shop: DemoShop) -> Iterator[httpx.Client]:
    with rest_client(shop) as client:
        yield client
