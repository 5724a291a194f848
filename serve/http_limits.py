"""Inbound limits: no connection is held by a client that sends too little, too slowly, or too much.

uvicorn bounds keep-alive (``timeout_keep_alive``, from the end of an answer) and concurrency
(``limit_concurrency``), but with httptools nothing bounds a connection that never sends a
byte, a request head that never ends, or one that never stops growing (issue 10, item 32).
``guarded_protocol(limits)`` is uvicorn's httptools protocol with those bounds added; the
body is read under the channel's deadline by ``endpoint.Inbound.body``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class Limits:
    """What one client may hold. Platforms send a whole head at once and reuse connections."""

    head_timeout: float = 5.0  # from connection (or the next request's first byte) to its head
    max_head_bytes: int = 16 * 1024  # request line and headers: Node's and nginx's order
    keep_alive: int = 5  # seconds an idle connection stays open after an answer
    concurrency: int = 1000  # connections and requests in flight; beyond it, 503 at once


_REFUSALS = {
    408: b"HTTP/1.1 408 Request Timeout\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}


class _GuardedProtocol(HttpToolsProtocol):
    limits: Limits = Limits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_head()  # the first byte of a request: its head is timed from here

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head:  # what was read went to a head that is not complete yet
            self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_head_bytes:
                self._refuse(431, "the request head is over the limit")

    def on_headers_complete(self) -> None:
        self._stop_head()
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self.limits.max_head_bytes:  # a large head that arrived in one read
            self._refuse(431, "the request head is over the limit")
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        # Answered before the body ended (a body too large or too slow): the rest of it must
        # not keep the connection, byte by byte, past the keep-alive timer.
        unread = self.cycle is not None and self.cycle.more_body
        super().on_response_complete()
        if unread and not self.transport.is_closing():
            self.transport.close()

    def _start_head(self) -> None:
        if not self._in_head:
            self._head_bytes = 0
        self._in_head = True
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_late)

    def _stop_head(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self._in_head and not self.transport.is_closing():
            self._refuse(408, "the request head did not arrive in time")

    def _refuse(self, status: int, message: str) -> None:
        self._stop_head()
        body = message.encode()
        self.transport.write(
            _REFUSALS[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
            + body
        )
        self.transport.close()


class GuardedHttpToolsProtocol(_GuardedProtocol):
    """The default limits, importable by name: worker processes get ``http`` as a string."""


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol bounded by ``limits`` (uvicorn takes a class for ``http``)."""
    if limits == Limits():
        return GuardedHttpToolsProtocol
    return type("GuardedHttpToolsProtocol", (_GuardedProtocol,), {"limits": limits})
