"""What a store keeps (``CSFLOW_KEEP``), the same on every store: by age, by count, or both.

Each store here prunes after every write (``PruneSchedule(every=1)``), so a test sees the
prune that the runs it wrote asked for, without writing a thousand of them first.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from csflow.engine.store import IN_FLIGHT, RunRecord
from csflow.engine.store.conversations import Conversation, Turn
from csflow.engine.store.retention import Keep, PruneSchedule

NOW = dt.datetime.now(dt.UTC)


def ago(days: float) -> str:
    moment = NOW - dt.timedelta(days=days)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pruning(backing: Any, keep: Keep) -> Any:
    store = backing.open(keep=keep)
    store.prunes = PruneSchedule(every=1)
    return store


def write(store: Any, *records: RunRecord) -> None:
    for r in records:
        store.finish(r)
        assert store.flush(20)


def run(rid: str, days: float, status: str = "completed") -> RunRecord:
    steps = [{"id": "s", "verb": "call", "action": "http", "ok": True, "line": 3}]
    return RunRecord(id=rid, flow="wismo", status=status, started_at=ago(days), steps=steps)


def kept(store: Any) -> set[str]:
    return {r.id for r in store.list_runs(limit=1000)}


def test_runs_older_than_the_age_go_and_open_ones_stay(backing: Any) -> None:
    store = pruning(backing, Keep(runs=None, age=30 * 86400))
    write(
        store,
        run("old-done", 40),
        run("old-failed", 31, "failed"),
        run("old-in-flight", 45, IN_FLIGHT),
        run("old-waiting", 60, "waiting"),
        run("young", 29),
        run("today", 0),
    )
    assert kept(store) == {"old-in-flight", "old-waiting", "young", "today"}
    assert store.get_run("old-done") is None  # and its steps with it
    young = store.get_run("young")
    assert young is not None and len(young.steps) == 1


def test_only_the_newest_runs_stay_when_a_count_is_kept(backing: Any) -> None:
    store = pruning(backing, Keep(runs=3))
    write(store, run("in-flight", 10, IN_FLIGHT), *(run(f"r{i}", 9 - i) for i in range(6)))
    # The newest three of all seven stay; of the older four, only the open one is kept.
    assert kept(store) == {"r3", "r4", "r5", "in-flight"}


def test_age_and_count_together_keep_what_both_allow(backing: Any) -> None:
    store = pruning(backing, Keep(runs=2, age=7 * 86400))
    write(store, run("a", 20), run("b", 3), run("c", 2), run("d", 1))
    assert kept(store) == {"c", "d"}
    store_by_age = pruning(backing, Keep(runs=10, age=7 * 86400))
    write(store_by_age, run("e", 8))
    assert "e" not in kept(store_by_age)


async def test_ended_conversations_go_by_their_last_turn_and_waiting_ones_stay(
    backing: Any,
) -> None:
    store = pruning(backing, Keep(runs=None, age=30 * 86400))
    for cid, status, days in [
        ("ended-long-ago", "completed", 40),
        ("handed-over-long-ago", "handoff", 35),
        ("waiting-long-ago", "waiting", 50),
        ("ended-lately", "completed", 2),
    ]:
        at = ago(days)
        async with store.take(cid, wait=5, hold=5) as slot:
            await slot.save(
                Conversation(id=cid, status=status, turns=1, started_at=at, updated_at=at),
                Turn(seq=1, at=at, text="where is my order?", status=status),
            )
    write(store, run("today", 0))  # a finished run is what starts a prune
    left = {c.id for c in store.list_conversations(limit=100)}
    assert left == {"waiting-long-ago", "ended-lately"}
    assert store.get_conversation("ended-long-ago") is None


def test_the_default_keeps_a_hundred_thousand_runs_of_any_age(backing: Any) -> None:
    store = pruning(backing, Keep())
    write(store, run("ten-years-old", 3650))
    assert kept(store) == {"ten-years-old"}


def test_csflow_keep_reaches_the_store_csflow_run_writes(tmp_path: Path) -> None:
    from csflow.adapters.sqlite_store import SQLiteStore

    db = tmp_path / "runs.sqlite3"
    old = SQLiteStore(db)
    write(old, run("last-year", 365))
    old.close()
    env = {**os.environ, "CSFLOW_STORE": str(db), "CSFLOW_KEEP": "30d"}
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        # No inputs: wismo asks for the order number, and nothing leaves the machine.
        [sys.executable, "-m", "csflow", "run", "wismo", "-p", str(root / "flows")],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    reader = SQLiteStore(db, create=False)
    try:
        ids = {r.id for r in reader.list_runs(limit=10)}
        assert "last-year" not in ids and len(ids) == 1  # the run just made, alone
    finally:
        reader.close()
