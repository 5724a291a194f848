"""The channels server's own cost: WISMO through Zipchat's endpoint, beside a direct Project.run.

The rows run the shipped ``wismo`` flow for ORD-1003 / shipped@demo.shop (one REST call to
the Demo Shop) in closed loops of c = 10 and 100 workers:

- *direct*: ``Project.run`` in this process, pinned to the client core, with no run store;
- *direct, store on*: the same, recording every run in a SQLite store, as ``csflow serve``
  does by default;
- *bare Starlette*: no run at all: a Starlette endpoint on the same uvicorn settings answers
  a Zipchat-shaped request (key check, query, JSON), in its own process on the client core.
  Its CPU per request is the floor of any Python server on this stack;
- *zipchat*: ``csflow serve`` (store on) in its own process, pinned to the same core, called
  over HTTP (``GET /zipchat/order`` with ``x-api-key``) by an aiohttp load generator on the
  other core, next to the Demo Shop. Every answer must be a 200 whose context names the
  tracking number.

Both run on uvloop (uvicorn's loop), so that the difference is the server: uvicorn, Starlette,
the channel (key check, templates, JSON), the access log line. CPU per conversation comes from
/proc for the server process and from ``process_time`` for the direct runs, so it does not
depend on where the load generator ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic, perf_counter, process_time

import aiohttp
import uvloop

from csflow import Project

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
    # The shipped project's console: csflow serve refuses to start without them.
    "CONSOLE_OPS_PASSWORD": "bench-console-password",
    "CSFLOW_CONSOLE_KEY": "bench-console-signing-key-of-32-characters-or-more",
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
    turns: list[float] = field(default_factory=list)  # per-request seconds, when talk gives them

    def turn_ms(self, p: float) -> float:
        """The ``p`` quantile of one request (a turn) in ms, of a talk of several requests."""
        ordered = sorted(self.turns)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


async def _closed_loop(
    talk: Callable[[], Awaitable[list[float] | None]],
    concurrency: int,
    warmup: float,
    duration: float,
    cpu: Callable[[], float],
) -> Cell:
    """c workers each talk in a loop; a talk may return the seconds each of its requests
    took (a conversation's turns), kept for those that ended in the measured window."""
    latencies: list[float] = []
    turns: list[float] = []
    errors: list[str] = []
    start = perf_counter() + warmup
    end = start + duration
    marks: list[float] = []

    async def worker() -> None:
        while (t0 := perf_counter()) < end:
            try:
                each = await talk()
            except Exception as exc:  # counted and shown, never hidden
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            t1 = perf_counter()
            if start <= t1 <= end:
                latencies.append(t1 - t0)
                turns.extend(each or ())

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
        turns=turns,
    )


