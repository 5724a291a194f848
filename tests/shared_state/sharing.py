"""A project for the shared state's tests: an OAuth connection and a rate-limited one, on a
fault server that is the token endpoint and the API; and two "processes" (gateways) on it."""

from __future__ import annotations

import asyncio
import textwrap
import uuid
from pathlib import Path
from typing import Any

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


def make_project(tmp_path: Path, api: FaultServer) -> tuple[CompiledProject, OAuthServer]:
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
