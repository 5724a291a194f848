"""Two machines: two ``csflow serve`` processes on two ports share one real PostgreSQL (the
run store: ``CSFLOW_STORE=postgresql://...``) and one real Redis (``CSFLOW_REDIS``).

Against the Demo Shop's real REST API and SOAP ERP, with ``projects/conversation`` and a
generic run API beside its conversation channel, both with a 3 s deadline: shorter than the
PostgreSQL store's own 5 s timeout, so that the store must keep the caller's deadline.

- a conversation moves between the servers turn by turn, and its transcript in PostgreSQL has
  every turn in order;
- 200 runs spread over both, 20 at a time, are all answered and all recorded;
- PostgreSQL stopped while both serve: a message gets the conversation channel's "could not
  check right now" (503) within the deadline; a plain run still answers, and its record is
  written once PostgreSQL is back; both servers recover by themselves.

The OAuth token and Coffield's replay cache over two servers are in ``test_shared_state.py``
(there with the PostgreSQL store too).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conversation_cases import MESSAGES
from services.postgres import PostgresHost, PostgresServer, count_runs
from support import CsflowProcess, csflow_running, wait_until
from test_conversation_channel import ASK_ORDER, HEADERS, KEY, copy_project, new_id

from csflow.adapters.postgres_store import PostgresStore
from csflow.demo import DemoShop
from csflow.serve.generic import RUN_ID_HEADER

DEADLINE = 3.0  # both channels' timeout: less than the store's 5 s
SECRET = "pg-e2e-secret"  # in the URL; trust authentication ignores it; it must never show
CHANNELS = f"""
chat:
  type: conversation
  path: /v1/conversations
  api_keys: [{{env: CSFLOW_API_KEY}}]
  timeout: {DEADLINE:g}s
api:
  type: generic
  path: /api
  api_keys: [{{env: CSFLOW_API_KEY}}]
  timeout: {DEADLINE:g}s
