"""A conversation's turn on each store: ``take`` + ``slot.save`` + leaving, side by side.

c workers, each on a conversation of its own, take turns in a closed loop on one event loop
for a fixed time per cell; each turn saves its conversation (a saved run's worth of state)
and one transcript line, as a turn that ends on an ``ask`` does. The in-memory store is the
baseline: the same inbox loop, no I/O. Stores alternate within each round.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

from bench.store import Cell
from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.store.conversations import Conversation, Turn
from csflow.engine.store.memory import MemoryStore

LEVELS = (1, 10, 100)
AT = "2026-11-20T10:00:00.000Z"
STATE = {"frames": [{"flow": "wismo", "step": 3, "vars": {"email": "jane@example.com"}}]}
LABEL = {"memory": "memory (baseline)", "sqlite": "SQLite", "postgresql": "PostgreSQL"}


async def _closed_loop(
    store: Any, c: int, seconds: float, tag: str
) -> tuple[int, float, list[float]]:
    latencies: list[float] = []
    stop_at = perf_counter() + seconds

    async def worker(i: int) -> None:
        cid = f"{tag}-{i}"
        n = 0
        while perf_counter() < stop_at:
            started = perf_counter()
            async with store.take(cid, wait=10, hold=10) as slot:
                n = (slot.conversation.turns if slot.conversation else 0) + 1
                await slot.save(
                    Conversation(cid, "waiting", AT, AT, flow="wismo", state=STATE, turns=n),
                    Turn(seq=n, at=AT, text="it's ord 1004", status="waiting", reply="Which one?"),
                )
            latencies.append((perf_counter() - started) * 1000)
            await asyncio.sleep(0)  # the memory store never yields: give every worker its turn

    started = perf_counter()
    await asyncio.gather(*(worker(i) for i in range(c)))
    return len(latencies), perf_counter() - started, latencies


def run(quick: bool) -> dict[tuple[str, int], Cell]:
    from bench.store import postgres

    seconds = 1.0 if quick else 2.0
    rounds = 1 if quick else 3
    cells = {(kind, c): Cell() for kind in LABEL for c in LEVELS}
    with tempfile.TemporaryDirectory(prefix="csflow-bench-turns-") as folder, postgres() as pg:
        stores: dict[str, Any] = {
            "memory": MemoryStore(),
            "sqlite": SQLiteStore(Path(folder) / "turns.sqlite3"),
        }
        if pg is not None:
            from csflow.adapters.postgres_store import PostgresStore

            stores["postgresql"] = PostgresStore(pg.create_database("turns"))

        async def main() -> None:
            for kind, store in stores.items():
                await _closed_loop(store, 1, 0.1, f"warm-{kind}")
            for r in range(rounds):
                for c in LEVELS:
                    for kind, store in stores.items():
                        gc.collect()
                        n, took, lat = await _closed_loop(store, c, seconds, f"r{r}c{c}")
                        cells[(kind, c)].rates.append(n / took)
                        cells[(kind, c)].latencies_ms.extend(lat)

        asyncio.run(main())
        for store in stores.values():
            store.close()
    return cells


def report(cells: dict[tuple[str, int], Cell], quick: bool) -> list[str]:
    rounds = "1 round of 1 s" if quick else "median of 3 rounds of 2 s"
    lines = [
        f"5b. A conversation's turn: take + save + leave, c conversations at once; {rounds} per cell",
        "   turns/s (p50/p99 ms); each turn one transaction of conversation + transcript line",
        "   " + " " * 42 + "".join(f"{f'c={c}':>24}" for c in LEVELS),
    ]
    for kind, label in LABEL.items():
        if not cells[(kind, LEVELS[0])].rates:
            lines.append(f"   {label:<42}{'(no PostgreSQL binaries: not measured)':>24}")
            continue
        row = "".join(
            f"{f'{cells[(kind, c)].rate:5.0f} ({cells[(kind, c)].percentile(0.5):.2f}/{cells[(kind, c)].percentile(0.99):.2f})':>24}"
            for c in LEVELS
        )
        lines.append(f"   {label:<42}{row}")
    for kind in ("sqlite", "postgresql"):
        if cells[(kind, LEVELS[0])].rates:
            ratio = "".join(
                f"{cells[(kind, c)].rate / cells[('memory', c)].rate:>24.3f}" for c in LEVELS
            )
            lines.append(f"   {LABEL[kind] + ' turns/s ÷ memory':<42}{ratio}")
    return lines


__all__ = ["report", "run"]
