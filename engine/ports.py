"""The engine's ports: what a run needs from outside, as types the adapters implement.

The engine never imports an adapter. A run is handed a ``Gateway`` (the project's
connections); for each attempt of an action call it builds a frozen ``Call`` and asks the
gateway for that call's view of the connections (``CallConnections``). The action makes its
requests through the view; afterwards the view says what left (``Traffic``). Nothing about
the call travels back by mutating the runner's objects or through a context variable.

The run store's port, ``RunStore``, lives with the store (``engine.store``) and is re-exported
here so that the ports are read in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from csflow.engine.store import RunStore

BeforeWrite = Callable[[], Awaitable[None]]
"""Awaited once, right before the first write of a call leaves: the run store's ``in_flight``."""

__all__ = [
    "BeforeWrite",
    "Call",
    "CallConnections",
    "Gateway",
    "HttpAnswer",
    "HttpClient",
    "Redaction",
    "RunStore",
    "Traffic",
]


@dataclass(frozen=True, slots=True)
class Call:
    """One attempt of one action call, as the runner hands it to the adapters.

    ``deadline`` is event-loop time (``loop.time()``): the call's one deadline, the earlier of
    the run's deadline and the step's ``timeout``. ``idempotency_key`` is the key as the flow
    rendered it; the adapter derives the header it sends from it.
    """

    run_id: str
    step: str
    action: str
    attempt: int
    deadline: float
    timeout: float | None
    idempotency_key: str | None
    dry_run: bool
    before_write: BeforeWrite | None


@dataclass(frozen=True, slots=True)
class Traffic:
    """What one call sent: the adapter's answer to "did anything leave?".

    ``write``: the call made (or was about to make) a write. ``sent``: a request left.
    ``wrote``: a write left, so it may have reached the server. ``kept_back``: what a dry
    run kept from being sent (method, URL, body; secrets redacted), or None.
    """

    write: bool = False
    sent: bool = False
    wrote: bool = False
    kept_back: Mapping[str, object] | None = None

    @property
    def may_have_written(self) -> bool:
        """Whether a write may have reached the server: retrying could do it twice.

        A call that meant to write and sent anything counts: its write may have gone with it.
        """
        return self.wrote or (self.write and self.sent)


class HttpAnswer(Protocol):
    """What a custom action gets back from ``ctx.http(name).get(...)`` (an httpx Response)."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def content(self) -> bytes: ...

    @property
    def text(self) -> str: ...

    def json(self, **kwargs: Any) -> Any: ...

    def raise_for_status(self) -> object: ...


class HttpClient(Protocol):
    """``ctx.http(name)``: the connection's client, bound to the call (an httpx-like API)."""

    async def request(self, method: str, url: str, **kwargs: Any) -> HttpAnswer: ...

    async def get(self, url: str, **kwargs: Any) -> HttpAnswer: ...

    async def post(self, url: str, **kwargs: Any) -> HttpAnswer: ...

    async def put(self, url: str, **kwargs: Any) -> HttpAnswer: ...

    async def patch(self, url: str, **kwargs: Any) -> HttpAnswer: ...

    async def delete(self, url: str, **kwargs: Any) -> HttpAnswer: ...


class CallConnections(Protocol):
    """The project's connections as one call sees them; it counts what the call sends."""

    def http(self, name: str) -> HttpClient: ...

    def connection(self, name: str) -> object:
        """The adapter's connection object: the built-in actions narrow it to their type."""
        ...

    def traffic(self) -> Traffic: ...


class Redaction(Protocol):
    """Replaces every known secret with ``***``."""

    def redact(self, text: str) -> str: ...


class Gateway(Redaction, Protocol):
    """The project's connections, from the engine's side: one view per call, and redaction."""

    def for_call(self, call: Call) -> CallConnections: ...
