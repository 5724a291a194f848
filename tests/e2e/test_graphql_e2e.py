"""The ``graphql`` action against Demo Shop's subscriptions API over loopback.

A mutation whose answer is lost (``POST /_admin/delay``) without an ``idempotency_key`` is
reported as ``outcome: unknown`` and never sent again, even with ``timeout`` in ``retry.on``:
once a write has left, only the merchant knows whether it was done, and a retry could refund
twice.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import httpx
import pytest
from support import until

from csflow import Project
from csflow.adapters.transport import make_transport
from csflow.demo.server import DemoShop

SCHEMA = Path(__file__).resolve().parents[2] / "demo" / "subscriptions.graphql"

REFUND = """
name: refund
inputs: {id: string}
outputs: {amount: number}
steps:
  - id: refund
    call: graphql
    with:
      connection: subs
      query: "mutation Refund($id: ID!) { refundLastCharge(id: $id) { amount } }"
      variables: {id: "{{ id }}"}
    retry: {attempts: 3, backoff: 10ms, on: [connect, timeout, 5xx]}
    extract: {amount: refundLastCharge.amount}
"""

CHARGE = """
name: charge
inputs: {id: string}
outputs: {refunded: boolean, plan: string}
steps:
  - id: sub
    call: graphql
    with:
      connection: subs
      query: "query Charge($id: ID!) { subscription(id: $id) { plan { name } lastCharge { refunded } } }"
      variables: {id: "{{ id }}"}
    extract: {refunded: subscription.lastCharge.refunded, plan: subscription.plan.name}
"""


@pytest.fixture
async def project(shop: DemoShop, tmp_path: Path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema" / "subs.graphql").write_text(SCHEMA.read_text())
    for name, text in {"refund": REFUND, "charge": CHARGE}.items():
        (tmp_path / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
    (tmp_path / "connections.yaml").write_text(
        textwrap.dedent(
            """
            subs:
              type: graphql
              url: {env: SUBS_URL}
              schema: schema/subs.graphql
              auth: {type: api_key, header: X-API-Key, key: {env: SUBS_KEY}}
              timeout: 300ms
            """
        )
    )
    loaded = Project.load(
        tmp_path, environ={"SUBS_URL": shop.graphql_url, "SUBS_KEY": shop.graphql_key}
    )
    yield loaded
    await loaded.aclose()


async def admin(shop: DemoShop, path: str, body: dict | None = None) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {shop.token}"}) as client:
        (await client.post(f"{shop.base_url}{path}", json=body or {})).raise_for_status()


class Counting(httpx.AsyncBaseTransport):
    """The real transport, counting the requests that leave."""

    def __init__(self, inner: httpx.AsyncBaseTransport, sent: list[bytes]) -> None:
        self.inner, self.sent = inner, sent

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.content)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_timed_out_mutation_without_a_key_is_unknown_and_never_retried(shop, project):
    sent: list[bytes] = []
    project.connections.use_transport(lambda n: Counting(make_transport(n), sent))
    await admin(shop, "/_admin/reset")
    await admin(shop, "/_admin/delay", {"ms": 800, "services": ["graphql"]})
    try:
        result = await project.run("refund", {"id": "SUB-2001"})
    finally:
        await admin(shop, "/_admin/delay", {"ms": 0, "services": ["graphql"]})
    step = result.steps[0]
    assert result.status == "failed"
    assert step.error["kind"] == "timeout"
    assert step.outcome == "unknown" and result.error["outcome"] == "unknown"
    assert step.attempts == 1 and len(sent) == 1  # `on: [timeout]`, yet sent only once
    assert b"mutation Refund" in sent[0]
    # The shop still holds the timed-out request: let it end before the module's next test.
    await until(lambda: shop.app.state.shop.held == 0, what="the delayed request to end")


async def test_errors_fail_the_step_and_name_the_refusal(shop, project):
    await admin(shop, "/_admin/reset")
    first = await project.run("refund", {"id": "SUB-2004"})  # seeded as already refunded
    step = first.steps[0]
    assert step.error["kind"] == "action"
    assert step.error["code"] == "ALREADY_REFUNDED"
    assert step.error["data"] == {"refundLastCharge": None}
    assert "is already refunded" in step.error["message"]
    assert step.attempts == 1 and step.status == 200


async def test_a_wrong_key_is_an_auth_error_with_no_secret_in_it(shop, tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "charge.yaml").write_text(textwrap.dedent(CHARGE).lstrip())
    (tmp_path / "connections.yaml").write_text(
        "subs:\n  type: graphql\n  url: {env: SUBS_URL}\n"
        "  auth: {type: api_key, header: X-API-Key, key: {env: SUBS_KEY}}\n"
    )
    project = Project.load(
        tmp_path, environ={"SUBS_URL": shop.graphql_url, "SUBS_KEY": "wrong-key-4321"}
    )
    try:
        result = await project.run("charge", {"id": "SUB-2001"})
    finally:
        await project.aclose()
    assert result.error["kind"] == "auth" and result.steps[0].status == 401
    assert "wrong-key-4321" not in result.to_json()
