"""Issue 10, item 36: under ``csflow serve --workers 2``, a worker killed mid-burst loses no
answered run. A run is committed before its answer leaves, so every request that got an
answer has its run in the store, whatever happened to the worker after.

A real ``csflow serve`` process on loopback, a bounded burst of requests (a fixed count, a
fixed concurrency, a time limit), and a SIGKILL of one worker once a third of the answers
are in, while the store is slow to commit (``burst`` says how).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sqlite3
from pathlib import Path

import httpx
from channels_support import KEYS, write
from support import csflow_running, free_port, wait_until

from csflow.serve.generic import RUN_ID_HEADER

REQUESTS = 600
CONCURRENCY = 24
KILL_AFTER = REQUESTS // 3
WITHIN = 90.0  # seconds for the whole burst: a bound, not a measurement
LOCK_HELD = 1.0  # seconds at most that the test holds the store's write lock

ECHO = """
    name: echo
    inputs:
      order: string
    outputs:
      order: string
    steps:
      - set: {order: "{{ order }}"}
      - reply: "Order {{ order }}"
      - return: {order: "{{ order }}"}
"""


def worker_pids(lines: list[str], count: int) -> list[int]:
    """The workers' pids, from uvicorn's "Started server process [PID]" lines (JSON logs)."""

    def started() -> list[int]:
        pids = []
        for line in list(lines):
            try:
                message = json.loads(line).get("message", "")
            except ValueError:
                continue
            found = re.search(r"Started server process \[(\d+)\]", message)
            if found:
                pids.append(int(found.group(1)))
        return pids[:count] if len(pids) >= count else []

    return wait_until(
        started, what=f"{count} workers to start", timeout=30, detail=lambda: "".join(lines)
    )


def answers_health(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def take_write_lock(store: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(store, isolation_level=None, timeout=10, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def burst(url: str, store: Path, victim: int) -> tuple[list[str], int]:
    """The answered run ids, and how many answers came after the kill.

    At a third of the answers, the test takes the store's write lock, as a slow disk or a
    long transaction would hold it: no run can commit. Runs that answer before their commit
    would go on answering then; those of the victim are lost when it is killed. Runs that
    wait for their commit answer nothing until the lock is released, after the kill.
    """
    answered: list[str] = []
    third = asyncio.Event()
    gate = asyncio.Semaphore(CONCURRENCY)
    answer = asyncio.Condition()  # notified at each answer

    async def one(client: httpx.AsyncClient, i: int) -> None:
        async with gate:
            try:
                r = await client.post(
                    "/v1/flows/echo/runs",
                    json={"inputs": {"order": f"ORD-{i:04d}"}},
                    headers={"x-api-key": KEYS["CSFLOW_API_KEY"]},
                )
            except httpx.HTTPError:
                return  # the killed worker's connections: no answer, nothing to check
        assert r.status_code == 200, r.text
        answered.append(r.headers[RUN_ID_HEADER.decode()])
        async with answer:
            answer.notify_all()
        if len(answered) >= KILL_AFTER:
            third.set()

    async def kill() -> int:
        await third.wait()
        lock = await asyncio.to_thread(take_write_lock, store)
        held = len(answered)
        # The lock stays held for LOCK_HELD, the window in which no run can commit and so no
        # answer may come, or until a whole round of answers came anyway: the bug.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(LOCK_HELD), answer:
                await answer.wait_for(lambda: len(answered) >= held + CONCURRENCY)
        os.kill(victim, signal.SIGKILL)
        killed = len(answered)
        await asyncio.to_thread(lock.execute, "ROLLBACK")
        lock.close()
        return killed

    # A new connection per request, so that both workers take requests throughout: a kept
    # pool could sit on one worker and leave the other, the victim perhaps, with none.
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=10, limits=limits) as client:
        killer = asyncio.create_task(kill())
        await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(REQUESTS))), WITHIN)
        killed = await asyncio.wait_for(killer, 10)
    return answered, len(answered) - killed


def test_no_answered_run_is_lost_when_a_worker_is_killed(tmp_path: Path) -> None:
    project = write(
        tmp_path / "project",
        {
            "flows/echo.yaml": ECHO,
            "channels.yaml": """
                api:
                  type: generic
                  path: /v1
                  api_keys: [{env: CSFLOW_API_KEY}]
                  flows: [echo]
            """,
        },
    )
    store = tmp_path / "runs.sqlite3"
    port = free_port()
    env = {**KEYS, "CSFLOW_STORE": str(store)}
    args = ("serve", "-p", str(project), "--port", str(port), "--workers", "2")
    with csflow_running(*args, env=env) as proc:
        pids = worker_pids(proc.err, 2)
        url = f"http://127.0.0.1:{port}"
        # Both workers listen once the supervisor says so; wait for an answer.
        wait_until(lambda: answers_health(url), what="csflow serve to answer", timeout=30)
        answered, after = asyncio.run(burst(url, store, pids[0]))
        _, _, err = proc.stop()
    assert after > 0, "the kill did not land mid-burst"
    with_ids = set(answered)
    assert len(with_ids) == len(answered) >= REQUESTS // 2, err[-2000:]
    conn = sqlite3.connect(store)
    try:
        stored = {row[0] for row in conn.execute("SELECT id FROM runs WHERE status = 'completed'")}
    finally:
        conn.close()
    lost = with_ids - stored
    assert not lost, f"{len(lost)} of {len(with_ids)} answered runs are not in the store"
