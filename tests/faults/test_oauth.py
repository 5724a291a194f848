"""OAuth 2 connections against a real token endpoint: caching, expiry mid-flow, one refresh
shared by 200 concurrent runs, rotated refresh tokens, and a token endpoint that refuses."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from server import FaultServer, OAuthServer, Request, call, echo, json

CLIENT_ID = "csflow-client"
CLIENT_SECRET = "cs-0a1b2c3d4e5f-secret"
REFRESH = "rt-0-initial-refresh"
ENV = {"SUBS_CLIENT_ID": CLIENT_ID, "SUBS_CLIENT_SECRET": CLIENT_SECRET, "SUBS_REFRESH": REFRESH}

CONNECTIONS = """
subs:
  type: rest
  base_url: {env: FAULTS_URL}
  timeout: 5s
  auth:
    type: oauth2_client_credentials
    token_url: {env: TOKEN_URL}
    client_id: {env: SUBS_CLIENT_ID}
    client_secret: {env: SUBS_CLIENT_SECRET}
    scope: orders:read
refreshing:
  type: rest
  base_url: {env: FAULTS_URL}
  auth:
    type: oauth2_refresh_token
    token_url: {env: TOKEN_URL}
    refresh_token: {env: SUBS_REFRESH}
    client_id: {env: SUBS_CLIENT_ID}
    client_secret: {env: SUBS_CLIENT_SECRET}
"""

FLOWS = {
    "two_calls": """
    name: two_calls
    inputs:
      conn: {type: string, required: false, default: subs}
    outputs:
      plan: string
    steps:
      - id: customer
        call: http
        with: {connection: "{{ conn }}", path: /api/customer}
      - id: subscription
        call: http
        with: {connection: "{{ conn }}", path: /api/subscription}
        extract: {plan: plan}
    """,
    "echo": """
    name: echo
    steps:
      - id: echo
        call: http
        with: {connection: subs, path: /api/echo}
      - reply: "{{ steps.echo.data }}"
    """,
}


def make(projects: Any, server: FaultServer, **oauth: Any) -> tuple[Any, OAuthServer]:
    tokens = OAuthServer(server, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **oauth)
    server.script("/api/customer", tokens.protected(json({"id": "C-1"})))
    server.script("/api/subscription", tokens.protected(json({"plan": "gold"})))
    project = projects.make(CONNECTIONS, FLOWS, env={**ENV, "TOKEN_URL": tokens.token_url})
    return project, tokens


def bearer(request: Request) -> str:
    return request.headers["authorization"].removeprefix("Bearer ")


def test_a_token_is_fetched_once_and_reused(projects: Any, server: FaultServer) -> None:
    project, tokens = make(projects, server)
    for _ in range(3):
        result = project.run_sync("two_calls")
        assert result.outputs == {"plan": "gold"}, result.error
    assert len(tokens.token_requests()) == 1
    request = tokens.token_requests()[0]
    assert request.form() == {"grant_type": "client_credentials", "scope": "orders:read"}
    assert {bearer(r) for r in server.hits("/api/subscription")} == {"tok-1-access-token"}


def test_a_token_that_expires_mid_flow_is_refreshed_once_and_the_call_retried_once(
    projects: Any, server: FaultServer
) -> None:
    project, tokens = make(projects, server)
    # The server expires every token as the first call is answered.
    server.script(
        "/api/customer", tokens.protected(call(lambda r: tokens.expire(), json({"id": "C-1"})))
    )
    result = project.run_sync("two_calls")
    assert result.status == "completed", result.error
    assert result.steps[1].attempts == 1  # the 401 was handled inside the one attempt
    calls = server.hits("/api/subscription")
    assert [bearer(r) for r in calls] == ["tok-1-access-token", "tok-2-access-token"]
    assert len(tokens.token_requests()) == 2


def test_a_token_is_renewed_before_it_expires(projects: Any, server: FaultServer) -> None:
    project, tokens = make(projects, server, expires_in=0.5)
    assert project.run_sync("two_calls").status == "completed"
    # The wait is the behaviour under test: the token's 0.5 s life passing. Renewal is due
    # 10% early, at 0.45 s; a slow machine only waits longer, which changes nothing.
    time.sleep(0.5)
    assert project.run_sync("two_calls").status == "completed"
    assert len(tokens.token_requests()) == 2
    assert tokens.unauthorized == 0  # renewed before, not after, a refusal
    assert [bearer(r) for r in server.hits("/api/subscription")] == [
        "tok-1-access-token",
        "tok-2-access-token",
    ]


def test_200_concurrent_runs_share_one_token_request(projects: Any, server: FaultServer) -> None:
    project, tokens = make(projects, server, token_delay=0.2)

    async def many() -> list[Any]:
        try:
            first = await asyncio.gather(*(project.run("two_calls") for _ in range(200)))
            tokens.expire()  # and then all of them meet a 401 together
            second = await asyncio.gather(*(project.run("two_calls") for _ in range(200)))
            return [*first, *second]
        finally:
            await project.aclose()

    results = asyncio.run(many())
    assert [r.status for r in results] == ["completed"] * 400, results[0].error
    assert len(tokens.token_requests()) == 2


def test_a_rotated_refresh_token_is_kept_and_used_next(projects: Any, server: FaultServer) -> None:
    project, tokens = make(projects, server, refresh_token=REFRESH)
    assert project.run_sync("two_calls", {"conn": "refreshing"}).status == "completed"
    tokens.expire()
    result = project.run_sync("two_calls", {"conn": "refreshing"})
    assert result.status == "completed", result.error
    sent = [r.form()["refresh_token"] for r in tokens.token_requests()]
    assert sent == [REFRESH, "rt-1-rotated-refresh"]
    assert tokens.refused == []


def test_a_token_endpoint_that_refuses_is_an_auth_error_without_the_secret(
    projects: Any, server: FaultServer
) -> None:
    tokens = OAuthServer(server, client_id=CLIENT_ID, client_secret="another-secret")
    server.script("/api/customer", json({}))
    project = projects.make(
        CONNECTIONS, FLOWS, env={**ENV, "TOKEN_URL": tokens.token_url}
    )  # fmt: skip
    result = project.run_sync("two_calls")
    assert result.error["kind"] == "auth"
    assert "invalid_client" in result.error["message"] or "401" in result.error["message"]
    assert server.hits("/api/customer") == []  # never sent without a token
    assert CLIENT_SECRET not in result.to_json()


def test_a_call_refused_again_after_the_refresh_fails_with_auth(
    projects: Any, server: FaultServer
) -> None:
    project, tokens = make(projects, server)
    server.script("/api/customer", json({"error": "no"}, status=401))
    result = project.run_sync("two_calls")
    assert result.error["kind"] == "auth"
    assert len(server.hits("/api/customer")) == 2  # once, then once more with a new token
    assert len(tokens.token_requests()) == 2


def test_an_echoed_access_token_is_redacted(projects: Any, server: FaultServer) -> None:
    project, tokens = make(projects, server)
    server.script("/api/echo", tokens.protected(echo()))
    result = project.run_sync("echo")
    assert result.status == "completed", result.error
    assert "tok-1-access-token" not in result.to_json()
    assert "***" in (result.reply or "")


def test_a_token_url_must_be_https_unless_loopback(projects: Any) -> None:
    from csflow import ProjectError

    with pytest.raises(ProjectError) as info:
        projects.make(CONNECTIONS, FLOWS, env={**ENV, "TOKEN_URL": "http://auth.example/t"})
    assert "plain http is refused for 'auth.example'" in str(info.value)
    assert "token_url" not in str(info.value) or "connections.yaml" in str(info.value)
