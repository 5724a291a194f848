"""Helpers of the channels' end-to-end tests (``test_channels_shared`` tests what every
channel shares).

Every test talks to a real uvicorn on 127.0.0.1 (port 0, on a thread) with a client written
from the platform's document: Zipchat sends a GET with ``x-api-key``; Coffield signs the raw
body with HMAC-SHA256 and sends ``X-Coffield-*`` headers; the order-lookup client sends
query parameters. The Demo Shop is the merchant.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import textwrap
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from support import wait_until

from csflow.serve.app import create_app
from csflow.serve.logs import JsonFormatter
from csflow.serve.server import ChannelServer

KEYS = {
    "CSFLOW_API_KEY": "test-generic-key-0001",
    "ZIPCHAT_API_KEY": "test-zipchat-key-0001",
    "COFFIELD_SECRET": "test-coffield-secret-0001",
    "ORDERS_API_KEY": "test-orders-key-0001",
}


@contextmanager
def serving(project: Path, env: Mapping[str, str]) -> Iterator[httpx.Client]:
    """The project's channels on a real loopback server; yields a client for it."""
    app = create_app(project, env)
    with ChannelServer(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def sign(secret: str, body: bytes) -> str:
    """Seed 003: ``sha256=`` + hex HMAC-SHA256 of the raw body with the signing secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def coffield_request(
    reference: str,
    *,
    secret: str = KEYS["COFFIELD_SECRET"],
    kind: str = "order",
    context: dict[str, Any] | None = None,
    tenant_id: int = 42,
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and the headers Coffield.io sends with it (seed 003, "What headers do you send?")."""
    body = json.dumps(
        {"kind": kind, "reference": reference, "context": context or {}, "tenant_id": tenant_id}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "CoffieldAgentLookup/1.0",
        "X-Coffield-Tenant-Id": str(tenant_id),
        "X-Coffield-Lookup-Kind": kind,
        "X-Coffield-Timestamp": str(int(time.time() if timestamp is None else timestamp)),
        "X-Coffield-Signature": sign(secret, body),
    }
    return body, headers


class ShopAdmin:
    """The Demo Shop's admin switches (demo/README.md), always switched back off."""

    def __init__(self, shop: Any) -> None:
        self.client = httpx.Client(
            base_url=shop.base_url, headers={"Authorization": f"Bearer {shop.token}"}
        )

    def delay(self, ms: int) -> None:
        self.client.post("/_admin/delay", json={"ms": ms}).raise_for_status()

    def outage(self, on: bool) -> None:
        self.client.post("/_admin/outage", json={"on": on}).raise_for_status()

    @contextmanager
    def slow(self, ms: int) -> Iterator[None]:
        self.delay(ms)
        try:
            yield
        finally:
            self.delay(0)

    @contextmanager
    def down(self) -> Iterator[None]:
        self.outage(True)
        try:
            yield
        finally:
            self.outage(False)


def write(root: Path, files: Mapping[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


# A merchant connection with a long timeout and no retries, so that a slow Demo Shop makes
# the run overrun the platform's deadline instead of failing on the connection's own timeout.
PATIENT_SHOP = """
    shop:
      type: rest
      base_url: {env: DEMO_SHOP_URL}
      auth: {type: bearer, token: {env: DEMO_SHOP_TOKEN}}
      timeout: 30s
"""

LOOKUP_FLOW = """
    name: lookup
    inputs:
      order_number: string
      email: {type: string, required: false}
    outputs:
      found: boolean
      order_status: string
      carrier: string
      tracking_number: string
      tracking_url: string
    steps:
      - id: order
        call: http
        with: {connection: shop, path: "/orders/{{ order_number }}", ok_status: [404]}
        on_error: down
      - switch:
          - {if: steps.order.status == 404, next: missing}
      - extract:
          from: "{{ steps.order.data }}"
          fields:
            order_status: {path: status, map: {SHP: shipped, DLV: delivered}, default: unknown}
            carrier: "shipments[-1].carrier"
            tracking_number: "shipments[-1].tracking_number"
            tracking_url: "shipments[-1].tracking_url"
      - set: {found: true}
      - reply: "Order {{ order_number }} is {{ order_status }}."
      - return: {}
      - id: missing
        reply: "There is no order {{ order_number }}."
      - return: {found: false}
      - id: down
        reply: "The shop is down."
      - fail: "the shop did not answer"
"""


def log_lines(records: list[logging.LogRecord]) -> list[dict[str, Any]]:
    """Records of csflow's loggers as the JSON lines `csflow serve` writes."""
    formatter = JsonFormatter()
    return [json.loads(formatter.format(r)) for r in records if r.name.startswith("csflow")]


def wait_for_access_lines(caplog: Any, count: int, within: float = 10.0) -> list[dict[str, Any]]:
    """The log lines once ``count`` requests are logged: a line is written after its answer."""

    def logged() -> list[dict[str, Any]] | None:
        lines = log_lines(caplog.records)
        return lines if sum(line["logger"] == "csflow.access" for line in lines) >= count else None

    return wait_until(logged, what=f"{count} access log lines", timeout=within)
