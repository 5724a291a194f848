"""Turns across real OS processes sharing one store: SQLite's file, PostgreSQL's database.

Mutual exclusion is read from the data: each turn saves the count it saw plus one, so a turn
that overlapped another (in another process) would lose an update. Arrival order is made, not
timed: a process holds the conversation, a second one's ticket is seen queued in the inbox
table, then a third message arrives, and the second must answer before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import ROOT, wait_until

CHILD = Path(__file__).with_name("turns_child.py")


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield "sqlite", str(tmp_path / "runs.sqlite3")
        return
    host = request.getfixturevalue("postgres")
    yield "postgresql", host.database()
    host.drop_all()


def child(kind: str, location: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), kind, location, "chat-1", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ended(proc: subprocess.Popen[str]) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return out


def queued(kind: str, location: str) -> int:
    """How many tickets of chat-1 are in the inbox, read as a third process would."""
    query = "SELECT count(*) FROM inbox WHERE conversation_id = 'chat-1'"
    if kind == "sqlite":
        conn = sqlite3.connect(location)
        try:
            return int(conn.execute(query).fetchone()[0])
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(location) as pg:
        row = pg.execute(query).fetchone()
        return int(row[0]) if row else 0


def open_store(kind: str, location: str) -> Any:
    sys.path.insert(0, str(CHILD.parent))
    from turns_child import open_store as opened

    return opened(kind, location)


def test_two_processes_never_hold_one_conversation_at_once(shared: tuple[str, str]) -> None:
    kind, location = shared
    procs = [child(kind, location, "count", "25") for _ in range(2)]
    for proc in procs:
        ended(proc)
    store = open_store(kind, location)
    try:
        found = store.get_conversation("chat-1")
    finally:
        store.close()
    assert found is not None
    conversation, turns = found
    assert conversation.turns == 50  # no update lost: no two turns overlapped
    assert [t.seq for t in turns] == list(range(1, 51))
    assert {t.text.split(":")[0] for t in turns} == {str(p.pid) for p in procs}


def test_messages_enter_in_arrival_order_across_processes(shared: tuple[str, str]) -> None:
    kind, location = shared
    holder = child(kind, location, "hold")
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "entered"
    second = child(kind, location, "one")
    wait_until(lambda: queued(kind, location) == 2, what="the second process's ticket")
    store = open_store(kind, location)
    try:

        async def third() -> list[str]:
            async with store.take("chat-1", wait=60, hold=60) as slot:
                assert slot.conversation is not None
                found = store.get_conversation("chat-1")
                assert found is not None
                return [t.text.split(":")[0] for t in found[1]]

        async def main() -> list[str]:
            task = asyncio.create_task(third())
            await asyncio.to_thread(
                wait_until, lambda: queued(kind, location) == 3, what="the third ticket"
            )
            assert holder.stdin is not None
            holder.stdin.write("go\n")
            holder.stdin.flush()
            return await task

        answered = asyncio.run(main())
    finally:
        store.close()
    ended(holder)
    assert ended(second).strip() == "saved"
    assert answered == [str(holder.pid), str(second.pid)]  # the third came after both
