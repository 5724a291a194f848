"""No run outlives its deadline by more than 0.5 s: whatever the server does, and from
``await project.run`` as from ``project.run_sync``."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from server import FaultServer, hang, slow, status, trickle

OVERSHOOT = 0.5
DEADLINE = 0.6

CONNECTIONS = """
shop:
  type: rest
  base_url: {env: FAULTS_URL}
  timeout: 30s
  retry: {attempts: 5, backoff: 100ms, on: [connect, timeout, 5xx]}
"""

FLOWS = {
    "lookup": """
    name: lookup
    steps:
      - id: first
        call: http
        with: {connection: shop, path: /first}
      - id: order
        call: http
        with: {connection: shop, path: /orders/1}
        on_error: continue
      - reply: "{{ steps.order.ok }}"
    """,
    "nap": """
    name: nap
    steps:
      - id: nap
        call: naps.sleep
        timeout: 30s
    """,
    "create": """
    name: create
    steps:
      - id: create
        call: http
        with: {connection: shop, method: POST, path: /orders, json: {sku: A}}
    """,
}

ACTIONS = {
    "actions/naps.py": """
    import time

    from csflow import action


    @action("naps.sleep")
    def sleep() -> dict:
        time.sleep(5)  # the behaviour under test: a blocking action past the deadline
        return {}
    """
}

FAULTS = {
    "no answer": hang,
    "slow answer": lambda: slow(10),
    "trickling body": lambda: trickle(0.05),
    "5xx for ever": lambda: slow(0.3, status(503)),
}


@pytest.fixture
def project(projects: Any) -> Any:
    return projects.make(CONNECTIONS, FLOWS, files=ACTIONS)


CASES = [
    *((transport, fault, call) for fault in FAULTS for call in ("run_sync", "await run")
      for transport in ("aiohttp",)),
    ("httpcore", "trickling body", "run_sync"),
    ("httpcore", "no answer", "await run"),
]  # fmt: skip


@pytest.mark.parametrize(("transport", "fault", "call"), CASES)
def test_a_run_ends_at_its_deadline_whatever_the_server_does(
    project: Any,
    server: FaultServer,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
    fault: str,
    call: str,
) -> None:
    monkeypatch.setenv("CSFLOW_TRANSPORT", transport)
    server.script("/first", status(204))
    server.script("/orders/1", FAULTS[fault]())
    started = time.monotonic()
    if call == "run_sync":
        result = project.run_sync("lookup", deadline=DEADLINE)
    else:

        async def go() -> Any:
            try:
                return await project.run("lookup", deadline=DEADLINE)
            finally:
                await project.aclose()

        result = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + OVERSHOOT, f"{fault}: {elapsed:.2f}s for a {DEADLINE}s deadline"
    assert result.status == "failed"
    assert result.error["kind"] == "deadline"  # on_error: continue cannot save it
    assert result.error["step"] == "order"
    assert result.steps[-1].ok is False


def test_a_sync_action_that_blocks_does_not_hold_run_sync(project: Any) -> None:
    started = time.monotonic()
    result = project.run_sync("nap", deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + OVERSHOOT
    assert result.error["kind"] == "deadline"


def test_a_write_cut_off_by_the_deadline_is_unknown(project: Any, server: FaultServer) -> None:
    server.script("/orders", hang())
    started = time.monotonic()
    result = project.run_sync("create", deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + OVERSHOOT
    assert result.error["kind"] == "deadline"
    assert result.error.get("outcome") == "unknown"
    assert result.steps[0].outcome == "unknown"
    assert len(server.hits("/orders")) == 1


def test_retry_waits_stop_short_of_the_deadline(project: Any, server: FaultServer) -> None:
    server.script("/first", slow(0.3, status(503)))
    started = time.monotonic()
    result = project.run_sync("lookup", deadline=DEADLINE)
    assert time.monotonic() - started < DEADLINE + OVERSHOOT
    assert result.status == "failed"
    assert 1 <= len(server.hits("/first")) <= 4
