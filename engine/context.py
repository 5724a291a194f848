"""What an action receives as ``ctx``, and what a built-in action may return."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csflow.engine.ports import Call, CallConnections, HttpClient
from csflow.engine.redaction import redact_logs

if TYPE_CHECKING:
    from csflow.engine.intents import Intents


@functools.cache
def _logger(action: str) -> logging.Logger:
    # Secrets an action logs (say, an echoed token) come out as ***.
    return redact_logs(logging.getLogger(f"csflow.action.{action}"))


@dataclass(slots=True)
class Payload:
    """A built-in action's result: ``data`` for JMESPath, ``xml`` for XPath, and the status."""

    data: Any
    status: int | None = None
    xml: Any = None
    details: dict[str, Any] = field(default_factory=dict)


class ActionContext:
    """``ctx`` of an action: this call's connections, the run's id, a logger, and the call.

    ``ctx.http("shop")`` is the connection's httpx client bound to this call: auth, timeouts,
    redaction and the host check come with it, and the run learns whether a write left
    (a write whose answer never came is ``outcome: unknown``; a dry run keeps it back).
    ``ctx.call`` is the frozen ``Call``: step, attempt, deadline, idempotency key, dry run.
    """

    __slots__ = ("call", "connections", "intents", "log")

    def __init__(
        self, call: Call, connections: CallConnections, intents: Intents | None = None
    ) -> None:
        self.call = call
        self.connections = connections
        self.log = _logger(call.action)
        # The project's trained intents.yaml (§12), for the `intent` action; None without one.
        self.intents = intents

    @property
    def run_id(self) -> str:
        return self.call.run_id

    @property
    def step(self) -> str:
        return self.call.step

    @property
    def timeout(self) -> float | None:
        return self.call.timeout

    @property
    def idempotency_key(self) -> str | None:
        return self.call.idempotency_key

    @property
    def dry_run(self) -> bool:
        return self.call.dry_run

    def http(self, connection: str) -> HttpClient:
        """The connection's httpx client for this call: auth, timeouts and redaction included."""
        return self.connections.http(connection)

    def connection(self, name: str) -> object:
        """The adapter's connection (what the built-in actions call through)."""
        return self.connections.connection(name)
