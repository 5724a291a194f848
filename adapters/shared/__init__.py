"""State every process of a deployment shares: in Redis with ``CSFLOW_REDIS``, else in process.

``open_shared_state(environ)`` is the one door: with ``CSFLOW_REDIS=redis://...`` (or
``rediss://``, ``unix://``) it gives the process's ``RedisState`` for that URL (one per URL,
whose clients are per event loop); without it, a new ``LocalState``, which is csflow in one
process as it always was. See ``port`` for what is shared and what fails open or closed.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from csflow.adapters.shared.local import LocalState
from csflow.adapters.shared.port import (
    Held,
    Rate,
    Reservation,
    SharedState,
    StateUnavailable,
    fingerprint,
)
from csflow.engine.errors import UsageError

REDIS_ENV = "CSFLOW_REDIS"
SCHEMES = ("redis", "rediss", "unix")

_by_url: dict[str, SharedState] = {}
_mutex = threading.Lock()


def open_shared_state(environ: Mapping[str, str]) -> SharedState:
    """The shared state ``environ`` names; UsageError for a ``CSFLOW_REDIS`` that is no URL."""
    url = environ.get(REDIS_ENV, "").strip()
    if not url:
        return LocalState()
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in SCHEMES:  # the value is not echoed: it may hold a password
        raise UsageError(f"{REDIS_ENV} must be a redis://HOST:PORT/DB URL (or rediss://, unix://)")
    with _mutex:
        state = _by_url.get(url)
        if state is None:
            from csflow.adapters.shared.redis_state import RedisState

            state = _by_url[url] = RedisState(url)
        return state


__all__ = [
    "REDIS_ENV",
    "Held",
    "LocalState",
    "Rate",
    "Reservation",
    "SharedState",
    "StateUnavailable",
    "fingerprint",
    "open_shared_state",
]
