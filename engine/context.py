"""What an action receives as ``ctx``, and what a built-in action may return."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol


@functools.cache
def _logger(action: str) -> logging.Logger:
    return logging.getLogger(f"csflow.action.{action}")


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
    """

    __slots__ = (
        "_connections",
        "dry_run",
        "idempotency_key",
        "log",
        "run_id",
        "sent",
        "step",
        "timeout",
        "write",
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
    ) -> None:
        self._connections = connections
        self.run_id = run_id
        self.step = step
        self.timeout = timeout
        self.idempotency_key = idempotency_key
        self.dry_run = dry_run
        self.log = _logger(action)
        self.write = False
        self.sent = False

    def http(self, connection: str) -> Any:
        """The connection's httpx client: auth, timeouts and redaction included."""
        return self._connections.client(connection)

    def connection(self, name: str) -> Any:
        return self._connections.get(name)
