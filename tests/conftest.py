"""Shared fixtures: Demo Shop on loopback, and the shipped project pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "flows"


@pytest.fixture(scope="session", autouse=True)
def _runs_recorded_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # `csflow run` records every run; the tests' runs go to a scratch store, not flows/.csflow.
    os.environ.setdefault("CSFLOW_STORE", str(tmp_path_factory.mktemp("store") / "runs.sqlite3"))
    yield


@pytest.fixture(scope="session")
def demo_shop() -> Iterator[object]:
    from csflow.demo.server import DemoShop

    with DemoShop() as shop:
        yield shop


@pytest.fixture(scope="session")
def shop_env(demo_shop: object) -> dict[str, str]:
    return {**os.environ, **demo_shop.env()}  # type: ignore[attr-defined]


@pytest.fixture
async def shipped(shop_env: dict[str, str]) -> AsyncIterator[object]:
    from csflow import Project

    project = Project.load(SHIPPED, environ=shop_env)
    yield project
    await project.aclose()
