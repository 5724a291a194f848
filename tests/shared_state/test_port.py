"""What every shared state does, in process and on a real Redis: the same tests for both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support import POLL

from csflow.adapters.shared import LocalState, Rate, StateUnavailable

pytestmark = pytest.mark.asyncio


async def eventually(check: Callable[[], Awaitable[object]], *, what: str) -> object:
    """``await check()``'s first truthy value: an expiry is the behaviour these tests wait for."""
    deadline = time.monotonic() + 10
    while not (value := await check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(POLL)
    return value


async def test_a_key_is_claimed_once_by_anyone_within_its_ttl(state: Any, peer: Any) -> None:
    assert await state.claim("sig-1", 30) is True
    assert await state.claim("sig-1", 30) is False
    assert await peer.claim("sig-1", 30) is False  # another server refuses it too
    assert await peer.claim("sig-2", 30) is True


async def test_a_claim_can_be_made_again_once_its_ttl_has_passed(state: Any) -> None:
    assert await state.claim("sig", 0.05) is True
    started = time.monotonic()
    await eventually(lambda: state.claim("sig", 0.05), what="the claim to expire")
    assert time.monotonic() - started >= 0.04


async def test_a_rate_gives_its_burst_then_books_one_slot_per_interval(
    state: Any, peer: Any
) -> None:
    rate = Rate(3, 0.6)  # 3 at once, then one every 0.2 s
    burst = [await state.reserve("api", rate, 0) for _ in range(3)]
    assert [b.granted for b in burst] == [True] * 3
    assert all(b.wait == 0 for b in burst)
    late = await peer.reserve("api", rate, 0.05)  # the 4th's slot is 0.2 s away
    assert not late.granted and late.wait == pytest.approx(0.2, abs=0.05)
    booked = await peer.reserve("api", rate, 1.0)  # nothing was booked for the refused one
    assert booked.granted and booked.wait == pytest.approx(0.2, abs=0.05)
    after = await state.reserve("api", rate, 1.0)
    assert after.granted and after.wait == pytest.approx(0.4, abs=0.05)


async def test_concurrent_requests_get_slots_in_turn(state: Any, peer: Any) -> None:
    rate = Rate(2, 0.2)  # one slot every 0.1 s after two
    booked = await asyncio.gather(*(view.reserve("api", rate, 10) for view in [state, peer] * 5))
    waits = sorted(round(b.wait, 2) for b in booked)
    assert all(b.granted for b in booked)
    assert waits[:2] == [0, 0]
    assert waits[2:] == pytest.approx([0.1 * n for n in range(1, 9)], abs=0.03)


async def test_limits_of_different_keys_are_apart(state: Any) -> None:
    rate = Rate(1, 10)
    assert (await state.reserve("a", rate, 0)).granted
    assert (await state.reserve("b", rate, 0)).granted
    assert not (await state.reserve("a", rate, 0)).granted


async def test_a_value_is_read_back_by_anyone_until_it_expires(state: Any, peer: Any) -> None:
    assert await state.get("token") is None
    await state.put("token", b"v1", 30)
    assert await peer.get("token") == b"v1"
    await peer.put("token", b"v2", None)
    assert await state.get("token") == b"v2"
    await state.put("short", b"x", 0.05)
    assert await state.get("short") == b"x"

    async def gone() -> bool:
        return await state.get("short") is None

    await eventually(gone, what="the value to expire")


async def test_a_lock_has_one_holder_at_a_time(state: Any, peer: Any) -> None:
    held = await state.try_lock("renewing", 30)
    assert held is not None
    assert await peer.try_lock("renewing", 30) is None
    assert await peer.try_lock("another", 30) is not None
    await held.release()
    again = await peer.try_lock("renewing", 30)
    assert again is not None


async def test_a_lock_whose_holder_died_runs_out_and_can_be_taken(state: Any, peer: Any) -> None:
    dead = await state.try_lock("renewing", 0.1)  # its holder never releases it
    assert dead is not None
    started = time.monotonic()
    taken: Any = await eventually(
        lambda: peer.try_lock("renewing", 30), what="the dead holder's lock to run out"
    )
    assert time.monotonic() - started >= 0.05
    await dead.release()  # too late: it must not release the new holder's lock
    assert await state.try_lock("renewing", 30) is None
    await taken.release()


async def test_the_in_process_replay_cache_is_bounded_and_refuses_when_full() -> None:
    state = LocalState(max_claims=3)
    for n in range(3):
        assert await state.claim(f"sig-{n}", 30)
    with pytest.raises(StateUnavailable, match="replay cache is full"):
        await state.claim("sig-3", 30)
    assert await state.claim("sig-0", 30) is False  # a seen one is still refused, not forgotten


async def test_expired_claims_leave_the_in_process_cache() -> None:
    state = LocalState(max_claims=2)
    assert await state.claim("old-1", 0.01)
    assert await state.claim("old-2", 0.01)
    await eventually(lambda: _claimed(state, "new"), what="expired claims to be forgotten")
    assert len(state._claims) == 1


async def _claimed(state: LocalState, key: str) -> bool:
    try:
        return await state.claim(key, 30)
    except StateUnavailable:
        return False
