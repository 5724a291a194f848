"""What goes on the wire, exactly, on both transports: paths, keys, and what a failure says.

Issue 10: a customer's ``..`` must not leave its path segment (31); any text works as an
idempotency key (34); bytes that are not HTTP are a ``connect`` error without the bytes (35);
a failed connection says refused, DNS, TLS or timeout (7).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import FaultServer, Request, json, status, xml
from support import free_port

from csflow.adapters.connections import idempotency_header
from csflow.adapters.transport import translate
from csflow.engine.errors import StepError

CONNECTIONS = """
shop:
  type: rest
  base_url: {env: FAULTS_URL}
  timeout: 2s
  retry: {attempts: 2, backoff: 10ms, on: [connect, 5xx]}
subs:
  type: graphql
  url: {env: GRAPHQL_URL}
  timeout: 2s
"""

FLOWS = {
    "orders_of": """
    name: orders_of
    inputs:
      customer: string
    steps:
      - id: orders
        call: http
        with: {connection: shop, path: "/v2/customers/{{ customer }}/orders"}
    """,
    "move": """
    name: move
    inputs:
      address: string
    steps:
      - id: move
        call: http
        idempotency_key: "addr-{{ address }}"
        with: {connection: shop, method: POST, path: /address, json: {address: "{{ address }}"}}
    """,
    "plan": """
    name: plan
    steps:
      - id: plan
        call: graphql
        with: {connection: subs, query: "query { plan { id } }"}
    """,
}


@pytest.fixture
def project(projects: Any, server: FaultServer) -> Any:
    return projects.make(CONNECTIONS, FLOWS, env=_graphql(server))


def _graphql(server: FaultServer) -> dict[str, str]:
    return {"GRAPHQL_URL": f"{server.url}/api/%2E%2E/graphql"}


# -- 31: dot segments --------------------------------------------------------------------------


@pytest.mark.parametrize("customer", ["..", "."])
def test_a_dot_segment_from_a_customer_stays_in_its_segment(
    project: Any, server: FaultServer, transport: str, customer: str
) -> None:
    encoded = "%2E" * len(customer)
    server.script(f"/v2/customers/{encoded}/orders", json([]))
    result = project.run_sync("orders_of", {"customer": customer})
    assert result.status == "completed", result.error
    assert [r.path for r in server.requests] == [f"/v2/customers/{encoded}/orders"]


def test_a_graphql_url_goes_out_as_it_is_written(
    project: Any, server: FaultServer, transport: str
) -> None:
    server.script("/api/%2E%2E/graphql", json({"data": {"plan": {"id": "p1"}}}))
    result = project.run_sync("plan")
    assert result.status == "completed", result.error
    assert [r.path for r in server.requests] == ["/api/%2E%2E/graphql"]


# -- 34: idempotency keys of any text ----------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "header"),
    [
        ("Bahnhofstraße 5", "addr-Bahnhofstra%C3%9Fe 5"),
        ("Line 1\r\nLine 2", "addr-Line 1%0D%0ALine 2"),
        ("100% sure", "addr-100%25 sure"),
    ],
)
def test_any_text_is_an_idempotency_key_the_same_on_every_attempt(
    project: Any, server: FaultServer, transport: str, address: str, header: str
) -> None:
    server.script("/address", status(503), json({"ok": True}))
    result = project.run_sync("move", {"address": address})
    assert result.status == "completed", result.error
    keys = [r.headers["idempotency-key"] for r in server.hits("/address")]
    assert keys == [header, header]  # retried once, with the same key
    assert server.hits("/address")[0].json() == {"address": address}


def test_a_long_key_goes_as_its_hash() -> None:
    value = idempotency_header("k" * 300, "POST shop/x")
    assert value.startswith("sha256-") and len(value) == 7 + 64
    assert value == idempotency_header("k" * 300, "POST shop/x")


def test_a_key_that_cannot_be_sent_is_validation() -> None:
    with pytest.raises(StepError) as info:
        idempotency_header("addr-\ud800", "POST shop/address")
    assert info.value.kind == "validation"
    assert "POST shop/address" in info.value.message


# -- 35: bytes that are not HTTP ---------------------------------------------------------------


async def _not_http(request: Request, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n\r\n")
    await writer.drain()
    writer.close()


def test_an_answer_that_is_not_http_is_connect_and_retried(
    project: Any, server: FaultServer, transport: str
) -> None:
    server.script("/v2/customers/c1/orders", _not_http)
    result = project.run_sync("orders_of", {"customer": "c1"})
    assert result.status == "failed"
    assert result.error["kind"] == "connect"
    assert "not HTTP" in result.error["message"]
    assert "SSH" not in result.error["message"]  # the merchant's bytes stay out of the message
    assert len(server.hits("/v2/customers/c1/orders")) == 2  # retry: on: [connect] applies


# -- 7: why a connection failed ----------------------------------------------------------------


def test_a_refused_connection_says_refused(projects: Any, transport: str) -> None:
    project = projects.make(
        CONNECTIONS,
        FLOWS,
        env={
            "FAULTS_URL": f"http://127.0.0.1:{free_port()}",
            "GRAPHQL_URL": "http://127.0.0.1:9/g",
        },
    )
    result = project.run_sync("orders_of", {"customer": "c1"})
    assert result.error["kind"] == "connect"
    assert "GET shop/v2/customers/c1/orders: the connection was refused" in result.error["message"]


@pytest.fixture
def plain_port() -> Iterator[int]:
    """A server that answers any connection with plain HTTP at once: no TLS handshake."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join(5)
    listener.close()


