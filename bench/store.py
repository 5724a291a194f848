"""The cost of recording runs: ``Project.run`` with no store, with the old batch-after store,
and with the durable group commit (issue 10, item 36), side by side in one run.

The flow is part 1's ``wismo3_canned``: three calls answered in process by the
``bench.canned`` action, so a run does no I/O and the store's share is as large as it can be.
c workers each run it in a closed loop on one event loop, for a fixed time per cell:

- *no store*: ``Project.load(..., store=None)``;
- *batch after (old)*: the SQLite store as it was before item 36: ``finish`` queues the run
  and the answer goes at once; the writer commits it later. It is today's writer with its
  commit not awaited (``BatchAfter``), so it still settles a future per run, a few µs the old
  writer did not spend. Its backlog is drained after each cell, not timed, and shown;
- *durable (group commit)*: the store as it is: ``Project.run`` returns once its run is
  committed, and the runs that finished together share one transaction.

- *PostgreSQL (group commit)*: the same, on ``PostgresStore`` over a PostgreSQL server that
  the bench starts on loopback (``tests/services/postgres.py``, its default settings: fsync on,
  ``synchronous_commit`` on, so each commit waits for the server's WAL flush).

Modes alternate within each round, so that all of them see the same noise. The SQLite writer
thread runs in the bench's process, on its core, as it does in each ``csflow serve`` worker;
so do PostgreSQL's store loop and, beside it, the server's own processes.

Then a conversation's turn (§12): ``take`` + ``slot.save`` + leaving, c workers each on its
own conversation in a closed loop, on the in-memory store (the baseline: the same loop, no
I/O), SQLite and PostgreSQL (``bench/store_turns.py``).
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import tempfile
from collections.abc import Awaitable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import Any

from csflow import Project
from csflow.adapters.postgres_store import PostgresStore
from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.store import RunRecord

LEVELS = (1, 10, 100)
MODES = ("none", "batch", "durable", "postgresql")
LABEL = {
    "none": "no store",
    "batch": "batch after (old: answer, then commit)",
    "durable": "durable (group commit, then answer)",
    "postgresql": "PostgreSQL (group commit, then answer)",
}
FLOW = "wismo3_canned"


class _Done:
    """An awaitable that is already done: what the old ``finish`` amounted to."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class BatchAfter:
    """The store before item 36: ``finish`` queues the run, and nobody waits for its commit."""

    def __init__(self, inner: SQLiteStore) -> None:
        self.inner = inner

    async def begin(self, record: RunRecord) -> None:
        await self.inner.begin(record)

    def finish(self, record: RunRecord) -> Awaitable[None]:
        self.inner.finish(record)  # its commit's future is dropped: the answer does not wait
        return _Done()

    def flush(self, timeout: float | None = None) -> bool:
        return self.inner.flush(timeout)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Cell:
    rates: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    commits: int = 0
    runs: int = 0
    drain_ms: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the process's CPU, every thread, the writer's and the drain included

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.runs, 1) * 1e6

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


