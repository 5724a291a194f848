"""Alternatives to csflow's REST transport, measured by monkeypatching the adapters.

``python -m bench.experiments.transports [--levels 10,100] [--rounds 3] [--seconds 1.5]``

Not part of ``python -m bench``: these are prototypes that justify (or not) a change to
``adapters/``. Each variant runs the bench's ``wismo3`` flow (or a script) against the Demo
Shop in its own process, in interleaved rounds, like part 2 of the bench.

- ``csflow``: as shipped (httpx over httpx-aiohttp).
- ``csflow, thin httpx transport``: httpx-aiohttp's transport without its per-request header
  rescans, with a cached ``ClientTimeout`` and a pre-parsed ``yarl.URL``.
- ``csflow, native aiohttp``: ``HttpConnection.send`` on an ``aiohttp.ClientSession`` per connection
  and loop, with bearer auth as a default header. This is a prototype; see bench/README.md for
  what a real change would also need.
- ``script: ...``: the hand-written scripts of part 2, for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
from collections.abc import Awaitable, Callable
from time import perf_counter, process_time
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp.transport import AiohttpResponseStream, AiohttpTransport, map_aiohttp_exceptions
from multidict import CIMultiDict

import csflow.adapters.connections as connections
from bench import noise, wismo
from bench.shop import TOKEN, ShopProcess


class ThinTransport(AiohttpTransport):
    _timeouts: dict[tuple[Any, ...], aiohttp.ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(self.client, aiohttp.ClientSession):
            self.client = self.get_client()
        t = request.extensions.get("timeout", {})
        key = (t.get("connect"), t.get("read"), t.get("pool"))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
            self._timeouts[key] = timeout
        headers = CIMultiDict(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        )
        with map_aiohttp_exceptions():
            response = await self.client._request(
                request.method,
                yarl.URL(str(request.url), encoded=True),
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=timeout,
            )
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=AiohttpResponseStream(response),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )


def thin_transport(max_connections: int = 100) -> httpx.AsyncBaseTransport:
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    return ThinTransport(limits=limits, trust_env=False)


class _Response:
    """What the ``http`` action reads of a response."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status: int, headers: Any, content: bytes) -> None:
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode()


async def native_send(
    self: Any,
    method: str,
    path: str,
    view: Any = None,
    *,
    params: Any = None,
    headers: Any = None,
    content: bytes | None = None,
    write: bool | None = None,
) -> Any:
    sessions = self.__dict__.setdefault("_sessions", {})
    loop = asyncio.get_running_loop()
    session = sessions.get(loop)
    if session is None:
        session = sessions[loop] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.model.max_connections),
            timeout=aiohttp.ClientTimeout(total=self.model.timeout),
            headers={"Authorization": self._auth._header},  # the prototype knows bearer only
        )
    # The prototype makes reads only (the WISMO GETs): no write to gate, nothing to count.
    async with session.request(
        method,
        self.base_url + path,
        params=connections._clean(params),
        headers=headers,
        data=content,
    ) as r:
        body = await r.read()
    return _Response(r.status, r.headers, self.redactor.bytes(body))


async def _close_native(project: Any) -> None:
    for conn in project.connections:
        for session in conn.__dict__.pop("_sessions", {}).values():
            await session.close()
    await project.connections.aclose_loop()


Talk = Callable[[], Awaitable[Any]]


async def _cell(
    talk: Talk, close: Callable[[], Awaitable[None]], c: int, seconds: float
) -> tuple[float, float]:
    await talk()
    n, cpu = 0, []
    start = perf_counter() + 0.3
    end = start + seconds

    async def worker() -> None:
        nonlocal n
        while perf_counter() < end:
            await talk()
            if start <= perf_counter() <= end:
                n += 1

    async def clock() -> None:
        await asyncio.sleep(0.3)
        cpu.append(process_time())
        await asyncio.sleep(seconds)
        cpu.append(process_time())

    await asyncio.gather(clock(), *(worker() for _ in range(c)))
    await close()
    return n / seconds, (cpu[1] - cpu[0]) / max(n, 1) * 1e6


def variants(rest_url: str) -> dict[str, Callable[[int, float], tuple[float, float]]]:
    clients = {c.key: c for c in wismo.contenders(rest_url, TOKEN)}
    csflow = clients["csflow"]
    assert isinstance(csflow, wismo.CsflowFlow)

    def as_is(c: int, s: float) -> tuple[float, float]:
        return asyncio.run(_cell(csflow.talk, csflow.close, c, s))

    def thin(c: int, s: float) -> tuple[float, float]:
        saved, connections.make_transport = connections.make_transport, thin_transport
        try:
            return asyncio.run(_cell(csflow.talk, csflow.close, c, s))
        finally:
            connections.make_transport = saved

    def native(c: int, s: float) -> tuple[float, float]:
        saved, connections.HttpConnection.send = connections.HttpConnection.send, native_send  # type: ignore[method-assign]
        try:
            return asyncio.run(_cell(csflow.talk, lambda: _close_native(csflow.project), c, s))
        finally:
            connections.HttpConnection.send = saved  # type: ignore[method-assign]

    def script(key: str) -> Callable[[int, float], tuple[float, float]]:
        client = clients[key]

        def run(c: int, s: float) -> tuple[float, float]:
            async def go() -> tuple[float, float]:
                await client.open()
                return await _cell(client.talk, client.close, c, s)

            return asyncio.run(go())

        return run

    return {
        "csflow": as_is,
        "csflow, thin httpx transport": thin,
        "csflow, native aiohttp": native,
        "script: httpx over httpx-aiohttp": script("httpx_aiohttp"),
        "script: aiohttp": script("aiohttp"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.experiments.transports", description=__doc__
    )
    parser.add_argument("--levels", default="10,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.5)
    args = parser.parse_args()
    client_core, server_core = noise.pick_cores(0, 1)
    if client_core is not None:
        noise.pin(client_core)
    print("\n".join(noise.header("transport experiments", client_core, server_core)[0]))
    with ShopProcess(server_core) as shop:
        runs = variants(shop.rest_url)
        for level in (int(x) for x in args.levels.split(",")):
            results: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
            for r in range(args.rounds):
                for name in runs if r % 2 == 0 else list(reversed(runs)):
                    gc.collect()
                    results[name].append(runs[name](level, args.seconds))
            base = max(rate for rate, _ in results["csflow"])
            for name, cells in results.items():
                best = max(rate for rate, _ in cells)
                cpu = statistics.median(cpu for _, cpu in cells)
                print(
                    f"c={level:<3} {name:<34} best {best:6.0f} conv/s (x{best / base:.2f})  "
                    f"client CPU {cpu:5.0f} µs/conversation (median)",
                    flush=True,
                )


if __name__ == "__main__":
    main()
