"""A fault-injecting HTTP/1.1 server on 127.0.0.1 (port 0), in a thread of its own.

Raw asyncio rather than an ASGI app, so that it can do what a well-behaved server never does:
answer slowly, trickle a body a byte at a time, reset the connection after reading the
request, cut a body short, lie about its length, or inflate into a gzip bomb.

Answers are scripted per path: ``server.script("/orders", status(503), json({...}))`` answers
the first request to /orders with a 503 and every later one with the JSON (the last answer
repeats). Every request is recorded (``server.requests``, ``server.hits(path)``), with the
time it arrived. A script entry may also be a function of the request that returns the
answer, for servers with state (``OAuthServer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import inspect
import json as jsonlib
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

Answer = Callable[["Request", asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode()))


def _head(status: int, headers: dict[str, str] | None, length: int | None) -> bytes:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
    hdrs = {"Connection": "close", **(headers or {})}
    if length is not None and "Content-Length" not in hdrs:
        hdrs["Content-Length"] = str(length)
    lines += [f"{k}: {v}" for k, v in hdrs.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


_REASONS = {200: "OK", 201: "Created", 302: "Found", 401: "Unauthorized", 429: "Too Many Requests"}


# ---------------------------------------------------------------------------- answers


def raw(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Answer:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(status, headers, len(body)) + body)
        await writer.drain()

    return answer


def json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Answer:
    body = jsonlib.dumps(data).encode()
    return raw(status, body, {"Content-Type": "application/json", **(headers or {})})


def status(code: int, headers: dict[str, str] | None = None, body: bytes = b"") -> Answer:
    return raw(code, body, headers)


def html(text: str = "<!doctype html><html><body><h1>Sign in</h1></body></html>") -> Answer:
    return raw(200, text.encode(), {"Content-Type": "text/html; charset=utf-8"})


def xml(text: str, code: int = 200) -> Answer:
    return raw(code, text.encode(), {"Content-Type": "application/xml"})


def redirect(location: str, code: int = 302) -> Answer:
    return raw(code, b"", {"Location": location})


def echo() -> Answer:
    """The request back as JSON: headers, query and body (a server that echoes credentials)."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        data = {"headers": request.headers, "query": request.query, "body": request.body.decode()}
        await json(data)(request, writer)

    return answer


def slow(delay: float, then: Answer | None = None) -> Answer:
    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(delay)  # a slow merchant: the fault being served
        await (then or json({"slow": True}))(request, writer)

    return answer


def hang() -> Answer:
    """Read the request and never answer."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)  # a merchant that never answers: the fault being served

    return answer


def trickle(interval: float = 0.05, piece: bytes = b" ") -> Answer:
    """Headers at once, then one piece of a (never complete) body every ``interval``.

    Each piece comes well within any read timeout, so only a deadline stops it.
    """

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/json"}, 10_000_000))
        writer.write(b'{"pad": "')
        while True:
            await writer.drain()
            await asyncio.sleep(interval)  # the trickle is the fault being served
            writer.write(piece)

    return answer


def reset() -> Answer:
    """Read the request, then reset the connection (RST) without a word."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    return answer


def truncated(declared: int = 1000, sent: bytes = b'{"status": "SHP", "no') -> Answer:
    """Promise ``declared`` bytes, send ``sent``, close."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/json"}, declared) + sent)
        await writer.drain()

    return answer


def huge(size: int, chunk: int = 64 * 1024) -> Answer:
    """A JSON string body of ``size`` bytes, streamed."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        writer.write(_head(200, {"Content-Type": "application/json"}, size) + b'"')
        left = size - 2
        block = b"a" * chunk
        while left > 0:
            writer.write(block[: min(chunk, left)])
            left -= chunk
            await writer.drain()
        writer.write(b'"')
        await writer.drain()

    return answer