"""
RUN = "/api/flows/find_order/runs"
RUNS, AT_ONCE = 200, 20


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_project(tmp_path_factory.mktemp("two-servers") / "project")
    (root / "channels.yaml").write_text(CHANNELS, encoding="utf-8")
    return root


@dataclass
class Server:
    url: str
    proc: CsflowProcess

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=HEADERS, timeout=30)


@contextmanager
def two_servers(
    shop: DemoShop, project: Path, store: str, redis: str
) -> Iterator[tuple[Server, Server]]:
    """Two ``csflow serve`` on free ports, as two machines would run them; stopped after, each
    checked to have ended cleanly and to have logged no password."""
    env = {**shop.env(), "CSFLOW_API_KEY": KEY, "CSFLOW_STORE": store, "CSFLOW_REDIS": redis}
    args = ("serve", "-p", str(project), "--port", "0")
    with ExitStack() as stack:
        servers = []
        for _ in range(2):
            proc = stack.enter_context(csflow_running(*args, env=env))
            line = proc.wait_for(r'\{.*"serving".*\}', within=60).group(0)
            servers.append(Server(json.loads(line)["url"], proc))
        yield servers[0], servers[1]
        for server in servers:
            code, out, err = server.proc.stop()
            assert code == 0, err[-3000:]
            assert SECRET not in out + err


def say(server: Server, cid: str, text: str, **body: Any) -> httpx.Response:
    with server.client() as client:
        return client.post(MESSAGES.format(cid), json={"text": text, **body})


def answered(server: Server, cid: str, text: str, **body: Any) -> dict[str, Any]:
    r = say(server, cid, text, **body)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def run_once(server: Server, order: str = "ORD-1003") -> httpx.Response:
    with server.client() as client:
        return client.post(RUN, json={"inputs": {"order_number": order}})


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@")


# ----------------------------------------------------------------- one shared state


@pytest.fixture(scope="module")
def database(postgres: PostgresHost) -> Iterator[str]:
    yield postgres.database()
    postgres.drop_all()


@pytest.fixture(scope="module")
def servers(
    shop: DemoShop, project: Path, database: str, redis_url: str
) -> Iterator[tuple[Server, Server]]:
    with two_servers(shop, project, with_password(database), redis_url) as both:
        yield both


def test_a_conversation_moves_between_the_servers_turn_by_turn(
    servers: tuple[Server, Server], database: str
) -> None:
    a, b = servers
    cid = new_id("moves")
    first = answered(a, cid, "where is my order?", context={"email": "shipped@demo.shop"})
    assert (first["status"], first["reply"]) == ("waiting", ASK_ORDER)
    # B never saw this conversation: it resumes it from PostgreSQL, still asking.
    second = answered(b, cid, "I don't remember it")
    assert second["status"] == "waiting"
    assert second["reply"] == "I need the order number to look it up: it looks like ORD-1234."
    third = answered(a, cid, "it's ord 1003")
    assert (third["status"], third["reply"]) == (
        "completed",
        "Your order ORD-1003 is shipped with UPS.",
    )
    reader = PostgresStore(database)
    try:
        found = reader.get_conversation(cid)
    finally:
        reader.close()
    assert found is not None
    conversation, turns = found
    assert conversation.status == "completed" and conversation.turns == 3
    assert [(t.seq, t.text, t.status, t.run_id) for t in turns] == [
        (1, "where is my order?", "waiting", first["run_id"]),
        (2, "I don't remember it", "waiting", second["run_id"]),
        (3, "it's ord 1003", "completed", third["run_id"]),
    ]


def test_200_runs_over_both_servers_are_all_answered_and_all_recorded(
    servers: tuple[Server, Server], database: str
) -> None:
    urls = [server.url for server in servers]

    async def spread() -> list[httpx.Response]:
        gate = asyncio.Semaphore(AT_ONCE)
        async with httpx.AsyncClient(headers=HEADERS, timeout=30) as client:

            async def one(i: int) -> httpx.Response:
                async with gate:
                    order = f"ORD-{1001 + i % 6}"
                    body = {"inputs": {"order_number": order}}
                    return await client.post(f"{urls[i % 2]}{RUN}", json=body)

            return await asyncio.gather(*(one(i) for i in range(RUNS)))

    answers = asyncio.run(spread())
    assert [r.status_code for r in answers] == [200] * RUNS
    assert [r.json()["status"] for r in answers] == ["completed"] * RUNS, answers[0].text
    assert all(r.json()["outputs"]["found"] is True for r in answers)
    run_ids = [r.headers[RUN_ID_HEADER.decode()] for r in answers]
    assert len(set(run_ids)) == RUNS
    # An answer leaves once its run is committed: all 200 are there now, with no wait.
    assert count_runs(database, run_ids) == RUNS


# ------------------------------------------------------------- PostgreSQL goes away


def test_with_postgresql_stopped_both_servers_answer_in_time_and_recover_by_themselves(
    shop: DemoShop, project: Path, own_postgres: PostgresServer, redis_url: str
) -> None:
    database = own_postgres.create_database()
    with two_servers(shop, project, with_password(database), redis_url) as (a, b):
        for server in (a, b):  # both are up and hold pooled connections
            assert answered(server, new_id("warm"), "where is my order?")["status"] == "waiting"
        own_postgres.stop()

        for server in (a, b):
            started = time.monotonic()
            r = say(server, new_id("down"), "where is my order?")
            took = time.monotonic() - started
            assert took < DEADLINE, f"{took:.2f} s: past the channel's deadline"
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert r.json() == {
                "error": "unavailable",
                "message": "the conversation could not be checked right now (its store did"
                " not answer); it is as it was: send the message again",
            }

        # A plain run needs the store only to record it: its answer still goes out in time.
        started = time.monotonic()
        r = run_once(b)
        took = time.monotonic() - started
        assert took < DEADLINE, f"{took:.2f} s: past the channel's deadline"
        assert r.status_code == 200 and r.json()["status"] == "completed", r.text
        assert r.json()["outputs"] == {
            "found": True,
            "order_number": "ORD-1003",
            "order_status": "shipped",
            "carrier": "UPS",
        }
        kept = r.headers[RUN_ID_HEADER.decode()]
        b.proc.wait_for(rf"run {kept} was answered before the run store committed it")

        own_postgres.start()
        # The answered run was kept queued: it is written once PostgreSQL is back.
        wait_until(lambda: count_runs(database, [kept]) == 1, what=f"run {kept} to be written")

        def serves(server: Server) -> bool:
            return say(server, new_id("back"), "where is my order?").status_code == 200

        for server in (a, b):  # no restart: each pool reconnects by itself
            wait_until(lambda s=server: serves(s), what=f"{server.url} to take turns again")
        cid = new_id("after")
        assert answered(a, cid, "where is my order?")["status"] == "waiting"
        assert answered(b, cid, "ORD-1004")["status"] == "completed"
