"""The port for state that every csflow process of a deployment shares (spec §8).

Three things must be the same on every server: an OAuth token and its one refresh, the
signed requests already accepted (Coffield's replay window), and each connection's rate
limit. ``SharedState`` is what they need, in five operations; ``LocalState`` keeps them in
this process, ``RedisState`` in Redis (``CSFLOW_REDIS``).

A shared state that cannot answer raises ``StateUnavailable``, always within a short time,
never a library's exception. Each caller decides what that means: the replay cache refuses
(fails closed), tokens and rate limits fall back to this process (fail open).

Keys are plain text chosen by the callers; they never hold a secret (a hash of what
identifies the thing, beside a name a person can read).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol


class StateUnavailable(Exception):
    """The shared state did not answer in time, or refused: the message says which."""


@dataclass(frozen=True, slots=True)
class Rate:
    """``requests`` per ``per`` seconds: up to ``requests`` at once, then one every
    ``per / requests`` (a token bucket, run as GCRA)."""

    requests: int
    per: float

    @property
    def interval(self) -> float:
        return self.per / self.requests

    def __str__(self) -> str:
        return f"{self.requests} per {self.per:g}s"


@dataclass(frozen=True, slots=True)
class Reservation:
    """A rate limit's answer: ``granted`` with the ``wait`` before the slot comes, or not
    granted because the slot would come only after ``wait`` seconds, past what was allowed."""

    granted: bool
    wait: float


class Held(Protocol):
    """A lock this process holds until ``release`` or until its time to live runs out."""

    async def release(self) -> None: ...


class SharedState(Protocol):
    """State shared by every process of a deployment (or only by this one: ``LocalState``)."""

    @property
    def where(self) -> str:
        """Where it lives, for people: ``in process`` or the Redis URL without a password."""
        ...

    async def claim(self, key: str, ttl: float) -> bool:
        """True the first time ``key`` is claimed within ``ttl`` seconds, False after that."""
        ...

    async def reserve(self, key: str, rate: Rate, within: float) -> Reservation:
        """A slot of ``rate`` that comes within ``within`` seconds, booked; or none booked."""
        ...

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl: float | None) -> None:
        """Keep ``value`` under ``key`` for ``ttl`` seconds (None: until replaced)."""
        ...

    async def try_lock(self, key: str, ttl: float) -> Held | None:
        """The lock ``key`` if nobody holds it; it is released by itself after ``ttl`` s."""
        ...

    async def aclose(self) -> None: ...


def fingerprint(*parts: str) -> str:
    """16 hex digits of SHA-256 over ``parts``: names a thing in a key without holding it."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]
