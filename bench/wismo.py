"""WISMO conversations per second, csflow beside hand-written asyncio clients.

Every cell is a closed loop: ``c`` workers on one event loop, each starting its next
conversation when its last one ends, for a fixed time after a warm-up. A conversation is the
same three calls for everyone: the orders of shipped@demo.shop, the latest order, then its
parcel's tracking, each body parsed as JSON, then a one-line reply. Each cell gets a fresh event
loop and fresh clients (one shared client for all workers, as csflow has one per connection).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from csflow import Project

EMAIL = "shipped@demo.shop"
TRACKING = "1Z999AA10123456784"  # the seeded parcel of ORD-1003, what every reply must name
BENCH_PROJECT = Path(__file__).resolve().parent / "project"
SHIPPED_PROJECT = Path(__file__).resolve().parent.parent / "flows"
MAX_CONNECTIONS = 100  # csflow's default per connection; the scripts get the same pool
TIMEOUT = 10.0  # the bench project's connection timeout; the scripts get the same
SAME_TRANSPORT_TARGET = 0.85
P99_TARGET = 1.25

# --------------------------------------------------------------------------------- clients


class Client:
    """One contender: ``open`` makes its client on the running loop, ``talk`` is one conversation."""

    key = ""
    label = ""
    calls = 3
    env: dict[str, str] = {}

    async def open(self) -> None: ...

    async def talk(self) -> str:
        raise NotImplementedError

    async def close(self) -> None: ...

    def note(self) -> str:
        return ""


def _reply(order: dict[str, Any], tracking: dict[str, Any]) -> str:
    return f"Your order {order['number']} is {tracking['status']}: tracking number {tracking['tracking_number']}."


class HttpxScript(Client):
    """Hand-written: httpx.AsyncClient, on its default transport or on ``transport``."""

    def __init__(self, url: str, token: str, *, aiohttp_transport: bool) -> None:
        self.url, self.token, self.aiohttp_transport = url, token, aiohttp_transport
        self.key = "httpx_aiohttp" if aiohttp_transport else "httpx"
        self.label = (
            "script: httpx over httpx-aiohttp"
            if aiohttp_transport
            else "script: httpx (httpcore pool)"
        )
        self.client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        )
        transport = (
            AiohttpTransport(limits=limits, trust_env=False) if self.aiohttp_transport else None
        )
        self.client = httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            limits=limits,
            timeout=TIMEOUT,
            transport=transport,
            trust_env=False,
        )

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        assert self.client is not None
        r = await self.client.get(path, params=params)
        r.raise_for_status()
        return json.loads(r.content)

    async def talk(self) -> str:
        orders = await self._get("/orders", {"email": EMAIL})
        number = max(orders, key=lambda o: o["created_at"])["number"]
        order = await self._get(f"/orders/{number}")
        tracking = await self._get(f"/tracking/{order['shipments'][-1]['tracking_number']}")
        return _reply(order, tracking)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class AiohttpScript(Client):
    key = "aiohttp"
    label = "script: aiohttp"

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {self.token}"},
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT),
        )

    async def _get(self, path: str, params: dict[str, str] | None = None) -> Any:
        assert self.session is not None
        async with self.session.get(self.url + path, params=params) as r:
            r.raise_for_status()
            return json.loads(await r.read())

    async def talk(self) -> str:
        orders = await self._get("/orders", {"email": EMAIL})
        number = max(orders, key=lambda o: o["created_at"])["number"]
        order = await self._get(f"/orders/{number}")
        tracking = await self._get(f"/tracking/{order['shipments'][-1]['tracking_number']}")
        return _reply(order, tracking)

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class CsflowFlow(Client):
    """``Project.run(flow, {"email": ...})``; a failed run counts as an error."""

    def __init__(
        self, project: Project, flow: str, key: str, label: str, calls: int, env: dict[str, str]
    ) -> None:
        self.project, self.flow, self.key, self.label, self.calls, self.env = (
            project,
            flow,
            key,
            label,
            calls,
            env,
        )
        self.inputs = {"email": EMAIL}

    async def talk(self) -> str:
        result = await self.project.run(self.flow, self.inputs)
        if result.status != "completed":
            raise RuntimeError(f"{self.flow} failed: {result.error}")
        return result.reply or ""

    def note(self) -> str:
        clients = [c for conn in self.project.connections for c in conn._clients.values()]
        return type(clients[0]._transport).__name__ if clients else ""

    async def close(self) -> None:
        await self.project.connections.aclose_loop()


def contenders(rest_url: str, token: str) -> list[Client]:
    """Every contender, the three that the targets compare first, so they run side by side."""
    os.environ["DEMO_SHOP_URL"] = rest_url
    os.environ["DEMO_SHOP_TOKEN"] = token
    bench = Project.load(BENCH_PROJECT)
    try:
        shipped: Project | None = Project.load(SHIPPED_PROJECT)
    except Exception as exc:  # the shipped flows are not the bench's: report, go on without
        print(
            f"   (the shipped project {SHIPPED_PROJECT} did not load, so no 'shipped' row: {exc})"
        )
        shipped = None
    found: list[Client] = [
        CsflowFlow(bench, "wismo3", "csflow", "csflow wismo3 (3 calls)", 3, {}),
        HttpxScript(rest_url, token, aiohttp_transport=True),
        AiohttpScript(rest_url, token),
        HttpxScript(rest_url, token, aiohttp_transport=False),
        CsflowFlow(
            bench,
            "wismo3",
            "csflow_httpcore",
            "csflow wismo3, CSFLOW_TRANSPORT=httpcore",
            3,
            {"CSFLOW_TRANSPORT": "httpcore"},
        ),
    ]
    if shipped is not None and "wismo" in shipped.flows:
        found.append(
            CsflowFlow(shipped, "wismo", "shipped", "csflow shipped wismo (1 call)", 1, {})
        )
    return found


KEY_CONTENDERS = frozenset({"csflow", "httpx_aiohttp", "aiohttp"})  # measured in every round


# ------------------------------------------------------------------------------- measuring


@dataclass
class Cell:
    rate: float  # conversations per second
    p50: float  # ms
    p99: float  # ms
    cpu_us: float  # client CPU per conversation, µs
    server_busy: float | None = None  # share of its core the Demo Shop used, 0-1
    errors: int = 0
    error: str = ""
    note: str = ""

    def text(self) -> str:
        out = f"{self.rate:6.0f} ({_ms(self.p50)}/{_ms(self.p99)})"
        if self.errors:
            out += f" {self.errors} err"
        return out


def _ms(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


ServerClock = Callable[[], float | None]


async def _cell(
    client: Client, concurrency: int, warmup: float, duration: float, server_cpu: ServerClock
) -> Cell:
    await client.open()
    try:
        reply = await client.talk()
        if TRACKING not in reply and "1Z999" not in reply:
            raise RuntimeError(f"{client.label}: unexpected reply {reply!r}")
        note = client.note()
        latencies: list[float] = []
        errors: list[str] = []
        start = perf_counter() + warmup
        end = start + duration
        cpu: list[float] = []
        server: list[float | None] = []

        async def worker() -> None:
            while True:
                t0 = perf_counter()
                if t0 >= end:
                    return
                try:
                    await client.talk()
                except Exception as exc:  # counted and shown, never hidden
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                t1 = perf_counter()
                if start <= t1 <= end:
                    latencies.append(t1 - t0)

        async def clock() -> None:
            await asyncio.sleep(max(0.0, start - perf_counter()))
            cpu.append(process_time())
            server.append(server_cpu())
            await asyncio.sleep(max(0.0, end - perf_counter()))
            cpu.append(process_time())
            server.append(server_cpu())

        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        timer = asyncio.create_task(clock())
        _, pending = await asyncio.wait(tasks, timeout=warmup + duration + TIMEOUT * 3 + 5)
        for task in pending:
            task.cancel()
        await timer
        n = len(latencies)
        latencies.sort()
        return Cell(
            rate=n / duration,
            p50=statistics.median(latencies) * 1000 if n else float("nan"),
            p99=latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
            cpu_us=(cpu[1] - cpu[0]) / n * 1e6 if n else float("nan"),
            server_busy=(server[1] - server[0]) / duration
            if server[0] is not None and server[1] is not None
            else None,
            errors=len(errors),
            error=errors[0] if errors else "",
            note=note,
        )
    finally:
        await client.close()


def measure(
    client: Client,
    concurrency: int,
    warmup: float,
    duration: float,
    loop: str = "asyncio",
    server_cpu: ServerClock = lambda: None,
) -> Cell:
    saved = {k: os.environ.get(k) for k in client.env}
    os.environ.update(client.env)  # read when the run's first call makes the connection's client
    # Each contender's long-lived heap (a loaded project, a script's client) is frozen out of
    # the cyclic GC's sight, as `csflow serve` does for its own (serve.app.settle_heap): a
    # full collection otherwise walks the loaded project again and again, which is the bench
    # measuring the GC's walk of a heap the served process never frees.
    gc.collect()
    gc.freeze()
    factory = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(_cell(client, concurrency, warmup, duration, server_cpu))
    finally:
        gc.unfreeze()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@dataclass
class WismoFigures:
    levels: list[int]
    rounds: int
    warmup: float
    duration: float
    loop: str = "asyncio"
    labels: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    cells: dict[tuple[str, int], Cell] = field(default_factory=dict)


def run(
    rest_url: str,
    token: str,
    quick: bool,
    only_clients: set[str] | None = None,
    progress: Callable[[str], None] | None = None,
    loop: str = "asyncio",
    server_cpu: ServerClock = lambda: None,
) -> WismoFigures:
    """Every contender at c=1, 10, 100. Cells alternate between contenders, level by level, and
    each cell keeps its best round (noise only ever slows a run down). The three contenders the
    targets compare get every round; the others half of them."""
    levels = [1, 10, 100]
    rounds, warmup, duration = (1, 0.25, 1.0) if quick else (4, 0.3, 1.2)
    clients = contenders(rest_url, token)
    if only_clients:
        clients = [c for c in clients if c.key in only_clients]
    figures = WismoFigures(levels, rounds, warmup, duration, loop)
    for c in clients:
        figures.labels[c.key] = c.label
        figures.calls[c.key] = c.calls
    for level in levels:
        for r in range(rounds):
            chosen = [c for c in clients if c.key in KEY_CONTENDERS or r % 2 == 0]
            # Alternate the order between rounds, so no contender always runs first.
            for client in chosen if r % 2 == 0 else list(reversed(chosen)):
                cell = measure(client, level, warmup, duration, loop, server_cpu)
                best = figures.cells.get((client.key, level))
                if best is None or cell.rate > best.rate:
                    figures.cells[(client.key, level)] = cell
                if progress:
                    progress(f"  c={level:<3} round {r + 1}: {client.label:<44} {cell.text()}")
    return figures


# -------------------------------------------------------------------------------- printing


def _ratio(figures: WismoFigures, a: str, b: str, level: int, attr: str = "rate") -> float | None:
    x, y = figures.cells.get((a, level)), figures.cells.get((b, level))
    if x is None or y is None or not getattr(y, attr):
        return None
    return getattr(x, attr) / getattr(y, attr)


def report(f: WismoFigures, core_note: str) -> list[str]:
    width = 44
    lines = [
        "2. WISMO conversations per second (p50/p99 ms); " + core_note,
        f"   closed loop, c workers sharing one client, {f.loop} event loop; best of {f.rounds} round(s) "
        f"of {f.duration:g} s per cell after {f.warmup:g} s warm-up (httpcore, httpx, shipped: "
        f"{max(1, (f.rounds + 1) // 2)} round(s))",
        "   " + " " * width + "".join(f"{'c=' + str(c):>22}" for c in f.levels),
    ]
    for key, label in f.labels.items():
        row = "".join(
            f"{f.cells[(key, c)].text():>22}" if (key, c) in f.cells else f"{'-':>22}"
            for c in f.levels
        )
        lines.append(f"   {label:<{width}}{row}")
    lines.append("   client CPU per conversation, µs [Demo Shop's core busy, %]")
    for key, label in f.labels.items():
        cells = []
        for c in f.levels:
            cell = f.cells.get((key, c))
            if cell is None:
                cells.append(f"{'-':>22}")
                continue
            busy = f" [{cell.server_busy * 100:3.0f}%]" if cell.server_busy is not None else ""
            cells.append(f"{f'{cell.cpu_us:.0f}{busy}':>22}")
        lines.append(f"   {'  ' + label:<{width}}{''.join(cells)}")

    def ratio_row(
        label: str, a: str, b: str, target: float | None = None, attr: str = "rate"
    ) -> None:
        cells = []
        for c in f.levels:
            r = _ratio(f, a, b, c, attr)
            if r is not None and attr == "cpu_us":
                r = 1 / r  # CPU: lower is better, so b/a reads like a throughput ratio
            if r is None:
                cells.append(f"{'-':>22}")
                continue
            mark = "" if target is None else ("  ok" if r >= target else "  MISS")
            cells.append(f"{r:>18.2f}{mark:<4}")
        lines.append(f"   {label:<{width}}{''.join(cells)}")

    lines.append("   ratios (conversations/s)")
    ratio_row(
        f"csflow / same-transport script (>= {SAME_TRANSPORT_TARGET})",
        "csflow",
        "httpx_aiohttp",
        SAME_TRANSPORT_TARGET,
    )
    ratio_row("csflow / aiohttp script (the one that counts)", "csflow", "aiohttp")
    ratio_row("csflow / plain httpx script", "csflow", "httpx")
    ratio_row("csflow on httpcore / csflow", "csflow_httpcore", "csflow")
    ratio_row("same-transport script / aiohttp script", "httpx_aiohttp", "aiohttp")
    lines.append("   ratios of client CPU per conversation (theirs / csflow's: 1.0 = as lean)")
    ratio_row("csflow vs same-transport script", "csflow", "httpx_aiohttp", attr="cpu_us")
    ratio_row("csflow vs aiohttp script", "csflow", "aiohttp", attr="cpu_us")
    p99 = _ratio(f, "csflow", "httpx_aiohttp", 100, "p99")
    if p99 is not None:
        verdict = "met" if p99 <= P99_TARGET else "NOT met"
        lines.append(
            f"   p99 at c=100, csflow / same-transport script: {p99:.2f}   target <= {P99_TARGET}: {verdict}"
        )
    errors = [(f.labels[k], c, cell) for (k, c), cell in f.cells.items() if cell.errors]
    for label, c, cell in errors:
        lines.append(f"   errors: {label} at c={c}: {cell.errors}, first: {cell.error[:120]}")
    seen = [
        f"{f.labels[k]}: {f.cells[(k, f.levels[0])].note}"
        for k in ("csflow", "csflow_httpcore")
        if (k, f.levels[0]) in f.cells
    ]
    if seen:
        lines.append("   transports seen: " + "; ".join(seen))
    return lines


def profile(rest_url: str, token: str, concurrency: int = 10, seconds: float = 3.0) -> None:
    """cProfile of csflow's 3-call flow under load: the top costs inside the client process."""
    import cProfile
    import pstats

    client = contenders(rest_url, token)[0]
    prof = cProfile.Profile()

    async def main() -> None:
        await client.open()
        try:
            await client.talk()
            end = perf_counter() + seconds
            count = 0

            async def worker() -> None:
                nonlocal count
                while perf_counter() < end:
                    await client.talk()
                    count += 1

            prof.enable()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            prof.disable()
            print(f"cProfile: {count} csflow wismo3 conversations at c={concurrency}, by own time")
        finally:
            await client.close()

    asyncio.run(main())
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(30)
    stats.sort_stats("cumulative").print_stats(r"engine|adapters|actions", 30)
