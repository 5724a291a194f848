"""``LocalState``: the shared state of one process, as csflow runs without ``CSFLOW_REDIS``.

It is plain data behind a thread lock (a served app and ``run_sync`` may use it from two
threads and loops), so it never fails, with one exception: the replay claims are bounded
(``MAX_CLAIMS``), and a claim past that raises ``StateUnavailable`` rather than forget a
claim that is still in its window, which would let that request be replayed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from csflow.adapters.shared.port import Held, Rate, Reservation, StateUnavailable

# About 330 accepted requests a second for a 300 s window, in roughly 20 MB: one process
# answering more than that needs CSFLOW_REDIS anyway.
MAX_CLAIMS = 100_000


@dataclass(slots=True)
class _Lock:
    state: LocalState
    key: str
    owner: str

    async def release(self) -> None:
        self.state._unlock(self.key, self.owner)


class LocalState:
    """Claims, rate limits, values and locks in this process, each with its expiry."""

    def __init__(self, max_claims: int = MAX_CLAIMS) -> None:
        self.max_claims = max_claims
        self._mutex = threading.Lock()
        self._claims: OrderedDict[str, float] = OrderedDict()  # key -> expiry, oldest first
        self._tats: dict[str, float] = {}  # rate key -> theoretical arrival time (GCRA)
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._locks: dict[str, tuple[str, float]] = {}  # key -> (owner, expiry)

    @property
    def where(self) -> str:
        return "in process"

    async def claim(self, key: str, ttl: float) -> bool:
        now = time.monotonic()
        with self._mutex:
            self._forget_expired(now)
            expiry = self._claims.get(key)
            if expiry is not None and expiry > now:
                return False
            if len(self._claims) >= self.max_claims:
                raise StateUnavailable(
                    f"the in-process replay cache is full ({self.max_claims} requests within"
                    " their window): set CSFLOW_REDIS"
                )
            self._claims[key] = now + ttl
            self._claims.move_to_end(key)
            return True

    def _forget_expired(self, now: float) -> None:
        claims = self._claims
        while claims:
            key, expiry = next(iter(claims.items()))
            if expiry > now:
                break
            del claims[key]
        if len(claims) >= self.max_claims:  # windows of different lengths: look at them all
            for key in [k for k, expiry in claims.items() if expiry <= now]:
                del claims[key]

    async def reserve(self, key: str, rate: Rate, within: float) -> Reservation:
        with self._mutex:
            now = time.monotonic()
            wait, tat = gcra(self._tats.get(key), now, rate)
            if wait > within:
                return Reservation(False, wait)
            self._tats[key] = tat
            return Reservation(True, wait)

    async def get(self, key: str) -> bytes | None:
        with self._mutex:
            found = self._values.get(key)
            if found is None:
                return None
            value, expiry = found
            if expiry is not None and expiry <= time.monotonic():
                del self._values[key]
                return None
            return value

    async def put(self, key: str, value: bytes, ttl: float | None) -> None:
        with self._mutex:
            self._values[key] = (value, None if ttl is None else time.monotonic() + ttl)

    async def try_lock(self, key: str, ttl: float) -> Held | None:
        now = time.monotonic()
        with self._mutex:
            held = self._locks.get(key)
            if held is not None and held[1] > now:
                return None
            owner = secrets.token_hex(8)
            self._locks[key] = (owner, now + ttl)
            return _Lock(self, key, owner)

    def _unlock(self, key: str, owner: str) -> None:
        with self._mutex:
            held = self._locks.get(key)
            if held is not None and held[0] == owner:  # not a lock that expired and was retaken
                del self._locks[key]

    async def aclose(self) -> None:
        pass


def gcra(tat: float | None, now: float, rate: Rate) -> tuple[float, float]:
    """GCRA with a booking: (the wait before this request's slot, the new arrival time).

    Up to ``rate.requests`` go at once; after that one slot every ``rate.interval``. The
    Redis script (``redis_state.GCRA``) computes the same, in microseconds.
    """
    start = now if tat is None or tat < now else tat
    new_tat = start + rate.interval
    return max(0.0, new_tat - rate.per - now), new_tat
