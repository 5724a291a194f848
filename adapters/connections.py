"""One object per connection: its httpx client, auth, limits, secrets and redaction.

Every protocol's calls go through ``HttpConnection.send``: timeouts, the size cap,
redirects, redaction, the idempotency key and error kinds live here once. Clients are pooled
and reused across runs, one per event loop (``asyncio.run`` in ``run_sync`` starts a new loop
each time). The host check and the call's gate (``adapters.calls.GateTransport``) sit in the
client's transport, so they see every request that leaves, after auth and for each redirect.

``Connections`` is the engine's ``Gateway``: ``for_call(call)`` gives one call's view.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from httpx._client import UseClientDefault  # the type of httpx.USE_CLIENT_DEFAULT

from csflow.adapters.auth import AuthSetupError, CustomAuthError, build_auth
from csflow.adapters.calls import (
    OUTBOUND,
    READ_METHODS,
    WRITE_METHODS,
    CallView,
    GateTransport,
    Outbound,
)
from csflow.adapters.http_client import RequestUrls, SharedClient
from csflow.adapters.rate_limit import RateLimit
from csflow.adapters.shared import SharedState, open_shared_state
from csflow.adapters.transport import ACCEPT_ENCODING, CappedTransport, make_transport, translate
from csflow.engine.errors import StepError
from csflow.engine.model import Connection as ConnectionModel
from csflow.engine.ports import Call
from csflow.engine.redaction import Redactor
from csflow.engine.urls import is_loopback

MAX_REDIRECTS = 5
MAX_KEY_HEADER = 255  # longer keys go as their hash: servers cap the header (Stripe: 255)
# What a key keeps as it is: printable ASCII and the space, as a header value may hold them.
# '%' is encoded, so that two different keys never send the same header.
_KEY_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) != "%")


def idempotency_header(key: str, what: str) -> str:
    """The ``Idempotency-Key`` header for a rendered key: any text, the same on every attempt.

    >>> idempotency_header("addr-Bahnhofstraße 5", "POST shop/x")
    'addr-Bahnhofstra%C3%9Fe 5'
    """
    try:
        value = quote(key, safe=_KEY_SAFE)
    except UnicodeEncodeError:
        raise StepError(
            "validation", f"{what}: the idempotency_key is not text that can be sent"
        ) from None
    if len(value) > MAX_KEY_HEADER:
        value = "sha256-" + hashlib.sha256(key.encode()).hexdigest()
    return value


class HttpConnection:
    """A connection of ``connections.yaml`` made real: its clients, auth and secrets."""

    def __init__(
        self,
        name: str,
        model: ConnectionModel,
        root: Path,
        environ: Mapping[str, str],
        state: SharedState,
    ) -> None:
        self.name = name
        self.model = model
        self.root = root
        self.base_url = (model.base_url or model.url or "").rstrip("/")
        parts = urlsplit(self.base_url)
        self.origin = (parts.scheme, parts.hostname, parts.port)
        self.urls = RequestUrls(self.base_url)
        self.redactor = Redactor()
        self.rate_limit = (
            RateLimit(name, self.base_url or model.wsdl or "", model.rate_limit, state)
            if model.rate_limit
            else None
        )
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}
        self._closers: dict[
            asyncio.AbstractEventLoop, tuple[AsyncGenerator[None, None], object]
        ] = {}
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
                state=state,
            )
        except CustomAuthError as exc:
            self._auth_error = f"connection '{name}': {exc}"
            self.problem = (exc.key, str(exc))
        except AuthSetupError as exc:
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
            client = SharedClient(
                base_url=self.base_url,
                auth=self._auth,
                headers={"Accept-Encoding": ACCEPT_ENCODING, **self.model.headers},
                timeout=httpx.Timeout(self.model.timeout),
                follow_redirects=self.model.follow_redirects,
                max_redirects=MAX_REDIRECTS,
                transport=self._gated(self.model.max_connections),
                trust_env=False,
            )
            self._clients[loop] = client
            self._close_at_loop_end(loop, client)
        return client

    def _close_at_loop_end(
        self, loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient
    ) -> None:
        """Close ``client`` when its loop ends, even if nobody calls ``aclose``.

        ``asyncio.run`` closes every live async generator before it closes the loop
        (``shutdown_asyncgens``): one that holds the client and closes it in ``finally`` makes
        a bare ``asyncio.run(project.run(...))`` end without aiohttp's "Unclosed connector".
        """

        async def closer() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                if self._clients.get(loop) is client:
                    del self._clients[loop]
                await client.aclose()

        watcher = closer()
        # Held here: the loop holds its async generators (and a task) only weakly.
        self._closers[loop] = (watcher, asyncio.ensure_future(watcher.asend(None)))

    def use_transport(self, factory: Callable[[int], httpx.AsyncBaseTransport] | None) -> None:
        """The next clients go through ``factory``'s transport (None: the default one)."""
        self.transport_factory = factory
        self._clients.clear()
        self._closers.clear()

    def _transport(self, max_connections: int) -> httpx.AsyncBaseTransport:
        inner = (self.transport_factory or make_transport)(max_connections)
        return CappedTransport(inner, self.model.max_response_bytes)

    def _gated(self, max_connections: int) -> httpx.AsyncBaseTransport:
        return GateTransport(self._transport(max_connections), self)

    def check_destination(self, url: httpx.URL) -> None:
        """A request may only go to the connection's own origin, over https off loopback."""
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

    async def aclose(self) -> None:
        clients, self._clients, self._closers = list(self._clients.values()), {}, {}
        for client in clients:
            with contextlib.suppress(RuntimeError):  # its loop is gone: nothing left to close
                await client.aclose()

    async def aclose_loop(self) -> None:
        """Close the running loop's client: ``run_sync`` calls this before its loop ends."""
        loop = asyncio.get_running_loop()
        self._closers.pop(loop, None)
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    # -- one call -----------------------------------------------------------------------------

    async def send(
        self,
        method: str,
        path: str,
        view: CallView | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        write: bool | None = None,
    ) -> httpx.Response:
        """Send one request of ``view``'s call and read its body; failures are StepErrors.

        ``write`` overrides the method's say (a GraphQL query is a POST that reads). Without
        a view (``csflow inspect``), nothing is counted and no idempotency key is sent.
        """
        method = method.upper()
        is_write = method in WRITE_METHODS if write is None else write
        what = f"{method} {self.name}{path}"
        hdrs = _checked_headers(headers, what)
        extensions: dict[str, Any] | None = None
        timeout: float | UseClientDefault = httpx.USE_CLIENT_DEFAULT
        if view is not None:
            call = view.call
            view.intend(is_write)
            if call.idempotency_key is not None:
                hdrs["Idempotency-Key"] = idempotency_header(call.idempotency_key, what)
            hold = method not in READ_METHODS if self.model.type == "rest" else is_write
            extensions = {OUTBOUND: Outbound(view, is_write, hold, what)}
            if call.timeout:  # the step's own; else the client's, made once per connection
                timeout = call.timeout
        client = self.client()
        url, query = self.urls.target(path, params)
        request = client.build_request(
            method, url, params=query, headers=hdrs, content=content,
            timeout=timeout, extensions=extensions,
        )  # fmt: skip
        try:
            response = await client.send(request, stream=True)
        except StepError as err:  # the gate's, or a redirect's host check after a write left
            if is_write and view is not None and view.wrote:
                err = err.with_outcome(err.outcome or "unknown")
            raise err.redacted(self.redactor.text) from None
        except httpx.HTTPError as exc:  # raised before the gate: auth's own requests, say
            error, _ = translate(exc, what=what)
            raise error.redacted(self.redactor.text) from None
        try:
            response._content = await self._read(response, what)
        except StepError as lost:
            if view is not None and is_write and lost.outcome is None:
                # The status came: a success was done; otherwise whether it was, nobody knows.
                lost = lost.with_outcome("done" if response.status_code < 300 else "unknown")
            raise lost from None
        finally:
            await response.aclose()
        if response.is_redirect and not self.model.follow_redirects:
            raise self._not_followed(response, what)
        return response

    def _not_followed(self, response: httpx.Response, what: str) -> StepError:
        location = self.redactor.text(response.headers.get("Location", ""))
        return StepError(
            "http_status",
            f"{what} answered {response.status_code}, a redirect to {location!r}; the"
            " connection does not follow redirects (follow_redirects: true follows them on"
            " the same host)",
            status=response.status_code,
        )

    async def _read(self, response: httpx.Response, what: str) -> bytes:
        # The capped stream straight, not httpx's aiter_bytes: CappedTransport already decoded
        # it, and httpx's decoders and chunker would only copy it again.
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            body = b"".join([chunk async for chunk in stream])
        except httpx.HTTPError as exc:
            error, _ = translate(exc, what=what)
            raise error.redacted(self.redactor.text) from None
        return self.redactor.bytes(body)

    def redact(self, text: str) -> str:
        return self.redactor.text(text)


