"""OAuth tokens and rate limits shared by two "processes": two gateways (``Connections``) on
one shared state, against a real token endpoint and API on loopback (the fault server).

In process the two gateways share one ``LocalState``; on Redis each has its own client.
"""

from __future__ import annotations

import time
from typing import Any

from faults.server import FaultServer
from sharing import SECRET, gateway, runs


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
