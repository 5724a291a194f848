"""OAuth tokens and rate limits shared by two "processes": two gateways (``Connections``) on
one shared state, against a real token endpoint and API on loopback (the fault server).

In process the two gateways share one ``LocalState``; on Redis each has its own client.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from faults.server import FaultServer, OAuthServer, json

from csflow.adapters.connections import Connections
from csflow.engine.compiled_project import CompiledProject

SECRET = "cs-shared-secret-0001"

CONNECTIONS = """
subs:
  type: rest
  base_url: {env: API_URL}
  timeout: 5s
  auth:
    type: oauth2_client_credentials
    token_url: {env: TOKEN_URL}
    client_id: {env: CLIENT_ID}
    client_secret: {env: CLIENT_SECRET}
limited:
  type: rest
  base_url: {env: API_URL}
  rate_limit: {requests: 2, per: 1s}
"""

FLOWS = {
    "plan": """
    name: plan
    outputs: {plan: string}
    steps:
      - id: plan
        call: http
        with: {connection: subs, path: /api/plan}
        extract: {plan: plan}
    """,
    "limited": """
    name: limited
    steps:
      - id: ping
        call: http
        with: {connection: limited, path: /api/ping}
    """,
}


@pytest.fixture(scope="module")
def api() -> Any:
    with FaultServer() as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, api: FaultServer) -> tuple[CompiledProject, OAuthServer]:
    api.reset()
    # A client id of the test's own: a token another test put in the same Redis is not ours.
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    tokens = OAuthServer(api, client_id=client_id, client_secret=SECRET, token_delay=0.2)
    api.script("/api/plan", tokens.protected(json({"plan": "gold"})))
    api.script("/api/ping", json({"pong": True}))
    (tmp_path / "flows").mkdir()
    (tmp_path / "connections.yaml").write_text(textwrap.dedent(CONNECTIONS).lstrip())
    for name, text in FLOWS.items():
        (tmp_path / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    env = {
        "API_URL": api.url,
        "TOKEN_URL": tokens.token_url,
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": SECRET,
    }
    return CompiledProject.load(tmp_path, environ=env), tokens


def gateway(compiled: CompiledProject, state: Any) -> Connections:
    return Connections(compiled.connection_models, compiled.root, compiled.environ, state=state)


async def runs(compiled: CompiledProject, gateways: list[Connections], flow: str, n: int) -> list:
    return await asyncio.gather(
        *(compiled.run(flow, {}, gateways[i % len(gateways)]) for i in range(n))
    )


async def test_two_processes_ask_for_one_token(project: Any, state: Any, peer: Any) -> None:
    compiled, tokens = project
    gateways = [gateway(compiled, state), gateway(compiled, peer)]
    results = await runs(compiled, gateways, "plan", 40)
    assert [r.status for r in results] == ["completed"] * 40, results[0].error
    assert len(tokens.token_requests()) == 1
    tokens.expire()  # both meet a 401 with the same token: one of them renews it
    results = await runs(compiled, gateways, "plan", 40)
    assert [r.status for r in results] == ["completed"] * 40, results[0].error
    assert len(tokens.token_requests()) == 2
    for g in gateways:
        await g.aclose()


async def test_a_renewal_lock_whose_holder_died_delays_the_token_only_until_it_runs_out(
    project: Any, state: Any, peer: Any
) -> None:
    compiled, tokens = project
    conn = gateway(compiled, peer)
    # A process took the lock and died before it could put a token there.
    assert await state.try_lock(conn.get("subs").auth.key + ":renewing", 0.5) is not None
    started = time.monotonic()
    result = await compiled.run("plan", {}, conn)
    assert result.status == "completed", result.error
    assert time.monotonic() - started >= 0.45
    assert len(tokens.token_requests()) == 1
    await conn.aclose()


async def test_the_shared_token_is_never_in_a_key(project: Any, state: Any) -> None:
    compiled, _ = project
    conn = gateway(compiled, state)
    assert (await compiled.run("plan", {}, conn)).status == "completed"
    key = conn.get("subs").auth.key
    assert key.startswith("oauth:subs:")
    for secret in (SECRET, compiled.environ["CLIENT_ID"], "tok-1-access-token"):
        assert secret not in key
    assert b"tok-1-access-token" in (await state.get(key) or b"")  # the value is the token
    await conn.aclose()


async def test_a_rate_limit_is_shared_and_a_call_past_its_deadline_is_not_sent(
    project: Any, api: FaultServer, state: Any, peer: Any
) -> None:
    compiled, _ = project
    gateways = [gateway(compiled, state), gateway(compiled, peer)]
    results = await runs(compiled, gateways, "limited", 4)
    assert [r.status for r in results] == ["completed"] * 4
    at = sorted(r.at for r in api.hits("/api/ping"))
    # Two at once, then one slot every 0.5 s, whichever process asks.
    assert at[2] - at[0] >= 0.4 and at[3] - at[0] >= 0.9
    # The next slot is 0.5 s away (or more): a run with 0.3 s left cannot wait for it.
    late = await compiled.run("limited", {}, gateways[1], deadline=0.3)
    assert late.status == "failed"
    assert late.error["kind"] == "http_status" and late.error["status"] == 429
    assert "rate_limit" in late.error["message"]
    assert late.error["outcome"] == "not_sent" and late.steps[0].outcome == "not_sent"
    assert len(api.hits("/api/ping")) == 4  # it never left
    for g in gateways:
        await g.aclose()
