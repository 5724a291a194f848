"""Every write is done once, not sent, or recorded as ``unknown``: never silently doubled.

And the run store holds the run as ``in_flight`` before a write leaves, so a crash between
sending and recording leaves a trace to reconcile.
"""

from __future__ import annotations

import json as jsonlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from server import FaultServer, Request, call, hang, json, reset, slow, status

CONNECTIONS = """
shop:
  type: rest
  base_url: {env: FAULTS_URL}
  timeout: 2s
  retry: {attempts: 3, backoff: 10ms, on: [connect, timeout, 5xx]}
closed:
  type: rest
  base_url: http://127.0.0.1:9
  retry: {attempts: 3, backoff: 10ms, on: [connect]}
"""

FLOWS = {
    "create": """
    name: create
    steps:
      - id: read
        call: http
        with: {connection: shop, path: /cart}
      - id: create
        call: http
        timeout: 300ms
        with: {connection: shop, method: POST, path: /orders, json: {sku: A}}
    """,
    "create_keyed": """
    name: create_keyed
    inputs:
      cart: string
    steps:
      - id: create
        call: http
        timeout: 300ms
        idempotency_key: "order-{{ cart }}"
        with: {connection: shop, method: POST, path: /orders, json: {sku: A}}
    """,
    "create_closed": """
    name: create_closed
    steps:
      - id: create
        call: http
        with: {connection: closed, method: POST, path: /orders, json: {sku: A}}
    """,
}


@pytest.fixture
def project(projects: Any, server: FaultServer) -> Any:
    server.script("/cart", json({"items": 1}))
    return projects.make(CONNECTIONS, FLOWS)


@pytest.mark.parametrize(
    "fault", [reset, lambda: slow(2)], ids=["reset after the request", "no answer in time"]
)
def test_a_write_whose_answer_is_lost_is_unknown_and_sent_once(
    project: Any, server: FaultServer, transport: str, fault: Any
) -> None:
    server.script("/orders", fault())
    result = project.run_sync("create")
    assert result.status == "failed"
    assert result.error["outcome"] == "unknown"
    assert result.steps[-1].outcome == "unknown"
    assert result.steps[-1].attempts == 1
    assert len(server.hits("/orders")) == 1, "the write was sent twice"


@pytest.mark.parametrize(
    "fault", [reset, lambda: slow(2)], ids=["reset after the request", "no answer in time"]
)
def test_a_write_with_an_idempotency_key_is_retried_with_the_same_key(
    project: Any, server: FaultServer, fault: Any
) -> None:
    server.script("/orders", fault(), json({"id": "ORD-9"}, status=201))
    result = project.run_sync("create_keyed", {"cart": "c-77"})
    assert result.status == "completed", result.error
    assert result.steps[0].outcome == "done"
    keys = [r.headers.get("idempotency-key") for r in server.hits("/orders")]
    assert keys == ["order-c-77", "order-c-77"]


def test_a_write_answered_with_5xx_is_not_retried_without_a_key(
    project: Any, server: FaultServer
) -> None:
    server.script("/orders", status(503), json({"id": "ORD-9"}, status=201))
    result = project.run_sync("create")
    assert result.error["kind"] == "http_status"
    assert len(server.hits("/orders")) == 1


def test_a_write_that_never_connected_is_not_sent_and_may_be_retried(project: Any) -> None:
    result = project.run_sync("create_closed")
    assert result.error["kind"] == "connect"
    assert result.error["outcome"] == "not_sent"
    assert result.steps[0].attempts == 3


def test_a_completed_write_is_done(project: Any, server: FaultServer) -> None:
    server.script("/orders", json({"id": "ORD-9"}, status=201))
    result = project.run_sync("create")
    assert result.status == "completed", result.error
    assert [s.outcome for s in result.steps] == [None, "done"]


# -- the run store: in_flight before the write leaves ----------------------------------------------


def _stored(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    conn = sqlite3.connect(path)
    try:
        runs = conn.execute("SELECT id, flow, status FROM runs").fetchall()
        steps = conn.execute(
            "SELECT step_id, state, ok, outcome FROM steps ORDER BY run_id, seq"
        ).fetchall()
        return runs, steps
    finally:
        conn.close()


def test_the_run_is_in_flight_in_the_store_when_the_write_arrives(
    projects: Any, server: FaultServer, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    project = projects.make(CONNECTIONS, FLOWS, store=store)
    seen: list[Any] = []

    def look(request: Request) -> None:  # the server's thread, as the POST arrives
        seen.append(_stored(store))

    server.script("/cart", json({"items": 1}))
    server.script("/orders", call(look, json({"id": "ORD-9"}, status=201)))
    result = project.run_sync("create")
    project.close_store()
    assert result.status == "completed", result.error
    runs, steps = seen[0]
    assert runs == [(result.run_id, "create", "in_flight")]
    assert steps == [("read", None, 1, None), ("create", "in_flight", 1, None)]
    runs, steps = _stored(store)
    assert runs == [(result.run_id, "create", "completed")]
    assert steps == [("read", None, 1, None), ("create", None, 1, "done")]


def test_a_run_without_writes_is_recorded_when_it_ends(
    projects: Any, server: FaultServer, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    project = projects.make(
        CONNECTIONS,
        {"read": "name: read\nsteps:\n  - id: read\n    call: http\n"
                 "    with: {connection: shop, path: /cart}\n"},
        store=store,
    )  # fmt: skip
    server.script("/cart", json({"items": 1}))
    result = project.run_sync("read")
    project.close_store()
    assert _stored(store)[0] == [(result.run_id, "read", "completed")]


CRASHER = """
import sys
from csflow import Project

project = Project.load(sys.argv[1], environ={"FAULTS_URL": sys.argv[2]}, store=sys.argv[3])
project.run_sync("create", deadline=30)
"""


def test_a_crash_while_a_write_is_out_leaves_an_in_flight_run(
    projects: Any, server: FaultServer, tmp_path: Path
) -> None:
    root = projects.write(CONNECTIONS, FLOWS)
    store = tmp_path / "crash.sqlite3"
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASHER))
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), server.url, str(store)],
        cwd=Path(__file__).resolve().parents[2],
    )

    def crash(request: Request) -> None:
        os.kill(proc.pid, signal.SIGKILL)  # the process dies with the POST out

    server.script("/cart", json({"items": 1}))
    server.script("/orders", call(crash, hang()))
    assert proc.wait(60) == -signal.SIGKILL
    assert len(server.hits("/orders")) == 1
    runs, steps = _stored(store)
    assert [r[1:] for r in runs] == [("create", "in_flight")]
    assert steps[-1][:2] == ("create", "in_flight")
    conn = sqlite3.connect(store)
    inputs = conn.execute("SELECT inputs FROM runs").fetchone()[0]
    conn.close()
    assert jsonlib.loads(inputs) == {}
