"""A Redis that is down, hangs or restarts: never a hang, one log line each way, and back by
itself. What each user of the state does then is tested with it (tokens and rate limits fail
open here; Coffield's replay cache fails closed in tests/e2e/test_shared_state.py)."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sharing import gateway, runs
from support import free_port

from csflow.adapters.shared import StateUnavailable
from csflow.adapters.shared.redis_state import OP_TIMEOUT, PAUSE, RedisState

pytestmark = pytest.mark.asyncio
PASSWORD = "hunter2-not-in-any-log"


def shared_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "csflow.shared"]


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections and never answers: a Redis that hangs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


async def test_a_redis_that_is_down_fails_at_once_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "csflow.shared")
    state = RedisState(f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    for _ in range(5):
        started = time.monotonic()
        with pytest.raises(StateUnavailable) as info:
            await state.claim("sig", 30)
        assert time.monotonic() - started < OP_TIMEOUT + 0.2
        assert PASSWORD not in str(info.value)
    lines = shared_lines(caplog)
    assert len(lines) == 1 and "unavailable" in lines[0]
    assert PASSWORD not in lines[0] and "127.0.0.1" in lines[0]
    await state.aclose()


async def test_a_redis_that_hangs_costs_one_timeout_then_nothing_for_a_pause(silent: int) -> None:
    state = RedisState(f"redis://127.0.0.1:{silent}/0")
    started = time.monotonic()
    with pytest.raises(StateUnavailable, match="no answer within"):
        await state.get("token")
    took = time.monotonic() - started
    assert OP_TIMEOUT - 0.05 <= took < OP_TIMEOUT + 0.3
    started = time.monotonic()
    with pytest.raises(StateUnavailable):
        await state.claim("sig", 30)  # within PAUSE: not tried, no second timeout
    assert time.monotonic() - started < 0.05
    await state.aclose()


async def test_the_state_comes_back_by_itself_when_redis_does(
    redis_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "csflow.shared")
    state = RedisState(redis_server.url)
    assert await state.claim("before", 30)
    redis_server.stop()
    with pytest.raises(StateUnavailable):
        await state.claim("during", 30)
    redis_server.start()
    deadline = time.monotonic() + 10 * PAUSE + 5

    async def answers() -> bool:
        try:
            return await state.claim("after", 30)
        except StateUnavailable:
            return False

    while not await answers():
        assert time.monotonic() < deadline, "the state never came back"
        await asyncio.sleep(0.05)
    lines = shared_lines(caplog)
    assert len(lines) == 2 and "unavailable" in lines[0] and "back" in lines[1]
    await state.aclose()


async def test_tokens_fail_open_to_this_process(
    project: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "csflow.shared")
    compiled, tokens = project
    conn = gateway(compiled, RedisState(f"redis://127.0.0.1:{free_port()}/0"))
    results = await runs(compiled, [conn], "plan", 20)
    assert [r.status for r in results] == ["completed"] * 20, results[0].error
    assert len(tokens.token_requests()) == 1  # this process's own token, and one only
    results = await runs(compiled, [conn], "plan", 20)
    assert len(tokens.token_requests()) == 1  # cached in the process meanwhile
    assert len(shared_lines(caplog)) == 1
    await conn.aclose()


async def test_rate_limits_fail_open_to_this_process(project: Any, api: Any) -> None:
    compiled, _ = project
    conn = gateway(compiled, RedisState(f"redis://127.0.0.1:{free_port()}/0"))
    results = await runs(compiled, [conn], "limited", 3)
    assert [r.status for r in results] == ["completed"] * 3
    at = sorted(r.at for r in api.hits("/api/ping"))
    assert at[2] - at[0] >= 0.4  # still limited, by this process
    await conn.aclose()
