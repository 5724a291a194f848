"""Fixtures of the end-to-end tests; their helpers live in ``channels_support``."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from channels_support import KEYS, serving
from support import SHIPPED

from csflow.demo import DemoShop


@pytest.fixture(scope="module")
def server(shop: DemoShop) -> Iterator[httpx.Client]:
    """The shipped project's channels on loopback, calling this module's own Demo Shop."""
    with serving(SHIPPED, {**shop.env(), **KEYS}) as client:
        yield client
