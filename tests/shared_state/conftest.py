"""The shared state's tests run twice: on ``LocalState`` and on a real Redis.

``state`` is one process's view; ``peer`` is another process's view of the same state: for
Redis a second client (another ``RedisState`` on the same URL), in process the same object.
Each test's Redis keys have a prefix of their own, so that a Redis given by
``CSFLOW_TEST_REDIS`` is shared safely.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from faults.server import FaultServer, OAuthServer
from sharing import make_project

from csflow.adapters.shared import LocalState, SharedState
from csflow.adapters.shared.redis_state import RedisState
from csflow.engine.compiled_project import CompiledProject


@pytest.fixture(params=["local", "redis"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def prefix() -> str:
    return f"csflow-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
async def state(kind: str, request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Any]:
    made: SharedState
    if kind == "local":
        made = LocalState()
    else:
        made = RedisState(request.getfixturevalue("redis_url"), prefix=prefix)
    yield made
    await made.aclose()


@pytest.fixture
async def peer(state: Any, kind: str, prefix: str) -> AsyncIterator[Any]:
    if kind == "local":
        yield state
        return
    other = RedisState(state.url, prefix=prefix)
    yield other
    await other.aclose()


@pytest.fixture(scope="module")
def api() -> Iterator[FaultServer]:
    """The token endpoint and the API, on loopback."""
    with FaultServer() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, api: FaultServer) -> tuple[CompiledProject, OAuthServer]:
    return make_project(tmp_path, api)
