"""The httpx transport csflow uses, and the one place httpx's exceptions become error kinds.

The transport was chosen by measurement (bench/README.md): httpx's API over aiohttp's
connection pool (``httpx-aiohttp``) makes a 3-call conversation 1.5-8x faster than httpcore's
pool on this machine's two cores, and keeps the httpx API that zeep and gql need.
``CSFLOW_TRANSPORT=httpcore`` selects httpx's own transport instead.

``CappedTransport`` wraps whichever transport a connection uses (tests' mocks included):
it decodes ``gzip`` and ``deflate`` itself, a chunk at a time with ``max_length``, and counts
the decoded bytes against the connection's cap, so a gzip bomb stops at the cap instead of
being inflated whole. httpx's own decoders inflate each chunk without a limit.
"""

from __future__ import annotations

import functools
import os
import ssl
import zlib
from collections.abc import AsyncIterator

import httpx
from httpx_aiohttp import AiohttpTransport  # imported with the project, not in a first run

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
    return AiohttpTransport(limits=limits, trust_env=False, verify=_tls())


class BodyTooLarge(StepError):
    """A response body (after decoding) is over the connection's ``max_response_bytes``."""

    def __init__(self, cap: int) -> None:
        super().__init__("parse", f"the response body is over {cap} bytes", retryable=False)
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
                    raise BodyTooLarge(cap) from None
            size += len(chunk)
            if size > cap:
                raise BodyTooLarge(cap)
            if chunk:
                yield chunk
        if inflater is not None:
            tail = inflater.flush()
            if size + len(tail) > cap:
                raise BodyTooLarge(cap)
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


def _aiohttp_cause(exc: BaseException) -> tuple[bool, bool]:
    """(never connected, broke after sending) as aiohttp, under httpx-aiohttp, tells it."""
    cause = exc.__cause__
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        return False, False
    if isinstance(cause, aiohttp.ClientConnectorError):
        return True, False
    broke = isinstance(
        cause, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError | aiohttp.ClientPayloadError
    )
    return False, broke


def _sent_before_failing(exc: BaseException) -> bool:
    """Whether the request may have reached the server before ``exc``."""
    never, _ = _aiohttp_cause(exc)
    if never:
        return False  # never connected: nothing was sent
    if isinstance(exc, httpx.ConnectError | httpx.PoolTimeout):
        return False
    return not (isinstance(exc, httpx.ConnectTimeout) and exc.__cause__ is None)


def translate(exc: httpx.HTTPError, *, what: str) -> tuple[StepError, bool]:
    """One httpx (or transport) exception as the error kind of §7, and whether it was sent.

    ``what`` names the call in the message. The caller decides what "sent" means for a write.
    """
    sent = _sent_before_failing(exc)
    _, broke = _aiohttp_cause(exc)
    detail = str(exc) or type(exc).__name__
    if broke or isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        # httpx-aiohttp maps a dropped connection to ConnectTimeout: it is not a timeout.
        return StepError(
            "connect", f"{what}: the connection broke after the request was sent ({detail})"
        ), True
    if isinstance(exc, httpx.TimeoutException):
        if not sent:
            return StepError("connect", f"{what}: could not connect in time"), False
        return StepError("timeout", f"{what}: no answer in time"), True
    if isinstance(exc, httpx.DecodingError):
        return StepError("parse", f"{what}: the body could not be decoded ({detail})"), True
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return StepError("validation", f"{what}: {detail}"), False
    if isinstance(exc, httpx.TooManyRedirects):
        return StepError("http_status", f"{what}: too many redirects"), True
    if isinstance(exc, httpx.TransportError) and not sent:
        return StepError("connect", f"{what}: could not connect ({detail})"), False
    return StepError(
        "connect", f"{what}: the connection broke after the request was sent ({detail})"
    ), True
