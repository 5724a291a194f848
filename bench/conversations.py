"""Conversations (§12): what a resumed turn costs, and how big a waiting conversation is.

``python -m bench --only conversations``.

- **A resumed turn** beside a plain run of the same steps. A generated flow runs N steps,
  asks, then runs N more; its twin runs the same 2N steps with no ask. Timed, alternating in
  one loop: the twin's ``Project.run``; the conversation's second turn (``Project.say``,
  resuming after the ask), which runs the N steps after the ask; and a plain run of those N
  steps alone. Every run is recorded, the plain ones too. With the memory store the
  difference is the engine's price of resuming (the turn slot, the saved frames decoded and
  the new state encoded); with SQLite it adds the store's read of the conversation and its
  write of the turn, beside a plain run recorded in the same store.
- **The state a waiting conversation keeps**, in bytes of JSON, for each shipped intent that
  asks when the customer has not said enough (median and largest).
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import tempfile
from pathlib import Path
from time import perf_counter
from typing import Any

from csflow import Project
from csflow.engine.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[1]
STEPS = 20  # on each side of the ask


def _steps(prefix: str, count: int) -> list[str]:
    lines = []
    for i in range(count):
        lines.append(f"  - id: {prefix}{i}")
        if i % 2:
            lines.append("    switch: [{if: 'n > 100000', next: done}]")
        else:
            lines.append("    set: {n: '{{ n + 1 }}'}")
    return lines


def write_project(folder: Path) -> None:
    (folder / "flows").mkdir(parents=True)
    head = ["inputs:", "  n: {type: integer, required: false}", "outputs:", "  n: integer"]
    asks = [
        "name: asks",
        *head,
        "steps:",
        "  - set: {n: 0}",
        *_steps("a", STEPS),
        "  - id: question",
        "    ask: What's your order number?",
        "    entity: order_number",
        *_steps("b", STEPS),
        "  - id: done",
        "    reply: 'done {{ n }}'",
    ]
    twin = [
        "name: twin",
        *head,
        "steps:",
        "  - set: {n: 0}",
        *_steps("a", STEPS),
        "  - set: {order_number: ORD-1004}",
        *_steps("b", STEPS),
        "  - id: done",
        "    reply: 'done {{ n }}'",
    ]
    after = ["name: after", *head, "steps:", *_steps("b", STEPS), "  - id: done", "    reply: ok"]
    (folder / "flows" / "asks.yaml").write_text("\n".join(asks) + "\n")
    (folder / "flows" / "twin.yaml").write_text("\n".join(twin) + "\n")
    (folder / "flows" / "after.yaml").write_text("\n".join(after) + "\n")
    where = ["where is my order", "order status", "track it", "wheres my parcel", "has it shipped"]
    cancel = ["cancel it", "stop my order", "cancel please", "I want to cancel", "cancel my order"]
    number = {"pattern": r"(?i)\b(?:ord-?)?(\d{4,6})\b", "format": "ORD-{1}"}
    intents = {
        "entities": {"order_number": number},
        "intents": {
            "asks": {"flow": "asks", "examples": where},
            "other": {"flow": "after", "examples": cancel},
        },
    }
    (folder / "intents.yaml").write_text(json.dumps(intents))


async def _timed(rounds: int, project: Project) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"twin": [], "resumed": [], "after": []}
    for i in range(rounds):
        cid = f"bench-{i}"
        await project.say(cid, "where is my order", flow="asks")
        started = perf_counter()
        result = await project.say(cid, "it's ord 1004")
        times["resumed"].append(perf_counter() - started)
        assert result.status == "completed", result
        started = perf_counter()
        await project.run("twin", {})
        times["twin"].append(perf_counter() - started)
        started = perf_counter()
        await project.run("after", {"n": 0})
        times["after"].append(perf_counter() - started)
    return times


def resumed_turns(quick: bool) -> dict[str, dict[str, float]]:
    rounds = 300 if quick else 2000
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "project"
        write_project(folder)
        # Every run is recorded, the plain ones too: in memory (no I/O), then in SQLite.
        for name, store in (("memory", MemoryStore()), ("sqlite", Path(tmp) / "runs.sqlite3")):

            async def measure(store: Any = store) -> dict[str, list[float]]:
                async with Project.load(folder, store=store) as project:
                    await _timed(50, project)  # warm: caches, the store's thread and file
                    gc.collect()
                    gc.freeze()
                    try:
                        return await _timed(rounds, project)
                    finally:
                        gc.unfreeze()

            times = asyncio.run(measure())
            out[name] = {k: statistics.median(v) * 1e6 for k, v in times.items()}
    return out


def state_sizes() -> list[tuple[str, int]]:
    """The JSON bytes each shipped intent's conversation keeps while it waits for an answer."""
    sizes = []

    async def go() -> None:
        async with Project.load(ROOT / "flows") as project:
            intents = project.intents
            assert intents is not None
            for name, flow in sorted(intents.flows.items()):
                result = await project.say(f"size-{name}", "hello", flow=flow)
                if result.suspended is not None:
                    text = json.dumps(result.suspended.to_json(), separators=(",", ":"))
                    sizes.append((name, len(text.encode())))

    asyncio.run(go())
    return sizes


def run(quick: bool) -> dict[str, Any]:
    return {"turns": resumed_turns(quick), "sizes": state_sizes(), "steps": STEPS}


def report(figures: dict[str, Any]) -> list[str]:
    n = figures["steps"]
    lines = [
        f"Conversations: a resumed turn beside plain runs (µs, medians; {n} steps before the ask,"
        f" {n} after)",
        f"  {'store':8} {'resumed turn':>13} {'plain run, same steps after':>28}"
        f" {'plain run, all steps':>21} {'resume costs':>13}",
    ]
    for store, t in figures["turns"].items():
        extra = t["resumed"] - t["after"]
        lines.append(
            f"  {store:8} {t['resumed']:13.0f} {t['after']:28.0f} {t['twin']:21.0f} {extra:+12.0f}"
        )
    lines.append(
        "  (resume costs = resumed turn - the plain run of the same steps: with memory, the"
        " engine's decoding of the saved frames and the turn's bookkeeping; with sqlite, plus"
        " the conversation's read and the turn's write)"
    )
    sizes = figures["sizes"]
    if sizes:
        values = [s for _, s in sizes]
        largest = max(sizes, key=lambda s: s[1])
        lines.append(
            f"  state kept while waiting, shipped intents that ask ({len(sizes)}): median"
            f" {statistics.median(values):.0f} bytes, largest {largest[1]} ({largest[0]})"
        )
    return lines
