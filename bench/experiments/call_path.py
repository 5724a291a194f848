"""Client CPU of the per-call path alone: csflow and the httpx script over one canned transport.

``python -m bench.experiments.call_path [--concurrency 10] [--conversations 3000] [--rounds 5]``

Both contenders get the same in-process ``httpx.AsyncBaseTransport`` that answers the three
WISMO calls with fixed JSON, so there is no socket, no aiohttp and no Demo Shop: what is left
is each side's own work per conversation (csflow: the engine, the action, the connection, its
gate and capped stream; the script: httpx's client). Rounds alternate the two on fresh loops;
the figure is client CPU per conversation, min and median of the rounds. It is steadier than
part 2 of the bench on a shared machine, and it is what found the URL parsing
(``adapters/http_client.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
from collections.abc import AsyncIterator
from time import process_time

import httpx

from bench.wismo import BENCH_PROJECT, Client, CsflowFlow, HttpxScript
from csflow import Project

BASE = "http://127.0.0.1:9/api"  # never dialled: the canned transport answers
_ORDERS = [
    {"number": "ORD-1001", "created_at": "2026-01-01"},
    {"number": "ORD-1003", "created_at": "2026-02-01"},
]
_ORDER = {"number": "ORD-1003", "status": "shipped", "shipments": [{"tracking_number": "1Z9"}]}
_TRACKING = {"tracking_number": "1Z9", "status": "in_transit"}
BODIES = {k: json.dumps(v).encode() for k, v in (("orders", _ORDERS), ("order", _ORDER))}
BODIES["tracking"] = json.dumps(_TRACKING).encode()
HEADERS = [(b"content-type", b"application/json"), (b"server", b"canned")]


class _Body(httpx.AsyncByteStream):
    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body


class Canned(httpx.AsyncBaseTransport):
    """The three WISMO answers by path, after one trip round the loop (as a socket would)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        key = (
            "orders" if path.endswith("/orders") else "order" if "/orders/" in path else "tracking"
        )
        await asyncio.sleep(0)
        return httpx.Response(200, headers=HEADERS, stream=_Body(BODIES[key]), request=request)


class CannedScript(HttpxScript):
    async def open(self) -> None:
        self.client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            transport=Canned(),
            timeout=10.0,
            trust_env=False,
        )


def csflow() -> Client:
    os.environ["DEMO_SHOP_URL"], os.environ["DEMO_SHOP_TOKEN"] = BASE, "canned"
    project = Project.load(BENCH_PROJECT)
    for connection in project.connections:
        connection.use_transport(lambda _: Canned())
    return CsflowFlow(project, "wismo3", "csflow", "csflow wismo3", 3, {})


def script() -> Client:
    return CannedScript(BASE, "canned", aiohttp_transport=False)


async def cpu_per_conversation(client: Client, concurrency: int, conversations: int) -> float:
    await client.open()
    try:
        for _ in range(50):  # warm: the client is made, the plans' first-run caches filled
            await client.talk()
        gc.collect()
        left = conversations

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.talk()

        start = process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return (process_time() - start) / conversations * 1e6
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--conversations", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"csflow wismo3": [], "script: httpx": []}
    for _ in range(args.rounds):
        for label, make in (("csflow wismo3", csflow), ("script: httpx", script)):
            cost = asyncio.run(cpu_per_conversation(make(), args.concurrency, args.conversations))
            figures[label].append(cost)
    print(f"client CPU per conversation over a canned transport, c={args.concurrency}, µs")
    for label, costs in figures.items():
        print(f"  {label:15s} min {min(costs):6.1f}   median {statistics.median(costs):6.1f}")
    ours, theirs = (statistics.median(v) for v in figures.values())
    print(f"  csflow / script: {ours / theirs:.2f}x the CPU")


if __name__ == "__main__":
    main()