def test_tls_to_a_plain_http_server_says_tls(
    projects: Any, server: FaultServer, transport: str, plain_port: int
) -> None:
    url = f"https://127.0.0.1:{plain_port}"
    project = projects.make(CONNECTIONS, FLOWS, env={"FAULTS_URL": url, **_graphql(server)})
    result = project.run_sync("orders_of", {"customer": "c1"})
    assert result.error["kind"] == "connect"
    assert "the TLS handshake failed" in result.error["message"]


def test_a_name_that_does_not_resolve_says_dns() -> None:
    request = httpx.Request("GET", "https://shop.invalid/x")
    try:
        raise socket.gaierror(-2, "Name or service not known")
    except socket.gaierror as cause:
        try:
            raise httpx.ConnectError("[Errno -2] Name or service not known") from cause
        except httpx.ConnectError as exc:
            exc.request = request
            error, sent = translate(exc, what="GET shop/x")
    assert (error.kind, sent) == ("connect", False)
    assert error.message == "GET shop/x: the host name could not be resolved (DNS)"


def test_a_certificate_error_says_tls() -> None:
    try:
        raise ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
    except ssl.SSLError as cause:
        try:
            raise httpx.ConnectError("certificate verify failed") from cause
        except httpx.ConnectError as exc:
            error, sent = translate(exc, what="GET shop/x")
    assert (error.kind, sent) == ("connect", False)
    assert error.message.startswith("GET shop/x: the TLS handshake failed (")


# -- 30: a project closes its clients ------------------------------------------------------------


RUN_ONCE = """
import asyncio, gc, sys
from csflow import Project

ENV = {"FAULTS_URL": sys.argv[2], "GRAPHQL_URL": sys.argv[2] + "/g"}
project = Project.load(sys.argv[1], environ=ENV)
{body}
gc.collect()
print(result.status)
"""


@pytest.mark.parametrize(
    "body",
    [
        'result = asyncio.run(project.run("orders_of", {"customer": "c1"}))',
        textwrap.dedent(
            """
            async def main():
                async with Project.load(sys.argv[1], environ=ENV) as p:
                    return await p.run("orders_of", {"customer": "c1"})
            result = asyncio.run(main())
            """
        ),
    ],
    ids=["asyncio.run", "async with"],
)
def test_a_run_leaves_no_unclosed_connector(
    projects: Any, server: FaultServer, transport: str, body: str
) -> None:
    server.script("/v2/customers/c1/orders", json([]))
    root = projects.write(CONNECTIONS, FLOWS)
    code = RUN_ONCE.replace("{body}", body)
    out = subprocess.run(
        [sys.executable, "-c", code, str(root), server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "completed", out.stderr
    assert "Unclosed" not in out.stderr and "unclosed" not in out.stderr, out.stderr


SOAP_CONNECTIONS = """
erp:
  type: soap
  wsdl: wsdl/erp.wsdl
  url: {env: SOAP_URL}
  timeout: 2s
  read_only: [GetOrderStatus]
"""

SOAP_FLOWS = {
    "status": """
    name: status
    steps:
      - id: erp
        call: soap
        with: {connection: erp, operation: GetOrderStatus, args: {orderNumber: ORD-1}}
    """,
}

SOAP_ANSWER = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:erp="http://erp.demo.shop/orders"><soap:Body><erp:GetOrderStatusResponse>'
    "<erp:orderNumber>ORD-1</erp:orderNumber><erp:status>IN_TRANSIT</erp:status>"
    "<erp:lastUpdate>2026-11-20T10:00:00Z</erp:lastUpdate><erp:shipments/>"
    "</erp:GetOrderStatusResponse></soap:Body></soap:Envelope>"
)


def test_a_soap_address_goes_out_as_it_is_written(
    projects: Any, server: FaultServer, transport: str
) -> None:
    wsdl = (Path(__file__).resolve().parents[2] / "demo" / "erp.wsdl").read_text()
    server.script("/erp/%2E%2E/soap", xml(SOAP_ANSWER))
    project = projects.make(
        SOAP_CONNECTIONS,
        SOAP_FLOWS,
        env={"SOAP_URL": f"{server.url}/erp/%2E%2E/soap"},
        files={"wsdl/erp.wsdl": wsdl},
    )
    result = project.run_sync("status")
    assert result.status == "completed", result.error
    assert [r.path for r in server.requests] == ["/erp/%2E%2E/soap"]
