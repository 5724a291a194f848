"""One object per connection: its httpx client, auth, limits, secrets and redaction.

Every protocol's calls go through ``Connection.send``: timeouts, the host check, the body
size cap, redirects, redaction and error kinds live here once. Clients are pooled and reused
across runs, one per event loop (``asyncio.run`` in ``run_sync`` starts a new loop each time).

The request hook runs for every request that leaves, after auth and for each redirect: it
checks the host and the scheme, and tells the action's context that the request is going
(``ctx.about_to_send``), which records a write in the run store before it is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import os
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from csflow.adapters.auth import CustomAuthError, UnsupportedAuth, build_auth
from csflow.adapters.secrets import Redactor
from csflow.adapters.transport import (
    ACCEPT_ENCODING,
    BodyTooLarge,
    CappedTransport,
    make_transport,
    translate,
)
from csflow.adapters.urls import is_loopback
from csflow.engine.context import CURRENT
from csflow.engine.errors import StepError, WriteSkipped

WRITE_METHODS = frozenset({"POST", "PATCH"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_REDIRECTS = 5

# The context of the call ``Connection.send`` is making, and whether that call is a write.
_SENDING: ContextVar[tuple[Any, bool] | None] = ContextVar("csflow_sending", default=None)


class Connection:
    def __init__(self, name: str, model: Any, root: Path, environ: Mapping[str, str]) -> None:
        self.name = name
        self.model = model
        self.root = root
        self.base_url = (model.base_url or model.url or "").rstrip("/")
        parts = urlsplit(self.base_url)
        self.origin = (parts.scheme, parts.hostname, parts.port)
        self.redactor = Redactor()
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        # Tests and flow tests swap the transport (httpx.MockTransport), never internals.
        self.transport_factory: Callable[[int], httpx.AsyncBaseTransport] | None = None
        # A problem the project load reports with its place: (key under auth, message).
        self.problem: tuple[str, str] | None = None
        self._auth: httpx.Auth | None = None
        self._auth_error: str | None = None
        try:
            self._auth = build_auth(
                model.auth,
                root,
                self.redactor,
                environ,
                name=name,
                timeout=model.timeout,
                transport=lambda: self._transport(2),
                allow_insecure_http=model.allow_insecure_http,
            )
        except CustomAuthError as exc:
            self._auth_error = f"connection '{name}': {exc}"
            self.problem = (exc.key, str(exc))
        except UnsupportedAuth as exc:
            self._auth_error = str(exc)
        except OSError as exc:
            self._auth_error = f"cannot read a secret of connection '{name}': {exc.strerror}"

    @property
    def auth(self) -> httpx.Auth | None:
        return self._auth

    # -- the client ---------------------------------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        """This loop's client for the connection, made on first use and then reused."""
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            if self._auth_error:
                raise StepError("auth", self._auth_error)
            client = httpx.AsyncClient(
                base_url=self.base_url,
                auth=self._auth,
                headers={"Accept-Encoding": ACCEPT_ENCODING, **self.model.headers},
                timeout=httpx.Timeout(self.model.timeout),
                follow_redirects=self.model.follow_redirects,
                max_redirects=MAX_REDIRECTS,
                transport=self._transport(self.model.max_connections),
                event_hooks={"request": [self._on_request]},
                trust_env=False,
            )
            self._clients[loop] = client
        return client

    def _transport(self, max_connections: int) -> httpx.AsyncBaseTransport:
        inner = (self.transport_factory or make_transport)(max_connections)
        return CappedTransport(inner, self.model.max_response_bytes)

    async def _on_request(self, request: httpx.Request) -> None:
        """Every request that leaves, redirects included: where it goes, and whether it is sent."""
        url = request.url
        if (url.scheme, url.host, url.port) != self.origin and not _same_default_port(
            url, self.origin
        ):
            raise StepError(
                "validation",
                f"connection '{self.name}' may only call {self.base_url}, not {url.host}"
                " (redirects to another host are never followed)",
            )
        if (
            url.scheme == "http"
            and not is_loopback(url.host)
            and not self.model.allow_insecure_http
        ):
            raise StepError("validation", f"plain http to {url.host} is refused: use https")
        sending = _SENDING.get()
        if sending is not None:
            ctx, write = sending
        else:  # an action calling through ctx.http(...): writes are told by their method
            ctx, write = CURRENT.get(), request.method in WRITE_METHODS
        if ctx is not None and getattr(ctx, "dry_run", False):
            # A dry run reads for real and sends no write: for REST anything but a read method,
            # for SOAP and GraphQL what the action calls a write.
            skip = request.method not in READ_METHODS if self.model.type == "rest" else write
            if skip:
                raise WriteSkipped(self._would_send(request))
        if ctx is not None:
            about = getattr(ctx, "about_to_send", None)
            if about is not None:
                await about(write=write)
            else:  # a context of an older shape: only the flags
                ctx.sent = True

    def _would_send(self, request: httpx.Request) -> dict[str, object]:
        body = request.content.decode("utf-8", errors="replace") if request.content else None
        if body is not None and len(body) > 4000:
            body = body[:4000] + "…"
        return {
            "method": request.method,
            "url": self.redactor.text(str(request.url)),
            "body": self.redactor.text(body) if body is not None else None,
        }

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # its loop is gone: nothing left to close
                await client.aclose()

    async def aclose_loop(self) -> None:
        """Close the running loop's client: ``run_sync`` calls this before its loop ends."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    # -- one call -----------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        *,
        ctx: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        write: bool | None = None,
    ) -> httpx.Response:
        """Send one request and read its body under the size cap; failures are StepErrors.

        ``ctx`` (the action's context) learns whether a write was sent, so that a lost
        answer is recorded as ``outcome: unknown``, and records the run before a write
        leaves. ``write`` overrides the method's say (a GraphQL query is a POST that reads).
        """
        method = method.upper()
        is_write = method in WRITE_METHODS if write is None else write
        what = f"{method} {self.name}{path}"
        hdrs = dict(headers or {})
        for key, value in hdrs.items():
            if "\r" in str(value) or "\n" in str(value) or "\r" in key or "\n" in key:
                raise StepError("validation", f"{what}: header '{key}' contains a line break")
        if ctx is None:
            ctx = CURRENT.get()  # inside an action's ctx.connection(...).send(...)
        if ctx is not None:
            ctx.write = ctx.write or is_write
            if ctx.idempotency_key:
                hdrs["Idempotency-Key"] = ctx.idempotency_key
            was_sent, had_written = ctx.sent, getattr(ctx, "wrote", False)
        client = self.client()
        timeout = getattr(ctx, "timeout", None) or self.model.timeout
        token = _SENDING.set((ctx, is_write))
        try:
            request = client.build_request(
                method, path, params=_clean(params), headers=hdrs, content=content, timeout=timeout
            )
            response = await client.send(request, stream=True)
        except StepError as refused:
            refused.message = self.redactor.text(refused.message)
            if ctx is not None and is_write and getattr(ctx, "wrote", ctx.sent):
                refused.outcome = refused.outcome or "unknown"  # a redirect broke the cap, say
            raise
        except httpx.HTTPError as exc:
            error, sent = translate(exc, what=what)
            if ctx is not None:
                if not sent:  # the hook ran, but nothing left: never connected
                    ctx.sent = was_sent
                    if hasattr(ctx, "wrote"):
                        ctx.wrote = had_written
                if is_write and sent and getattr(ctx, "wrote", ctx.sent):
                    error.outcome = "unknown"  # it left; whether it was done, nobody knows
            error.message = self.redactor.text(error.message)
            raise error from None
        finally:
            _SENDING.reset(token)
        try:
            response._content = await self._read(response, what)
        except StepError as lost:
            if ctx is not None and is_write and lost.outcome is None:
                # The status came: a success was done; otherwise whether it was, nobody knows.
                lost.outcome = "done" if response.status_code < 300 else "unknown"
            raise
        finally:
            await response.aclose()
        if response.is_redirect and not self.model.follow_redirects:
            location = response.headers.get("Location", "")
            raise StepError(
                "http_status",
                f"{what} answered {response.status_code}, a redirect to"
                f" {self.redactor.text(location)!r}; the connection does not follow redirects"
                " (follow_redirects: true follows them on the same host)",
                status=response.status_code,
            )
        return response

    async def _read(self, response: httpx.Response, what: str) -> bytes:
        chunks = []
        try:
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
        except BodyTooLarge as exc:
            raise StepError("parse", f"{what}: {exc.message}", retryable=False) from None
        except httpx.HTTPError as exc:
            error, _ = translate(exc, what=what)
            error.message = self.redactor.text(error.message)
            raise error from None
        return self.redactor.bytes(b"".join(chunks))

    def redact(self, text: str) -> str:
        return self.redactor.text(text)


def _same_default_port(url: httpx.URL, origin: tuple[Any, ...]) -> bool:
    defaults = {"http": 80, "https": 443}
    port = url.port or defaults.get(url.scheme)
    oport = origin[2] or defaults.get(origin[0])
    return (url.scheme, url.host, port) == (origin[0], origin[1], oport)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue  # an unset variable leaves its parameter out, rather than send "None"
        out[key] = jsonlib.dumps(value) if isinstance(value, dict) else value
    return out


class Connections:
    """The project's connections by name: the engine's one handle on the adapters."""

    def __init__(
        self, models: Mapping[str, Any], root: Path, environ: Mapping[str, str] | None = None
    ) -> None:
        env = os.environ if environ is None else environ
        self._by_name = {
            name: Connection(name, model, root, env)
            for name, model in models.items()
            if model is not None
        }

    def get(self, name: str) -> Connection:
        try:
            return self._by_name[name]
        except KeyError:
            raise StepError("validation", f"unknown connection '{name}'") from None

    def client(self, name: str) -> httpx.AsyncClient:
        return self.get(name).client()

    def redact(self, text: str) -> str:
        """``text`` with every secret of every connection (and every token obtained) as ***."""
        for conn in self._by_name.values():
            text = conn.redactor.text(text)
        return text

    def problems(self) -> list[tuple[str, str, str]]:
        """(connection, key under ``auth``, message) for what the project load must report."""
        return [(c.name, *c.problem) for c in self._by_name.values() if c.problem is not None]

    def __iter__(self) -> Any:
        return iter(self._by_name.values())

    def use_transport(self, factory: Callable[[int], httpx.AsyncBaseTransport] | None) -> None:
        """Make every connection's next client on ``factory``'s transport (None: the default).

        >>> project.connections.use_transport(lambda n: httpx.MockTransport(handler))
        """
        for conn in self._by_name.values():
            conn.transport_factory = factory
            conn._clients.clear()

    async def aclose(self) -> None:
        for conn in self._by_name.values():
            await conn.aclose()

    async def aclose_loop(self) -> None:
        for conn in self._by_name.values():
            await conn.aclose_loop()
