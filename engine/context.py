"""What an action receives as ``ctx``, and what a built-in action may return."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from csflow.adapters.secrets import redact_logs

BeforeWrite = Callable[[], Awaitable[None]]


@functools.cache
def _logger(action: str) -> logging.Logger:
    # Secrets an action logs (say, an echoed token) come out as ***.
    return redact_logs(logging.getLogger(f"csflow.action.{action}"))


class ConnectionOpener(Protocol):
    """The one interface the engine holds to the adapters: connections by name."""

    def get(self, name: str) -> Any: ...

    def client(self, name: str) -> Any: ...


@dataclass(slots=True)
class Payload:
    """A built-in action's result: ``data`` for JMESPath, ``xml`` for XPath, and the status."""

    data: Any
    status: int | None = None
    xml: Any = None
    details: dict[str, Any] = field(default_factory=dict)


class ActionContext:
    """``ctx`` of an action: its connections, the run's id, a logger, and this call's settings.

    ``write`` and ``sent`` are set by the adapter while a request is made, so that the
    runner can tell a write whose answer never came (``outcome: unknown``) from one never sent.
    ``sent`` turns true at the last moment before the request leaves (httpx's request hook,
    after auth), so a call that failed while getting a token was not sent.

    ``before_write``, when the run is recorded, is awaited by the adapter right before a
    write leaves; it returns once the run store holds the run as ``in_flight``. An adapter
    that sends a write some other way than ``Connection.send`` calls ``await
    ctx.about_to_send(write=True)`` itself.
    """

    __slots__ = (
        "_connections",
        "before_write",
        "dry_run",
        "idempotency_key",
        "intents",
        "log",
        "run_id",
        "sent",
        "step",
        "timeout",
        "write",
        "wrote",
    )

    def __init__(
        self,
        connections: ConnectionOpener,
        *,
        run_id: str,
        step: str,
        action: str,
        timeout: float | None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
        before_write: BeforeWrite | None = None,
    ) -> None:
        self._connections = connections
        self.before_write = before_write
        self.run_id = run_id
        self.step = step
        self.timeout = timeout
        self.idempotency_key = idempotency_key
        self.dry_run = dry_run
        self.log = _logger(action)
        self.write = False  # a write was (or was about to be) made during this attempt
        self.sent = False  # a request of this attempt left
        self.wrote = False  # a write request of this attempt left
        self.intents: Any = None  # the project's trained Intents, for the `intent` action (§12)

    def http(self, connection: str) -> Any:
        """The connection's httpx client: auth, timeouts and redaction included."""
        return self._connections.client(connection)

    def connection(self, name: str) -> Any:
        return self._connections.get(name)

    async def about_to_send(self, *, write: bool) -> None:
        """A request is leaving now: a write is recorded first (``before_write``), then sent."""
        if write:
            self.write = True
            if not self.wrote and self.before_write is not None:
                await self.before_write()
            self.wrote = True
        self.sent = True

    @property
    def may_have_written(self) -> bool:
        """Whether a write may have reached the server: retrying could do it twice."""
        return self.wrote or (self.write and self.sent)


# The context of the action running in this task: httpx's request hook finds it here when
# an action calls through ``ctx.http(...)`` rather than ``Connection.send``.
CURRENT: ContextVar[ActionContext | None] = ContextVar("csflow_action_context", default=None)