def _same_default_port(url: httpx.URL, origin: tuple[Any, ...]) -> bool:
    defaults = {"http": 80, "https": 443}
    port = url.port or defaults.get(url.scheme)
    oport = origin[2] or defaults.get(origin[0])
    return (url.scheme, url.host, port) == (origin[0], origin[1], oport)


def _checked_headers(headers: Mapping[str, str] | None, what: str) -> dict[str, str]:
    if not headers:
        return {}
    out = dict(headers)
    for key, value in out.items():
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise StepError("validation", f"{what}: header '{key}' contains a line break")
    return out


class Connections:
    """The project's connections by name: the engine's ``Gateway`` (``engine.ports``).

    ``state`` is what they share with every process (OAuth tokens, rate limits); by default
    the one ``CSFLOW_REDIS`` names, else this process's own (``adapters.shared``).
    """

    def __init__(
        self,
        models: Mapping[str, ConnectionModel | None],
        root: Path,
        environ: Mapping[str, str] | None = None,
        state: SharedState | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        self.state = open_shared_state(env) if state is None else state
        self._by_name = {
            name: HttpConnection(name, model, root, env, self.state)
            for name, model in models.items()
            if model is not None
        }

    def for_call(self, call: Call) -> CallView:
        """One call's view of the connections: what ``ctx.http`` and ``ctx.connection`` reach."""
        return CallView(self, call)

    def get(self, name: str) -> HttpConnection:
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

    def __iter__(self) -> Iterator[HttpConnection]:
        return iter(self._by_name.values())

    def use_transport(self, factory: Callable[[int], httpx.AsyncBaseTransport] | None) -> None:
        """Make every connection's next client on ``factory``'s transport (None: the default).

        >>> project.connections.use_transport(lambda n: httpx.MockTransport(handler))
        """
        for conn in self._by_name.values():
            conn.use_transport(factory)

    async def aclose(self) -> None:
        for conn in self._by_name.values():
            await conn.aclose()

    async def aclose_loop(self) -> None:
        for conn in self._by_name.values():
            await conn.aclose_loop()