def direct(
    env: dict[str, str], concurrency: int, warmup: float, duration: float, store: Path | None
) -> Cell:
    project = Project.load(SHIPPED, environ=env, store=store)

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


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (its threads included), from /proc; 0 once gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[str] | None, grace: float) -> None:
    """SIGTERM, and SIGKILL after ``grace`` seconds: a bench's server always ends."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


CSFLOW_SERVE = ("-m", "csflow", "serve", "-p", str(SHIPPED), "--port", "0")
BARE_STARLETTE = ("-m", "bench.bare_starlette")


class ServeProcess:
    """A server (``csflow serve`` by default) on a free port, pinned to ``core``; SIGTERM at the end."""

    def __init__(
        self,
        core: int | None,
        env: dict[str, str],
        args: Sequence[str] = CSFLOW_SERVE,
        cwd: Path = ROOT,
    ) -> None:
        self.core, self.env, self.args, self.cwd = core, env, tuple(args), cwd
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        return cpu_of(self.proc.pid)

    def __enter__(self) -> ServeProcess:
        core = self.core
        self.proc = subprocess.Popen(
            [sys.executable, *self.args],
            cwd=self.cwd,
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
        raise RuntimeError(f"{' '.join(self.args)} did not start:\n" + "".join(seen))

    def __exit__(self, *exc: object) -> None:
        stop(self.proc, 15)


# BENCH_SERVE_BASELINE=DIR adds a row: `csflow serve` from another source tree (for example
# `git archive <commit>` unpacked), measured side by side with this one: before and after.
BASELINE_ENV = "BENCH_SERVE_BASELINE"
ROUNDS_ENV = "BENCH_SERVE_ROUNDS"
ROWS = ("direct", "direct_store", "bare", "baseline", "zipchat")
LABELS = {
    "direct": "direct Project.run(wismo), no store",
    "direct_store": "direct Project.run(wismo), store on",
    "bare": "bare Starlette, canned answer, no run",
    "baseline": "GET /zipchat/order, BENCH_SERVE_BASELINE",
    "zipchat": "GET /zipchat/order (csflow serve)",
}


def run(
    rest_url: str, token: str, quick: bool, client_core: int | None, server_core: int | None
) -> dict[tuple[str, int], Cell]:
    scratch = Path(tempfile.mkdtemp(prefix="csflow-bench-serve-"))
    env = {**os.environ, **KEYS, "DEMO_SHOP_URL": rest_url, "DEMO_SHOP_TOKEN": token}
    served_env = {**env, "CSFLOW_STORE": str(scratch / "served.sqlite3")}  # not the repo's
    warmup, duration, rounds = (0.3, 1.0, 1) if quick else (0.5, 2.0, 2)
    rounds = int(os.environ.get(ROUNDS_ENV, rounds))  # more rounds: less noise in the best
    cells: dict[tuple[str, int], Cell] = {}

    def keep(key: tuple[str, int], cell: Cell) -> None:
        best = cells.get(key)
        if best is None or cell.rate > best.rate:  # noise only ever slows a run down
            cells[key] = cell

    def over_http(server: ServeProcess, c: int) -> Cell:
        if server_core is not None:  # the load generator goes beside the Demo Shop
            os.sched_setaffinity(0, {server_core})
        try:
            return through_zipchat(server.url, server.cpu_seconds, c, warmup, duration)
        finally:
            if client_core is not None:
                os.sched_setaffinity(0, {client_core})

    baseline_tree = os.environ.get(BASELINE_ENV)
    with contextlib.ExitStack() as stack:
        served = stack.enter_context(ServeProcess(client_core, served_env))
        bare = stack.enter_context(ServeProcess(client_core, env, BARE_STARLETTE))
        baseline = None
        if baseline_tree:
            tree = Path(baseline_tree).resolve()
            baseline_env = {
                **served_env,
                "PYTHONPATH": str(tree),  # its csflow, not this tree's editable install
                "CSFLOW_STORE": str(scratch / "baseline.sqlite3"),
            }
            args = ("-m", "csflow", "serve", "-p", str(tree / "flows"), "--port", "0")
            baseline = stack.enter_context(ServeProcess(client_core, baseline_env, args, tree))
        for _ in range(rounds):
            for c in LEVELS:
                keep(("direct", c), direct(env, c, warmup, duration, None))
                store = scratch / f"direct-{c}.sqlite3"
                keep(("direct_store", c), direct(env, c, warmup, duration, store))
                keep(("bare", c), over_http(bare, c))
                if baseline is not None:
                    keep(("baseline", c), over_http(baseline, c))
                keep(("zipchat", c), over_http(served, c))
    return cells


def report(cells: dict[tuple[str, int], Cell], where: str) -> list[str]:
    lines = [
        f"4. Channels: WISMO through Zipchat's endpoint vs a direct Project.run; {where}",
        "   closed loop, uvloop both sides; conversations/s (p50/p99 ms) | CPU per conversation, µs",
    ]
    head = "".join(f"{f'c={c}':>34}" for c in LEVELS)
    lines.append(f"   {'':<38}{head}")
    for key in ROWS:
        if not any((key, c) in cells for c in LEVELS):
            continue
        row = ""
        for c in LEVELS:
            cell = cells.get((key, c))
            text = (
                "-"
                if cell is None
                else (f"{cell.rate:5.0f} ({cell.p50:.1f}/{cell.p99:.1f}) | {cell.cpu_us:5.0f}")
            )
            row += f"{text:>34}"
        lines.append(f"   {LABELS[key]:<38}{row}")
    for c in LEVELS:
        d, s = cells.get(("direct", c)), cells.get(("direct_store", c))
        b, z = cells.get(("bare", c)), cells.get(("zipchat", c))
        if not (d and s and z):
            continue
        lines.append(
            f"   c={c}: zipchat / direct with store {z.rate / s.rate:.2f} x (target >= 0.8: "
            f"{'met' if z.rate / s.rate >= 0.8 else 'MISS'}), / direct without {z.rate / d.rate:.2f} x; "
            f"p50 +{z.p50 - s.p50:.1f} ms"
        )
        floor = f"; a bare Starlette endpoint costs {b.cpu_us:.0f} µs" if b else ""
        lines.append(
            f"          the server costs {z.cpu_us - s.cpu_us:.0f} µs of CPU per request on top of "
            f"the recorded run{floor}; the store costs {s.cpu_us - d.cpu_us:.0f} µs per run"
        )
        before = cells.get(("baseline", c))
        if before:
            lines.append(
                f"          baseline: / direct with store {before.rate / s.rate:.2f} x, "
                f"/ direct without {before.rate / d.rate:.2f} x; the server costs "
                f"{before.cpu_us - s.cpu_us:.0f} µs per request on top of the recorded run"
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


__all__ = ["ServeProcess", "cpu_of", "main_hook", "report", "run", "stop"]
