"""State shared by several servers (CSFLOW_REDIS), end to end on real loopback HTTP.

Two ``csflow serve`` processes on one Redis (with no run store, and sharing one in
PostgreSQL) fetch one OAuth token for 40 runs between them, and refuse a Coffield request
that was already answered by the other; in process, the one server refuses it. Redis down: Coffield's lookups are refused as "could not check right
now" (the replay cache fails closed), and served again once Redis is back.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from channels_support import KEYS, coffield_request, write
from faults.server import FaultServer, OAuthServer
from faults.server import json as answer
from services.postgres import count_runs
from support import csflow, csflow_running, wait_until

from csflow.serve.app import create_app
from csflow.serve.generic import RUN_ID_HEADER
from csflow.serve.server import ChannelServer

CLIENT_SECRET = "cs-e2e-shared-secret-0001"

PROJECT = {
    "connections.yaml": """
        subs:
          type: rest
          base_url: {env: API_URL}
          timeout: 5s
          auth:
            type: oauth2_client_credentials
            token_url: {env: TOKEN_URL}
            client_id: {env: CLIENT_ID}
            client_secret: {env: CLIENT_SECRET}
    """,
    "flows/plan.yaml": """
        name: plan
        outputs: {plan: string}
        steps:
          - id: plan
            call: http
            with: {connection: subs, path: /api/plan}
            extract: {plan: plan}
    """,
    "flows/lookup.yaml": """
        name: lookup
        inputs: {reference: string}
        outputs: {found: boolean, order_status: string}
        steps:
          - reply: "Order {{ reference }} is shipped."
          - return: {found: true, order_status: shipped}
    """,
    "channels.yaml": """
        api:
          type: generic
          path: /v1
          api_keys: [{env: CSFLOW_API_KEY}]
        coffield:
          type: coffield
          path: /coffield/lookup
          signing_secret: {env: COFFIELD_SECRET}
          kinds:
            order: {flow: lookup, inputs: {reference: "{{ request.reference }}"}}
          found: "{{ outputs.found }}"
    """,
}


@pytest.fixture(scope="module")
def api() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture
def served(tmp_path: Path, api: FaultServer) -> tuple[Path, dict[str, str], OAuthServer]:
    """The project, its environment, and its token endpoint (with a client id of its own)."""
    api.reset()
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    tokens = OAuthServer(api, client_id=client_id, client_secret=CLIENT_SECRET, token_delay=0.2)
    api.script("/api/plan", tokens.protected(answer({"plan": "gold"})))
    env = {
        **KEYS,
        "API_URL": api.url,
        "TOKEN_URL": tokens.token_url,
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": CLIENT_SECRET,
    }
    return write(tmp_path, PROJECT), env, tokens


def lookup(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return client.post("/coffield/lookup", content=body, headers=headers, timeout=10)


def fresh() -> tuple[bytes, dict[str, str]]:
    """A signed request no server has seen (its own reference)."""
    return coffield_request(f"ORD-{uuid.uuid4().hex[:10]}")


def assert_replayed(r: httpx.Response) -> None:
    assert r.status_code == 401
    body = r.json()
    assert body["ok"] is False and body["error_code"] == "unauthorized"
    assert "already received" in body["message"]


@pytest.mark.parametrize("kind", ["local", "redis"])
def test_a_replayed_coffield_request_is_refused_by_every_server(
    served: Any, kind: str, request: pytest.FixtureRequest
) -> None:
    project, env, _ = served
    if kind == "redis":
        env = {**env, "CSFLOW_REDIS": request.getfixturevalue("redis_url")}
    first = create_app(project, env)
    # In process, "every server" is this one; on Redis, a second app is another server.
    second = create_app(project, env) if kind == "redis" else first
    with (
        ChannelServer(first) as a,
        ChannelServer(second) as b,
        httpx.Client(base_url=a.url) as to_a,
        httpx.Client(base_url=b.url) as to_b,
    ):
        body, headers = fresh()
        r = lookup(to_a, body, headers)
        assert r.status_code == 200 and r.json()["ok"] is True
        assert_replayed(lookup(to_b, body, headers))
        # A fresh timestamp does not make it new: the timestamp is not signed.
        headers["X-Coffield-Timestamp"] = str(int(time.time()) + 5)
        assert_replayed(lookup(to_a, body, headers))
        other, other_headers = fresh()
        assert lookup(to_b, other, other_headers).json()["ok"] is True
    for app in {id(first): first, id(second): second}.values():
        asyncio.run(app.channels.aclose())


def test_coffield_is_refused_while_redis_is_down_and_served_when_it_is_back(
    served: Any, redis_server: Any
) -> None:
    project, env, _ = served
    app = create_app(project, {**env, "CSFLOW_REDIS": redis_server.url})
    with ChannelServer(app) as server, httpx.Client(base_url=server.url) as client:
        assert lookup(client, *fresh()).json()["ok"] is True
        redis_server.stop()
        started = time.perf_counter()
        r = lookup(client, *fresh())
        assert time.perf_counter() - started < 2.0  # Coffield waits 8 s
        assert r.status_code == 503
        assert r.json() == {
            "ok": False,
            "error_code": "receiver_error",
            "message": "The order system could not be reached right now.",
        }
        redis_server.start()
        wait_until(
            lambda: lookup(client, *fresh()).status_code == 200,
            what="Coffield lookups to be served again once Redis is back",
        )
    asyncio.run(app.channels.aclose())


@pytest.mark.parametrize("store", ["no store", "postgresql"])
def test_two_serve_processes_on_one_redis_fetch_one_token_and_refuse_a_replay(
    served: Any, redis_url: str, store: str, request: pytest.FixtureRequest
) -> None:
    """Two machines: on Redis alone, and with the run store they share in PostgreSQL too."""
    project, env, tokens = served
    stored, database = ["--no-store"], ""
    if store == "postgresql":  # as machines are set up: the environment names the store
        database = request.getfixturevalue("postgres").database()
        env, stored = {**env, "CSFLOW_STORE": database}, []
    args = ("serve", "-p", str(project), "--port", "0", *stored, "--redis", redis_url)
    with csflow_running(*args, env=env) as one, csflow_running(*args, env=env) as two:
        urls = [
            json.loads(proc.wait_for(r'\{.*"serving".*\}').group(0))["url"] for proc in (one, two)
        ]

        async def forty_runs() -> list[httpx.Response]:
            async with httpx.AsyncClient(timeout=30) as client:
                return await asyncio.gather(
                    *(
                        client.post(
                            f"{urls[i % 2]}/v1/flows/plan/runs",
                            json={"inputs": {}},
                            headers={"x-api-key": KEYS["CSFLOW_API_KEY"]},
                        )
                        for i in range(40)
                    )
                )

        answers = asyncio.run(forty_runs())
        assert [r.json()["status"] for r in answers] == ["completed"] * 40, answers[0].text
        assert len(tokens.token_requests()) == 1
        if database:
            run_ids = [r.headers[RUN_ID_HEADER.decode()] for r in answers]
            assert count_runs(database, run_ids) == 40

        body, headers = fresh()
        with httpx.Client() as client:
            r = client.post(f"{urls[0]}/coffield/lookup", content=body, headers=headers)
            assert r.json()["ok"] is True
            assert_replayed(
                client.post(f"{urls[1]}/coffield/lookup", content=body, headers=headers)
            )
        for proc in (one, two):
            code, out, err = proc.stop()
            assert code == 0, err
            assert "tok-1-access-token" not in out + err and CLIENT_SECRET not in out + err


def test_a_redis_setting_that_is_not_a_url_is_a_usage_error(served: Any) -> None:
    project, env, _ = served
    secret_url = "localhost:6379?password=hunter2"
    serve = csflow("serve", "-p", str(project), "--port", "0", "--redis", secret_url, env=env)
    run = csflow("run", "plan", "-p", str(project), env={**env, "CSFLOW_REDIS": secret_url})
    for done in (serve, run):
        assert done.returncode == 2, done.stderr
        assert "CSFLOW_REDIS must be a redis://HOST:PORT/DB URL" in done.stderr
        assert "hunter2" not in done.stdout + done.stderr
