"""The httpx transport csflow uses, and the one place wire failures become error kinds.

The transport was chosen by measurement (bench/README.md): httpx's API over aiohttp's
connection pool (``httpx-aiohttp``) makes a 3-call conversation 1.5-8x faster than httpcore's
pool on this machine's two cores, and keeps the httpx API that zeep and gql need.
``CSFLOW_TRANSPORT=httpcore`` selects httpx's own transport instead. ``WireTransport`` is
httpx-aiohttp's with two fixes: the URL goes out exactly as encoded (yarl would decode
``%2E%2E`` and drop the segment: ``/customers/%2E%2E/orders`` must not become ``/orders``),
and aiohttp's exceptions are mapped by what happened (httpx-aiohttp calls a refused
connection a connect timeout, and lets "not HTTP" through as aiohttp's own error).

``CappedTransport`` wraps whichever transport a connection uses (tests' mocks included):
it decodes ``gzip`` and ``deflate`` itself, a chunk at a time with ``max_length``, and counts
the decoded bytes against the connection's cap, so a gzip bomb stops at the cap instead of
being inflated whole. httpx's own decoders inflate each chunk without a limit.
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
import ssl
import zlib
from collections.abc import AsyncIterator

import aiohttp
import h11
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport

from csflow.engine.errors import StepError

ACCEPT_ENCODING = "gzip, deflate"  # what CappedTransport can decode under its cap


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context per process: loading the CA bundle costs ~20 ms, every new loop's
    client (each ``run_sync``) and every token request would pay it inside its deadline."""
    return httpx.create_ssl_context(trust_env=False)


def make_transport(max_connections: int = 100) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if os.environ.get("CSFLOW_TRANSPORT", "aiohttp") == "httpcore":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=_tls())
    return WireTransport(limits=limits, trust_env=False, verify=_tls())


class NotHttp(httpx.RemoteProtocolError):
    """The server answered with bytes that are not an HTTP response."""


def _from_aiohttp(exc: BaseException, request: httpx.Request) -> httpx.TransportError:
    """aiohttp's exception as the httpx one that says what happened (the cause is kept)."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(str(exc), request=request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(str(exc) or "connect timeout", request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(str(exc) or "read timeout", request=request)
    if isinstance(exc, aiohttp.ClientResponseError):
        # A status line or headers that are not HTTP. The raw bytes stay out of the message.
        return NotHttp("the answer was not HTTP", request=request)
    return httpx.ReadError(str(exc) or type(exc).__name__, request=request)


class _WireStream(httpx.AsyncByteStream):
    CHUNK_SIZE = 1024 * 16

    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(self.CHUNK_SIZE):
                yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _from_aiohttp(exc, self._request) from exc

    async def aclose(self) -> None:
        self._response.release()


@functools.lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


def _timeout(given: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    """httpx's per-request timeouts as aiohttp's, made once per distinct set."""
    if not given:
        return _client_timeout(None, None, None)
    return _client_timeout(given.get("connect"), given.get("read"), given.get("pool"))


class WireTransport(AiohttpTransport):
    """httpx-aiohttp's transport, sending the URL exactly as encoded, errors mapped honestly."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)  # aiohttp chunks it itself
        try:
            response = await self.client.request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers,  # measured: faster than a CIMultiDict made here
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_timeout(request.extensions.get("timeout")),
                server_hostname=request.extensions.get("sni_hostname"),
            ).__aenter__()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _from_aiohttp(exc, request) from exc
        extensions = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_WireStream(response, request),
            request=request,
            extensions=extensions,
        )


class ResponseTooLarge(httpx.DecodingError):
    """A response body (after decoding) is over the connection's ``max_response_bytes``."""

    def __init__(self, cap: int) -> None:
        super().__init__(f"the response body is over {cap} bytes")
        self.cap = cap


class _Inflater:
    """One content-encoding, inflated at most ``room`` bytes per chunk."""

    def __init__(self, encoding: str) -> None:
        self.gzip = encoding in ("gzip", "x-gzip")
        self.first = True
        self._d = zlib.decompressobj(zlib.MAX_WBITS | 16 if self.gzip else zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        try:
            if self.first and not self.gzip:
                self.first = False
                try:
                    return self._take(data, room)
                except zlib.error:  # "deflate" that is raw deflate, as some servers send
                    self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._take(data, room)
        except zlib.error as exc:
            raise httpx.DecodingError(f"the body could not be decompressed ({exc})") from None

    def _take(self, data: bytes, room: int) -> bytes:
        out = self._d.decompress(data, room + 1)
        if len(out) > room:  # stopped at the limit with input left: over the cap
            raise _Over
        return out

    def flush(self) -> bytes:
        try:
            return self._d.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"the body could not be decompressed ({exc})") from None


