"""The channels server's own cost: WISMO through Zipchat's endpoint, beside a direct Project.run.

Both rows run the shipped ``wismo`` flow for ORD-1003 / shipped@demo.shop (one REST call to
the Demo Shop) in closed loops of c = 10 and 100 workers:

- *direct*: ``Project.run`` in this process, pinned to the client core;
- *zipchat*: ``csflow serve`` in its own process, pinned to the same core, called over HTTP
  (``GET /zipchat/order`` with ``x-api-key``) by an aiohttp load generator on the other core,
  next to the Demo Shop. Every answer must be a 200 whose context names the tracking number.

Both run on uvloop (uvicorn's loop), so that the difference is the server: uvicorn, Starlette,
the channel (key check, templates, JSON), the access log line. CPU per conversation comes from
/proc for the server process and from ``process_time`` for the direct runs, so it does not
depend on where the load generator ran.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, perf_counter, process_time

import aiohttp
import uvloop

from csflow.project import Project

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "flows"
INPUTS = {"order_number": "ORD-1003", "email": "shipped@demo.shop"}
QUERY = {"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"}
TRACKING = "1Z999AA10123456784"
KEYS = {
    "CSFLOW_API_KEY": "bench-api-key",
    "ZIPCHAT_API_KEY": "bench-zipchat-key",
    "COFFIELD_SECRET": "bench-coffield-secret",
    "ORDERS_API_KEY": "bench-orders-key",
}
LEVELS = (10, 100)


@dataclass
class Cell:
    rate: float
    p50: float
    p99: float
    cpu_us: float  # CPU per conversation of the process that ran the flow
    errors: int = 0
    error: str = ""


async def _closed_loop(
    talk: Callable[[], Awaitable[None]],
    concurrency: int,
    warmup: float,
    duration: float,
    cpu: Callable[[], float],
) -> Cell:
    latencies: list[float] = []
    errors: list[str] = []
    start = perf_counter() + warmup
    end = start + duration
    marks: list[float] = []

    async def worker() -> None:
        while (t0 := perf_counter()) < end:
            try:
                await talk()
            except Exception as exc:  # counted and shown, never hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            t1 = perf_counter()
            if start <= t1 <= end:
                latencies.append(t1 - t0)

    async def clock() -> None:
        await asyncio.sleep(max(0.0, start - perf_counter()))
        marks.append(cpu())
        await asyncio.sleep(max(0.0, end - perf_counter()))
        marks.append(cpu())

    timer = asyncio.create_task(clock())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    await timer
    n = len(latencies)
    latencies.sort()
    return Cell(
        rate=n / duration,
        p50=statistics.median(latencies) * 1000 if n else float("nan"),
        p99=latencies[min(n - 1, int(n * 0.99))] * 1000 if n else float("nan"),
        cpu_us=(marks[1] - marks[0]) / n * 1e6 if n else float("nan"),
        errors=len(errors),
        error=errors[0] if errors else "",
    )


def direct(env: dict[str, str], concurrency: int, warmup: float, duration: float) -> Cell:
    project = Project.load(SHIPPED, environ=env)

    async def talk() -> None:
        result = await project.run("wismo", INPUTS)
        if result.status != "completed" or TRACKING not in (result.reply or ""):
            raise RuntimeError(f"wismo: {result.status} {result.error}")

    async def main() -> Cell:
        try:
            await talk()
            return await _closed_loop(talk, concurrency, warmup, duration, process_time)
        finally:
            await project.aclose()

    return uvloop.run(main())


def through_zipchat(
    url: str, server_cpu: Callable[[], float], concurrency: int, warmup: float, duration: float
) -> Cell:
    headers = {"x-api-key": KEYS["ZIPCHAT_API_KEY"]}

    async def main() -> Cell:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def talk() -> None:
                async with session.get(f"{url}/zipchat/order", params=QUERY) as r:
                    body = await r.read()
                if r.status != 200 or TRACKING.encode() not in body:
                    raise RuntimeError(f"zipchat answered {r.status}: {body[:120]!r}")

            await talk()
            return await _closed_loop(talk, concurrency, warmup, duration, server_cpu)

    return uvloop.run(main())


class ServeProcess:
    """``csflow serve`` on a free port, pinned to ``core``; stopped with SIGTERM at the end."""

    def __init__(self, core: int | None, env: dict[str, str]) -> None:
        self.core, self.env = core, env
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> ServeProcess:
        core = self.core
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "csflow", "serve", "-p", str(SHIPPED), "--port", "0"],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the access log: written, as in production, then dropped
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=(lambda: os.sched_setaffinity(0, {core})) if core is not None else None,
        )
        assert self.proc.stderr is not None
        deadline = monotonic() + 30
        seen: list[str] = []
        while monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                break
            seen.append(line)
            if '"serving"' in line:
                self.url = json.loads(line)["url"]
                # Keep reading, so that the server never blocks on a full pipe.
                threading.Thread(target=self.proc.stderr.read, daemon=True).start()
                return self
        self.__exit__(None, None, None)
        raise RuntimeError("csflow serve did not start:\n" + "".join(seen))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run(
    rest_url: str, token: str, quick: bool, client_core: int | None, server_core: int | None
) -> dict[tuple[str, int], Cell]:
    env = {**os.environ, **KEYS, "DEMO_SHOP_URL": rest_url, "DEMO_SHOP_TOKEN": token}
    warmup, duration, rounds = (0.3, 1.0, 1) if quick else (0.5, 2.0, 2)
    cells: dict[tuple[str, int], Cell] = {}

    def keep(key: tuple[str, int], cell: Cell) -> None:
        best = cells.get(key)
        if best is None or cell.rate > best.rate:  # noise only ever slows a run down
            cells[key] = cell

    with ServeProcess(client_core, env) as server:
        for _ in range(rounds):
            for c in LEVELS:
                keep(("direct", c), direct(env, c, warmup, duration))
                if server_core is not None:  # the load generator goes beside the Demo Shop
                    os.sched_setaffinity(0, {server_core})
                try:
                    zipchat = through_zipchat(server.url, server.cpu_seconds, c, warmup, duration)
                finally:
                    if client_core is not None:
                        os.sched_setaffinity(0, {client_core})
                keep(("zipchat", c), zipchat)
    return cells


def report(cells: dict[tuple[str, int], Cell], where: str) -> list[str]:
    label = {"direct": "direct Project.run(wismo)", "zipchat": "GET /zipchat/order (csflow serve)"}
    lines = [
        f"3. Channels: WISMO through Zipchat's endpoint vs a direct Project.run; {where}",
        "   closed loop, uvloop both sides; conversations/s (p50/p99 ms) | CPU per conversation, µs",
    ]
    head = "".join(f"{f'c={c}':>34}" for c in LEVELS)
    lines.append(f"   {'':<36}{head}")
    for key in ("direct", "zipchat"):
        row = ""
        for c in LEVELS:
            cell = cells.get((key, c))
            text = (
                "-"
                if cell is None
                else (f"{cell.rate:5.0f} ({cell.p50:.1f}/{cell.p99:.1f}) | {cell.cpu_us:5.0f}")
            )
            row += f"{text:>34}"
        lines.append(f"   {label[key]:<36}{row}")
    for c in LEVELS:
        d, z = cells.get(("direct", c)), cells.get(("zipchat", c))
        if d and z:
            lines.append(
                f"   c={c}: the server costs {z.cpu_us - d.cpu_us:.0f} µs of CPU per request "
                f"({z.cpu_us / d.cpu_us:.2f} x the run alone); rate {z.rate / d.rate:.2f} x direct; "
                f"p50 +{z.p50 - d.p50:.1f} ms"
            )
    for (key, c), cell in cells.items():
        if cell.errors:
            lines.append(f"   errors: {key} at c={c}: {cell.errors}, first: {cell.error[:120]}")
    return lines


def main_hook(
    quick: bool, client_core: int | None, server_core: int | None, rest_url: str, token: str
) -> list[str]:
    """What ``python -m bench --only serve`` prints."""
    where = (
        f"csflow serve and direct runs on core {client_core}, Demo Shop and load generator "
        f"on core {server_core}"
        if client_core is not None
        else "NOT pinned"
    )
    return report(run(rest_url, token, quick, client_core, server_core), where)


__all__ = ["main_hook", "report", "run"]
