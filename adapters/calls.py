"""One call's view of the connections, and the gate every request of it passes on the wire.

The engine hands ``Connections.for_call`` a frozen ``Call``; the ``CallView`` it gets back is
what ``ctx.http(name)`` and ``ctx.connection(name)`` reach, and it alone counts what the
call sends. A request carries its call on ``Request.extensions`` (``OUTBOUND``), not in a
context variable: the connection's transport (``GateTransport``) reads it there, for every
request that leaves, after auth and for each redirect.

The gate is chosen by the run: a live call records a write in the run store
(``before_write``) and lets it go; a dry run's gate keeps a write back and answers for the
server with an empty ``202``, remembering what would have been sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from csflow.adapters.transport import translate
from csflow.engine.context import ActionContext
from csflow.engine.ports import Call, HttpAnswer, Traffic

if TYPE_CHECKING:
    from csflow.adapters.connections import Connections, HttpConnection

OUTBOUND = "csflow.outbound"  # the Request.extensions key of a request's ``Outbound``
WRITE_METHODS = frozenset({"POST", "PATCH"})  # not idempotent: a retry could do it twice
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # what a dry run still sends
KEPT_BACK_BODY_LIMIT = 4000


@dataclass(frozen=True, slots=True)
class Outbound:
    """What the gate must know of one request: whose call it is, and whether it writes.

    ``hold`` is whether a dry run keeps it back: for REST anything but a read method, for SOAP
    and GraphQL what the action calls a write.
    """

    view: CallView
    write: bool
    hold: bool
    what: str


class CallView:
    """The connections as one call sees them: it counts what the call sends (``traffic``)."""

    __slots__ = ("_clients", "_connections", "_kept_back", "_sent", "_write", "_wrote", "call")

    def __init__(self, connections: Connections, call: Call) -> None:
        self.call = call
        self._connections = connections
        self._clients: dict[str, CallClient] | None = None  # made for ctx.http only
        self._write = False
        self._sent = False
        self._wrote = False
        self._kept_back: dict[str, object] | None = None

    # -- the port (engine.ports.CallConnections) --------------------------------------------

    def connection(self, name: str) -> HttpConnection:
        return self._connections.get(name)

    def http(self, name: str) -> CallClient:
        if self._clients is None:
            self._clients = {}
        client = self._clients.get(name)
        if client is None:
            client = self._clients[name] = CallClient(self._connections.get(name), self)
        return client

    def traffic(self) -> Traffic:
        return Traffic(self._write, self._sent, self._wrote, self._kept_back)

    # -- what the adapters tell it -------------------------------------------------------------

    def intend(self, write: bool) -> None:
        """A request is about to be made (before auth): a write that fails now was not sent."""
        if write:
            self._write = True

    @property
    def wrote(self) -> bool:
        """A write of this call has left."""
        return self._wrote

    def mark(self) -> tuple[bool, bool]:
        return self._sent, self._wrote

    def unmark(self, mark: tuple[bool, bool]) -> None:
        """The request never left (no connection was made): what was sent before still was."""
        self._sent, self._wrote = mark

    async def leaving(self, out: Outbound, request: httpx.Request) -> httpx.Response | None:
        """The gate: None lets the request go; a response stands in for a kept-back write."""
        if self.call.dry_run and out.hold:
            self._write = self._write or out.write
            self._kept_back = self._would_send(request)
            return httpx.Response(202, request=request)  # empty: the action parses no data
        if out.write:
            self._write = True
            if not self._wrote and self.call.before_write is not None:
                await self.call.before_write()
            self._wrote = True
        self._sent = True
        return None

    def _would_send(self, request: httpx.Request) -> dict[str, object]:
        """What a kept-back request would have sent: method, URL and body, secrets redacted."""
        body = request.content.decode("utf-8", errors="replace") if request.content else None
        if body is not None and len(body) > KEPT_BACK_BODY_LIMIT:
            body = body[:KEPT_BACK_BODY_LIMIT] + "…"
        redact = self._connections.redact
        return {
            "method": request.method,
            "url": redact(str(request.url)),
            "body": redact(body) if body is not None else None,
        }


class CallClient:
    """``ctx.http(name)``: the connection's shared httpx client, with this call on each request.

    Writes are told by their method (POST and PATCH). ``client`` is the shared client itself,
    for what this view does not offer; requests made on it are not counted as the call's.
    """

    __slots__ = ("_conn", "_view")

    def __init__(self, conn: HttpConnection, view: CallView) -> None:
        self._conn = conn
        self._view = view

    @property
    def client(self) -> httpx.AsyncClient:
        return self._conn.client()

    def _outbound(self, method: str, url: str) -> dict[str, Any]:
        method = method.upper()
        write = method in WRITE_METHODS
        self._view.intend(write)
        out = Outbound(self._view, write, method not in READ_METHODS, f"{method} {url}")
        return {OUTBOUND: out}

    def build_request(self, method: str, url: str, **kwargs: Any) -> httpx.Request:
        extensions = {**kwargs.pop("extensions", {}), **self._outbound(method, url)}
        return self.client.build_request(method, url, extensions=extensions, **kwargs)

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        return await self.client.send(request, **kwargs)

    async def request(self, method: str, url: str, **kwargs: Any) -> HttpAnswer:
        extensions = {**kwargs.pop("extensions", {}), **self._outbound(method, url)}
        return await self.client.request(method, url, extensions=extensions, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("GET", url, **kwargs)

    async def head(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("HEAD", url, **kwargs)

    async def options(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("OPTIONS", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> HttpAnswer:
        return await self.request("DELETE", url, **kwargs)


class GateTransport(httpx.AsyncBaseTransport):
    """A connection's outermost transport: the host check, the call's gate, and its errors.

    Every request passes here once per hop (redirects included) after auth. A request with
    no ``Outbound`` (an OAuth token request, ``csflow inspect``) only gets the host check.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, conn: HttpConnection) -> None:
        self.inner = inner
        self.conn = conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.conn.check_destination(request.url)
        out: Outbound | None = request.extensions.get(OUTBOUND)
        limit = self.conn.rate_limit
        if out is None:
            if limit is not None:  # no call's deadline: the connection's own timeout
                deadline = asyncio.get_running_loop().time() + self.conn.model.timeout
                await limit.slot(deadline, f"{request.method} {self.conn.name}")
            return await self.inner.handle_async_request(request)
        view = out.view
        if limit is not None and not (view.call.dry_run and out.hold):  # a kept-back write stays
            await limit.slot(view.call.deadline, out.what)
        mark = view.mark()
        stand_in = await view.leaving(out, request)
        if stand_in is not None:
            return stand_in
        try:
            return await self.inner.handle_async_request(request)
        except httpx.HTTPError as exc:
            error, sent = translate(exc, what=out.what)
            if not sent:
                view.unmark(mark)
            elif out.write:
                error = error.with_outcome("unknown")  # it left; whether it was done, nobody knows
            raise error.redacted(self.conn.redactor.text) from None

    async def aclose(self) -> None:
        await self.inner.aclose()


def bind(ctx: ActionContext, name: str) -> tuple[HttpConnection, CallView]:
    """A built-in action's connection ``name`` and its call's view, from ``ctx``."""
    view = ctx.connections
    if not isinstance(view, CallView):
        raise TypeError(f"the built-in actions run on csflow's own connections, not {view!r}")
    return view.connection(name), view