async def _closed_loop(
    project: Project, c: int, seconds: float, inputs: dict[str, Any]
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    stop_at = perf_counter() + seconds

    async def worker() -> None:
        while perf_counter() < stop_at:
            started = perf_counter()
            result = await project.run(FLOW, inputs)
            latencies.append((perf_counter() - started) * 1000)
            if result.status != "completed":
                raise RuntimeError(f"{FLOW}: {result.status} {result.error}")
            # A run with no I/O and no store never yields: without this, one worker would
            # run the whole cell while the others wait. Every mode pays the same yield.
            await asyncio.sleep(0)

    started = perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return len(latencies), perf_counter() - started, latencies


def run(quick: bool) -> dict[tuple[str, int], Cell]:
    from bench.shop import TOKEN
    from bench.wismo import BENCH_PROJECT, EMAIL

    os.environ.setdefault("DEMO_SHOP_TOKEN", TOKEN)  # the project's connection needs one to load
    seconds = 1.0 if quick else 2.0
    rounds = 1 if quick else 3
    inputs = {"email": EMAIL}
    cells: dict[tuple[str, int], Cell] = {(m, c): Cell() for m in MODES for c in LEVELS}
    with tempfile.TemporaryDirectory(prefix="csflow-bench-store-") as folder, postgres() as pg:
        durable = SQLiteStore(Path(folder) / "durable.sqlite3")
        old = SQLiteStore(Path(folder) / "batch.sqlite3")
        projects = {
            "none": Project.load(BENCH_PROJECT),
            "batch": Project.load(BENCH_PROJECT, store=BatchAfter(old)),
            "durable": Project.load(BENCH_PROJECT, store=durable),
        }
        shared = None if pg is None else PostgresStore(pg.create_database("bench"))
        if shared is not None:
            projects["postgresql"] = Project.load(BENCH_PROJECT, store=shared)
        counted = {"durable": durable, "postgresql": shared}

        async def main() -> None:
            for project in projects.values():  # warm: the writer threads are up, files made
                await _closed_loop(project, 1, 0.1, inputs)
            old.flush()
            for _ in range(rounds):
                for c in LEVELS:
                    for mode in projects:
                        gc.collect()
                        writer = counted.get(mode)
                        before = 0 if writer is None else writer.commits
                        cpu = process_time()
                        n, took, lat = await _closed_loop(projects[mode], c, seconds, inputs)
                        cell = cells[(mode, c)]
                        cell.rates.append(n / took)
                        cell.latencies_ms.extend(lat)
                        cell.runs += n
                        if writer is not None:
                            cell.commits += writer.commits - before
                        if mode == "batch":  # the backlog it left, outside the timing
                            drained = perf_counter()
                            await asyncio.to_thread(old.flush)
                            cell.drain_ms.append((perf_counter() - drained) * 1000)
                        cell.cpu_s += process_time() - cpu
            for project in projects.values():
                await project.aclose()

        asyncio.run(main())
        durable.close()
        old.close()
        if shared is not None:
            shared.close()
    return cells


@contextmanager
def postgres() -> Iterator[Any]:
    """A PostgreSQL server for the bench (its defaults: fsync on), or None with no binaries."""
    from tests.services.postgres import PostgresServer, why_not

    if why_not() is not None:
        yield None
        return
    with PostgresServer(fsync=True) as server:
        yield server


def report(cells: dict[tuple[str, int], Cell], quick: bool) -> list[str]:
    rounds = "1 round of 1 s" if quick else "median of 3 rounds of 2 s"
    lines = [
        f"5. The run store: Project.run({FLOW}) with its 3 calls answered in process; {rounds} per cell",
        "   closed loop on one event loop (asyncio); runs/s (p50/p99 ms) | CPU per run, µs; SQLite WAL, synchronous=NORMAL",
    ]
    head = "".join(f"{f'c={c}':>31}" for c in LEVELS)
    lines.append(f"   {'':<42}{head}")
    for mode in MODES:
        if not cells[(mode, LEVELS[0])].runs:
            lines.append(f"   {LABEL[mode]:<42}{'(no PostgreSQL binaries: not measured)':>31}")
            continue
        row = ""
        for c in LEVELS:
            cell = cells[(mode, c)]
            text = f"{cell.rate:5.0f} ({cell.percentile(0.5):.2f}/{cell.percentile(0.99):.2f})"
            row += f"{text + f' | {cell.cpu_us:4.0f}':>31}"
        lines.append(f"   {LABEL[mode]:<42}{row}")
    ratios = ""
    groups = ""
    drains = ""
    shared = ""
    for c in LEVELS:
        none, old, new = cells[("none", c)], cells[("batch", c)], cells[("durable", c)]
        pg = cells[("postgresql", c)]
        ratios += f"{f'{new.rate / old.rate:.2f} / {new.rate / none.rate:.2f}':>31}"
        group = f"{new.runs / max(new.commits, 1):.1f}"
        if pg.runs:
            group += f" / {pg.runs / max(pg.commits, 1):.1f}"
        groups += f"{group:>31}"
        drains += f"{f'{max(old.drain_ms):.1f}':>31}"
        if pg.runs:
            extra = pg.cpu_us - none.cpu_us, new.cpu_us - none.cpu_us
            text = f"{pg.rate / new.rate:.2f} | {extra[0]:.0f} vs {extra[1]:.0f} µs"
            shared += f"{text:>31}"
    lines.append(f"   {'durable runs/s ÷ batch after / ÷ no store':<42}{ratios}")
    lines.append(f"   {'runs per commit: SQLite / PostgreSQL':<42}{groups}")
    lines.append(f"   {'batch after: backlog left, drain ms (max)':<42}{drains}")
    if shared:
        lines.append(f"   {'PostgreSQL ÷ SQLite runs/s | CPU over none':<42}{shared}")
    return lines


__all__ = ["BatchAfter", "report", "run"]
