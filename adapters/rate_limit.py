"""A connection's ``rate_limit`` (``{requests: 10, per: 1s}``), kept at the one outbound door.

The gate (``adapters.calls.GateTransport``) asks ``RateLimit.slot`` before every request that
leaves (each redirect hop too; not a dry run's kept-back write, which does not leave). A
request over the limit waits for its slot, booked in advance, so waiters go in turn without
asking again; one whose slot would come after its call's deadline is not sent, and fails at
once as the API's own ``429`` would: kind ``http_status``, status 429, outcome ``not_sent``,
and ``retry_after`` the wait it would have needed (docs/decisions.md, "Rate limits").

The limit lives in the shared state, so every process shares it. When the shared state is
unavailable it fails open to a limiter in this process (the state logs that once): the API
is still protected from this process, though not from all of them together.
"""

from __future__ import annotations

import asyncio

from csflow.adapters.shared import LocalState, Rate, SharedState, StateUnavailable, fingerprint
from csflow.engine.errors import StepError
from csflow.engine.model import RateLimit as RateLimitModel


class RateLimit:
    """One connection's limit: its key in the shared state, and the fallback in this process."""

    __slots__ = ("_local", "_state", "key", "name", "rate")

    def __init__(self, name: str, base_url: str, spec: RateLimitModel, state: SharedState) -> None:
        self.name = name
        self.rate = Rate(spec.requests, spec.per)
        # The API's URL, not the connection's name alone: two tenants' "shop" are two shops.
        self.key = f"rate:{name}:{fingerprint(base_url)}"
        self._state = state
        self._local = state if isinstance(state, LocalState) else LocalState()

    async def slot(self, deadline: float, what: str) -> None:
        """Wait for this request's slot; StepError (429, not sent) if it comes past ``deadline``.

        ``deadline`` is the event loop's time, as ``Call.deadline`` is.
        """
        within = max(0.0, deadline - asyncio.get_running_loop().time())
        try:
            booked = await self._state.reserve(self.key, self.rate, within)
        except StateUnavailable:
            booked = await self._local.reserve(self.key, self.rate, within)
        if not booked.granted:
            raise StepError(
                "http_status",
                f"{what}: connection '{self.name}' is at its rate_limit ({self.rate}); the next"
                f" slot is in {booked.wait:.2f}s, after the call's deadline",
                status=429,
                outcome="not_sent",
                retry_after=booked.wait,
            )
        if booked.wait > 0:
            await asyncio.sleep(booked.wait)  # the booked slot: the wait is the limit itself
