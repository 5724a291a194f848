"""Another process taking turns of one conversation: what test_processes.py starts.

    python turns_child.py KIND LOCATION CONVERSATION MODE [N]

- ``count N``: N turns one after another, each saving the turn count it saw plus one, so
  that two turns that overlapped (in two processes) lose an update;
- ``hold``: enter one turn, print ``entered``, wait for a line on stdin, save, leave;
- ``one``: take one turn (waiting up to 60 s), save it, print ``saved``.

Each saved turn's text is ``PID:N``: the test reads which process answered when.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from csflow.engine.store.conversations import Conversation, Turn

AT = "2026-11-20T10:00:00.000Z"


def open_store(kind: str, location: str) -> Any:
    if kind == "sqlite":
        from csflow.adapters.sqlite_store import SQLiteStore

        return SQLiteStore(Path(location))
    from csflow.adapters.postgres_store import PostgresStore

    return PostgresStore(location)


async def one_turn(store: Any, cid: str, before_save: Any = None) -> None:
    async with store.take(cid, wait=60, hold=60) as slot:
        if before_save is not None:
            await before_save()
        seen = slot.conversation.turns if slot.conversation else 0
        n = seen + 1
        await slot.save(
            Conversation(cid, "waiting", AT, AT, turns=n),
            Turn(seq=n, at=AT, text=f"{os.getpid()}:{n}", status="waiting"),
        )


async def main(kind: str, location: str, cid: str, mode: str, count: int) -> None:
    store = open_store(kind, location)
    try:
        if mode == "count":
            for _ in range(count):
                await one_turn(store, cid)
        elif mode == "hold":

            async def held() -> None:
                print("entered", flush=True)
                await asyncio.to_thread(sys.stdin.readline)

            await one_turn(store, cid, held)
        else:
            await one_turn(store, cid)
            print("saved", flush=True)
    finally:
        store.close()


if __name__ == "__main__":
    kind, location, cid, mode = sys.argv[1:5]
    asyncio.run(main(kind, location, cid, mode, int(sys.argv[5]) if len(sys.argv) > 5 else 1))