class _Over(Exception):
    pass


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, cap: int, inflater: _Inflater | None) -> None:
        self._inner = inner
        self._cap = cap
        self._inflater = inflater

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size, cap, inflater = 0, self._cap, self._inflater
        async for chunk in self._inner:
            if inflater is not None:
                try:
                    chunk = inflater.feed(chunk, cap - size)
                except _Over:
                    raise ResponseTooLarge(cap) from None
            size += len(chunk)
            if size > cap:
                raise ResponseTooLarge(cap)
            if chunk:
                yield chunk
        if inflater is not None:
            tail = inflater.flush()
            if size + len(tail) > cap:
                raise ResponseTooLarge(cap)
            if tail:
                yield tail

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    """``inner`` with every response body capped at ``max_bytes``, decoded or not."""

    def __init__(self, inner: httpx.AsyncBaseTransport, max_bytes: int) -> None:
        self.inner = inner
        self.max_bytes = max_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
        inflater = None
        if encoding not in ("", "identity"):
            if encoding not in ("gzip", "x-gzip", "deflate"):
                await response.aclose()
                raise httpx.DecodingError(
                    f"the body's content-encoding '{encoding}' is not one csflow accepts"
                    f" ({ACCEPT_ENCODING})",
                    request=request,
                )
            inflater = _Inflater(encoding)
            # Decoded here: httpx must not decode again, and the length is no longer true.
            del response.headers["Content-Encoding"]
            response.headers.pop("Content-Length", None)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _CappedStream(stream, self.max_bytes, inflater)  # unread: swap in place
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# ------------------------------------------------------------------------------- errors

_DNS = (socket.gaierror, aiohttp.ClientConnectorDNSError)
_TLS = (ssl.SSLError, ssl.CertificateError, aiohttp.ClientSSLError)


def _why_not_connected(exc: BaseException) -> str:
    """What kept a connection from being made, read from the exception's causes."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; never loop on a cycle
        if seen is None:
            break
        if isinstance(seen, _DNS):
            return "the host name could not be resolved (DNS)"
        if isinstance(seen, _TLS):
            return f"the TLS handshake failed ({_first_line(seen)})"
        if isinstance(seen, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(seen, aiohttp.ClientConnectorError) and seen.os_error is not seen:
            seen = seen.os_error
            continue
        seen = seen.__cause__ or seen.__context__
    return f"could not connect ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _not_http(exc: BaseException) -> bool:
    """Whether the server's answer was not HTTP (aiohttp's parser, or h11's under httpcore)."""
    if isinstance(exc, NotHttp):
        return True
    seen: BaseException | None = exc
    for _ in range(4):  # httpx's error, from httpcore's, from h11's
        if seen is None:
            return False
        if isinstance(seen, h11.RemoteProtocolError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _broke(exc: BaseException) -> bool:
    """Whether aiohttp (under httpx-aiohttp) says the connection broke after sending."""
    cause = exc.__cause__
    return isinstance(
        cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    ) and not isinstance(cause, aiohttp.ClientConnectorError)


def translate(exc: httpx.HTTPError, *, what: str) -> tuple[StepError, bool]:
    """One httpx (or transport) exception as the error kind of §7, and whether it was sent.

    ``what`` names the call in the message. The caller decides what "sent" means for a write.
    """
    if isinstance(exc, ResponseTooLarge):
        return StepError("parse", f"{what}: {exc}", retryable=False), True
    if _not_http(exc):
        return StepError("connect", f"{what}: the server's answer was not HTTP"), True
    if isinstance(exc, httpx.ConnectError | httpx.PoolTimeout) or (
        isinstance(exc, httpx.ConnectTimeout) and not _broke(exc)
    ):
        if isinstance(exc, httpx.TimeoutException):
            return StepError("connect", f"{what}: could not connect in time"), False
        return StepError("connect", f"{what}: {_why_not_connected(exc)}"), False
    detail = _first_line(exc)
    if _broke(exc) or isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return StepError(
            "connect", f"{what}: the connection broke after the request was sent ({detail})"
        ), True
    if isinstance(exc, httpx.TimeoutException):
        return StepError("timeout", f"{what}: no answer in time"), True
    if isinstance(exc, httpx.DecodingError):
        return StepError("parse", f"{what}: the body could not be decoded ({detail})"), True
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return StepError("validation", f"{what}: {detail}"), False
    if isinstance(exc, httpx.TooManyRedirects):
        return StepError("http_status", f"{what}: too many redirects"), True
    return StepError(
        "connect", f"{what}: the connection broke after the request was sent ({detail})"
    ), True
