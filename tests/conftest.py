"""Shared fixtures: Demo Shops on loopback, and the shipped project pointed at one.

``demo_shop`` is the session's, for tests that only read. ``shop`` is a module's own, for
modules that write to it, slow it down or take it offline, so that nothing they do reaches
another module. The helpers that are not fixtures live in ``support.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from support import SHIPPED

from csflow.demo import DemoShop

if TYPE_CHECKING:
    from services.postgres import PostgresHost, PostgresServer


@pytest.fixture(scope="session", autouse=True)
def _runs_recorded_outside_the_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # `csflow run` records every run; the tests' runs go to a scratch store, not flows/.csflow.
    os.environ.setdefault("CSFLOW_STORE", str(tmp_path_factory.mktemp("store") / "runs.sqlite3"))
    yield


@pytest.fixture(scope="session")
def demo_shop() -> Iterator[DemoShop]:
    with DemoShop() as shop:
        yield shop


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShop]:
    """This module's own Demo Shop: what its tests write or switch reaches no other module."""
    with DemoShop() as running:
        yield running


@pytest.fixture(scope="session")
def shop_env(demo_shop: DemoShop) -> dict[str, str]:
    return {**os.environ, **demo_shop.env()}


@pytest.fixture
async def shipped(shop_env: dict[str, str]) -> AsyncIterator[object]:
    from csflow import Project

    project = Project.load(SHIPPED, environ=shop_env)
    yield project
    await project.aclose()


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped project, ``tmp_path/p``, for a test to change: no store, no tests."""
    project = tmp_path / "p"
    shutil.copytree(SHIPPED, project, ignore=shutil.ignore_patterns(".csflow", "tests"))
    return project


# ------------------------------------------------------------------------------ Redis


def _no_server(reason: str, package: str = "redis-server") -> None:
    """No real server to test against: a failure under CI (``.ci/run`` installs it), else a
    skip saying why. CI must never pass by skipping the tests of the shared state."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run installs {package})", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis: ``CSFLOW_TEST_REDIS``, else a ``redis-server`` the session starts."""
    given = os.environ.get("CSFLOW_TEST_REDIS")
    if given:
        yield given
        return
    from services.redis import RedisServer, available

    if not available():
        _no_server("no Redis to test against: set CSFLOW_TEST_REDIS or install redis-server")
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_server() -> Iterator[object]:
    """A ``redis-server`` of the test's own, which it may stop and start again."""
    from services.redis import RedisServer, available

    if not available():
        _no_server("this test stops and restarts Redis: it needs redis-server installed")
    with RedisServer() as server:
        yield server


# ------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresHost]:
    """A real PostgreSQL to make databases on: ``CSFLOW_TEST_POSTGRES`` (a URL of a server
    whose databases the tests may create and drop), else a server the session starts."""
    from services.postgres import ENV, PostgresHost, PostgresServer, why_not

    url = os.environ.get(ENV)
    if url:
        yield PostgresHost(url)
        return
    problem = why_not()
    if problem is not None:
        _no_server(problem, "postgresql")
    with PostgresServer() as server:
        yield PostgresHost(server.url())


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own, to stop and start: never the session's."""
    from services.postgres import PostgresServer, why_not

    problem = why_not()
    if problem is not None:
        _no_server(f"{problem}: this test stops and starts a server of its own", "postgresql")
    with PostgresServer() as server:
        yield server
