"""The httpx transport csflow uses, and the one place httpx's exceptions become error kinds.

The transport was chosen by measurement (bench/README.md): httpx's API over aiohttp's
connection pool (``httpx-aiohttp``) makes a 3-call conversation 1.5-8x faster than httpcore's
pool on this machine's two cores, and keeps the httpx API that zeep and gql need.
``CSFLOW_TRANSPORT=httpcore`` selects httpx's own transport instead.
"""

from __future__ import annotations

import os

import httpx

from engine.errors import StepError


def make_transport(max_connections: int = 100) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if os.environ.get("CSFLOW_TRANSPORT", "aiohttp") == "httpcore":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    from httpx_aiohttp import AiohttpTransport

    return AiohttpTransport(limits=limits, trust_env=False)


def _sent_before_failing(exc: BaseException) -> bool:
    """Whether the request may have reached the server before ``exc``."""
    cause = exc.__cause__
    try:
        import aiohttp
    except ImportError:  # pragma: no cover
        aiohttp = None  # type: ignore[assignment]
    if aiohttp is not None and isinstance(cause, aiohttp.ClientConnectorError):
        return False  # never connected: nothing was sent
    if isinstance(exc, httpx.ConnectError | httpx.PoolTimeout):
        return False
    return not (isinstance(exc, httpx.ConnectTimeout) and cause is None)


def translate(exc: httpx.HTTPError, *, what: str) -> tuple[StepError, bool]:
    """One httpx (or transport) exception as the error kind of §7, and whether it was sent.

    ``what`` names the call in the message. The caller decides what "sent" means for a write.
    """
    sent = _sent_before_failing(exc)
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        if not sent:
            return StepError("connect", f"{what}: could not connect in time"), False
        return StepError("timeout", f"{what}: no answer in time"), True
    if isinstance(exc, httpx.DecodingError):
        return StepError("parse", f"{what}: the body could not be decoded ({detail})"), True
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return StepError("validation", f"{what}: {detail}"), False
    if isinstance(exc, httpx.TransportError) and not sent:
        return StepError("connect", f"{what}: could not connect ({detail})"), False
    return StepError(
        "connect", f"{what}: the connection broke after the request was sent ({detail})"
    ), True