@functools.cache
def bomb_bytes(size: int, encoding: str = "gzip") -> bytes:
    """``size`` zero bytes compressed (about 1000:1), made once per process."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31 if encoding == "gzip" else 15)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def gzip_bomb(size: int = 1 << 30, encoding: str = "gzip") -> Answer:
    """A body that is a few hundred KB on the wire and ``size`` bytes once inflated."""
    body = bomb_bytes(size, encoding)
    return raw(200, body, {"Content-Type": "application/json", "Content-Encoding": encoding})


def gzipped(data: Any) -> Answer:
    body = gzip.compress(jsonlib.dumps(data).encode())
    return raw(200, body, {"Content-Type": "application/json", "Content-Encoding": "gzip"})


def call(fn: Callable[[Request], Any], then: Answer) -> Answer:
    """Run ``fn(request)`` (in the server's thread) when the request arrives, then ``then``."""

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        fn(request)
        await then(request, writer)

    return answer


# ----------------------------------------------------------------------------- server

Script = Answer | Callable[[Request], Answer]


class FaultServer:
    """``with FaultServer() as server: server.url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._scripts: dict[str, list[Script]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, path: str, *answers: Script) -> FaultServer:
        with self._lock:
            self._scripts[path] = list(answers)
        return self

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()

    def _next(self, request: Request) -> Answer:
        with self._lock:
            self.requests.append(request)
            queue = self._scripts.get(request.path)
            if not queue:
                return json({"error": f"nothing scripted for {request.path}"}, status=404)
            entry = queue.pop(0) if len(queue) > 1 else queue[0]
        if inspect.iscoroutinefunction(entry):
            return entry  # type: ignore[return-value]
        return entry(request)  # type: ignore[call-arg,return-value]  # a function of the request

    # -- the loop in its thread --------------------------------------------------------------

    def __enter__(self) -> FaultServer:
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the fault server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def _serve(self, started: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        server = loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 20, backlog=1024)
        )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:  # wait for the cancelled answers to end
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await _read_request(reader)
            if request is not None:
                await self._next(request)(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    parts = urlsplit(target)
    return Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)


# ------------------------------------------------------------------------------ OAuth


class OAuthServer:
    """A token endpoint and a protected resource on a FaultServer.

    ``/oauth/token`` issues ``tok-N`` (client credentials, or a refresh token that rotates:
    only the latest one is accepted). ``/api/*`` paths scripted with ``protected(answer)``
    answer 401 to anything but a live token. ``expire()`` kills every token issued so far,
    as a server-side expiry would.
    """

    def __init__(
        self,
        server: FaultServer,
        *,
        client_id: str,
        client_secret: str,
        expires_in: float = 3600,
        refresh_token: str | None = None,
        rotate: bool = True,
        token_delay: float = 0.0,
    ) -> None:
        self.server = server
        self.client_id, self.client_secret = client_id, client_secret
        self.expires_in = expires_in
        self.refresh_token = refresh_token
        self.rotate = rotate
        self.token_delay = token_delay
        self.issued = 0
        self.live: set[str] = set()
        self.refused: list[str] = []  # refresh tokens the endpoint did not accept
        self.unauthorized = 0  # protected calls answered 401
        server.script("/oauth/token", self._token)

    @property
    def token_url(self) -> str:
        return f"{self.server.url}/oauth/token"

    def expire(self) -> None:
        self.live.clear()

    def token_requests(self) -> list[Request]:
        return self.server.hits("/oauth/token")

    def _token(self, request: Request) -> Answer:
        import base64

        auth = request.headers.get("authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        form = request.form()
        if auth != f"Basic {expected}":
            return json({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        body: dict[str, Any] = {}
        if grant == "refresh_token":
            if form.get("refresh_token") != self.refresh_token:
                self.refused.append(form.get("refresh_token", ""))
                return json({"error": "invalid_grant"}, status=400)
            if self.rotate:
                self.refresh_token = f"rt-{self.issued + 1}-rotated-refresh"
                body["refresh_token"] = self.refresh_token
        elif grant != "client_credentials":
            return json({"error": "unsupported_grant_type"}, status=400)
        self.issued += 1
        token = f"tok-{self.issued}-access-token"
        self.live.add(token)
        body.update(access_token=token, token_type="Bearer", expires_in=self.expires_in)
        return slow(self.token_delay, json(body)) if self.token_delay else json(body)

    def protected(self, then: Answer) -> Callable[[Request], Answer]:
        def check(request: Request) -> Answer:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            if token not in self.live:
                self.unauthorized += 1
                return json({"error": "invalid_token"}, status=401)
            return then

        return check
