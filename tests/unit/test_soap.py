"""The ``soap`` action with no network: the WSDL from the project, answers from MockTransport.

Covers the load-time checks against the WSDL (exact places), faults as typed errors, XPath
with the connection's namespaces, writes under §7, and the transport boundary.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from unit_support import ProjectFiles, answer

from csflow.adapters.operation_mocks import use_operation_mocks

WSDL = (Path(__file__).resolve().parents[2] / "demo" / "erp.wsdl").read_text()
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://erp.demo.shop/orders"
PASSWORD = "erp-Pass-98765"

CONNECTIONS = """
erp:
  type: soap
  wsdl: wsdl/erp.wsdl
  url: https://erp.example.com/soap
  namespaces: {erp: "http://erp.demo.shop/orders", env: "http://schemas.xmlsoap.org/soap/envelope/"}
  auth: {type: basic, username: csflow, password: {env: ERP_PASSWORD}}
  timeout: 2s
  read_only: [GetOrderStatus]
  retry: {attempts: 3, backoff: 10ms, on: [connect, timeout, 5xx]}
"""

FLOWS = Path(__file__).parent / "projects" / "soap" / "flows"  # shared by several tests
STATUS_FLOW = FLOWS / "status.yaml"
CANCEL_FLOW = FLOWS / "cancel.yaml"
ONE_CALL = FLOWS / "one.yaml"  # flow "one": one GetOrderStatus call, on connection erp


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP_ENV}" '
        f'xmlns:erp="{TNS}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    ).encode()


STATUS_ANSWER = envelope(
    "<erp:GetOrderStatusResponse><erp:orderNumber>ORD-1</erp:orderNumber>"
    "<erp:status>IN_TRANSIT</erp:status><erp:lastUpdate>2026-11-20T10:00:00Z</erp:lastUpdate>"
    "<erp:shipments>"
    "<erp:shipment><erp:carrier>UPS</erp:carrier><erp:trackingNumber>1Z1</erp:trackingNumber></erp:shipment>"
    "<erp:shipment><erp:carrier>DHL</erp:carrier><erp:trackingNumber>003</erp:trackingNumber></erp:shipment>"
    "</erp:shipments></erp:GetOrderStatusResponse>"
)


def fault(code: str, text: str, detail_code: str) -> bytes:
    return envelope(
        f"<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{text}</faultstring>"
        f"<detail><erp:ErpFault><erp:code>{detail_code}</erp:code>"
        "<erp:orderNumber>ORD-1</erp:orderNumber></erp:ErpFault></detail></soap:Fault>"
    )


def load(proj: ProjectFiles, *flows: str | Path, connections: str = CONNECTIONS, wsdl: str = WSDL):
    proj.write(
        flows={f"f{i}": text for i, text in enumerate(flows)},
        connections=connections,
        files={"wsdl/erp.wsdl": wsdl},
    )
    return proj.load({"ERP_PASSWORD": PASSWORD})


# ------------------------------------------------------------------------------ calling


async def test_a_call_gives_plain_dicts_for_path_and_the_envelope_for_xpath(proj):
    project = load(proj, STATUS_FLOW)
    seen = answer(project, lambda r: httpx.Response(200, content=STATUS_ANSWER))
    result = await project.run("status", {"number": "ORD-1"})
    assert result.status == "completed", result.error
    assert result.outputs == {
        "status": "IN_TRANSIT",
        "carrier": "DHL",  # xpath with the connection's erp prefix
        "tracking": "003",  # path over the plain dicts
        "shipments": 2,  # count(...) through the env and erp prefixes
        "updated": result.outputs["updated"],
        "envelope_ns": SOAP_ENV,
    }
    assert result.outputs["updated"].isoformat() == "2026-11-20T10:00:00+00:00"
    request = seen[0]
    assert str(request.url) == "https://erp.example.com/soap"
    assert request.headers["SOAPAction"] == f'"{TNS}/GetOrderStatus"'
    assert request.headers["Authorization"].startswith("Basic ")
    assert b"<ns0:orderNumber>ORD-1</ns0:orderNumber>" in request.content


async def test_decimals_and_dates_come_back_json_friendly(proj):
    project = load(proj, CANCEL_FLOW)
    body = envelope(
        "<erp:CancelOrderResponse><erp:cancelled>true</erp:cancelled>"
        "<erp:refundAmount>78.99</erp:refundAmount><erp:currency>USD</erp:currency>"
        "</erp:CancelOrderResponse>"
    )
    answer(project, lambda r: httpx.Response(200, content=body))
    result = await project.run("cancel", {"number": "ORD-1"})
    assert result.outputs == {"refund": 78.99, "currency": "USD"}
    assert type(result.outputs["refund"]) is float
    assert '"refund": 78.99' in result.to_json()


async def test_a_fault_fails_with_http_status_500_and_carries_its_code_and_string(proj):
    project = load(proj, CANCEL_FLOW)
    seen = answer(
        project,
        lambda r: httpx.Response(
            500, content=fault("Client", "Order ORD-1 has already shipped", "ORDER_SHIPPED")
        ),
    )
    result = await project.run("cancel", {"number": "ORD-1"})
    assert result.status == "failed"
    error = result.error
    assert error["kind"] == "http_status" and error["status"] == 500
    assert error["fault_code"] == "soap:Client"
    assert error["fault_string"] == "Order ORD-1 has already shipped"
    assert error["fault_detail"] == {"code": "ORDER_SHIPPED", "orderNumber": "ORD-1"}
    assert "Order ORD-1 has already shipped" in error["message"]
    # A Client fault is the merchant's answer: even with 5xx in `on:`, it is not sent again.
    assert len(seen) == 1 and result.steps[0].attempts == 1


async def test_a_server_fault_on_a_read_is_retried_when_the_step_says_5xx(proj):
    project = load(proj, STATUS_FLOW)
    answers = iter(
        [
            httpx.Response(500, content=fault("Server", "database busy", "BUSY")),
            httpx.Response(200, content=STATUS_ANSWER),
        ]
    )
    seen = answer(project, lambda r: next(answers))
    result = await project.run("status", {"number": "ORD-1"})
    assert result.status == "completed", result.error
    assert len(seen) == 2 and result.steps[0].attempts == 2


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (401, b"Unauthorized", "auth"),
        (503, b"Service Unavailable", "http_status"),
        (200, b"this is not xml", "parse"),
        (200, b"<!DOCTYPE x [<!ENTITY e 'boom'>]><x>&e;</x>", "parse"),
    ],
    ids=["401", "503 text", "200 not xml", "200 with a DTD"],
)
async def test_answers_that_are_not_soap_get_their_kind(proj, status, body, kind):
    project = load(proj, CANCEL_FLOW)
    answer(project, lambda r: httpx.Response(status, content=body))
    result = await project.run("cancel", {"number": "ORD-1"})
    assert result.status == "failed"
    assert result.error["kind"] == kind
    assert result.steps[0].status == status
    assert "erpexample" not in result.error["message"]
    assert PASSWORD not in result.to_json()


async def test_a_timed_out_write_is_unknown_and_not_retried_but_a_read_is(proj):
    """§7: CancelOrder is a write (not in read_only); GetOrderStatus is read_only."""
    project = load(proj, CANCEL_FLOW, STATUS_FLOW)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    seen = answer(project, slow)
    cancel = await project.run("cancel", {"number": "ORD-1"})
    assert cancel.error["kind"] == "timeout"
    assert cancel.steps[0].outcome == "unknown" and cancel.steps[0].attempts == 1
    assert len(seen) == 1
    assert "SOAP erp.CancelOrder" in cancel.error["message"]
    status = await project.run("status", {"number": "ORD-1"})
    assert status.error["kind"] == "timeout"
    assert status.steps[0].attempts == 3 and status.steps[0].outcome is None
    assert len(seen) == 4


async def test_bad_arguments_at_run_time_fail_before_anything_is_sent(proj):
    flow = """
    name: templated
    inputs: {args: object}
    steps:
      - id: erp
        call: soap
        with: {connection: erp, operation: CancelOrder, args: "{{ args }}"}
    """
    project = load(proj, flow)
    seen = answer(project, lambda r: httpx.Response(200, content=STATUS_ANSWER))
    missing = await project.run("templated", {"args": {"orderNumber": "ORD-1"}})
    assert missing.error["kind"] == "validation"
    assert "Missing element reason" in missing.error["message"]
    unknown = await project.run("templated", {"args": {"orderNumber": "1", "reason": "x", "z": 1}})
    assert unknown.error["kind"] == "validation"
    assert "'z'" in unknown.error["message"]
    assert seen == []


async def test_operation_mocks_answer_without_the_network(proj):
    project = load(proj, CANCEL_FLOW)
    seen = answer(project, lambda r: httpx.Response(500))

    def lookup(connection: str, operation: str):
        found = (connection, operation) == ("erp", "CancelOrder")
        return found, {"refundAmount": 12.5, "currency": "EUR"}

    use_operation_mocks(project.connections, lookup)
    try:
        result = await project.run("cancel", {"number": "ORD-1"})
    finally:
        use_operation_mocks(project.connections, None)
    assert result.outputs == {"refund": 12.5, "currency": "EUR"}
    assert seen == []
    after = await project.run("cancel", {"number": "ORD-1"})  # the lookup is gone: the network
    assert after.error["kind"] == "http_status" and len(seen) == 1


async def test_one_connection_serves_several_event_loops(proj):
    project = load(proj, STATUS_FLOW)
    answer(project, lambda r: httpx.Response(200, content=STATUS_ANSWER))
    first = await project.run("status", {"number": "ORD-1"})
    second = await asyncio.to_thread(project.run_sync, "status", {"number": "ORD-1"})
    assert first.outputs["carrier"] == second.outputs["carrier"] == "DHL"


# ------------------------------------------------------------------------------ load time

CHECKED = """
name: checked
steps:
  - id: a
    call: soap
    with: {connection: erp, operation: GetOrderStatuss, args: {orderNumber: "1"}}
  - id: b
    call: soap
    with:
      connection: erp
      operation: CancelOrder
      args: {orderNumbr: "1", reason: x}
  - id: c
    call: soap
    with:
      connection: erp
      operation: UpdateShippingAddress
      args:
        orderNumber: "1"
        line1: "1 Main St"
"""


def test_operations_and_arguments_are_checked_against_the_wsdl_at_their_place(proj):
    proj.write(flows={"checked": CHECKED}, connections=CONNECTIONS, files={"wsdl/erp.wsdl": WSDL})
    problems = {(p.path, p.line, p.column, p.message) for p in proj.problems({"ERP_PASSWORD": "x"})}
    f = "flows/checked.yaml"
    assert problems == {
        (
            *proj.at(f, "GetOrderStatuss"),
            "the WSDL of this connection has no operation 'GetOrderStatuss'"
            " (did you mean 'GetOrderStatus'?)",
        ),
        (
            *proj.at(f, "{orderNumbr"),
            "operation 'CancelOrder' has no argument 'orderNumbr' (did you mean 'orderNumber'?)",
        ),
        (*proj.at(f, "{orderNumbr"), "operation 'CancelOrder' needs 'orderNumber' in 'args'"),
        (
            *proj.at(f, 'orderNumber: "1"\n        line1'),
            "operation 'UpdateShippingAddress' needs 'city', 'country', 'postalCode' in 'args'",
        ),
    }
    # counted by hand: the unknown operation is the value of `operation:` on line 5
    assert (f, 5, 40) in {(p[0], p[1], p[2]) for p in problems}


@pytest.mark.parametrize(
    ("wsdl", "fragment"),
    [
        (None, "WSDL file 'wsdl/erp.wsdl' not found in the project"),
        ("<definitions>", "is not usable"),
        (
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x "y">]><definitions/>',
            "declares a DTD or entities",
        ),
        (
            WSDL.replace(
                "<wsdl:types>",
                '<wsdl:import namespace="urn:x" location="https://evil.example.com/x.wsdl"/>'
                "<wsdl:types>",
            ),
            "imports https://evil.example.com/x.wsdl: only the WSDL itself is read",
        ),
        (
            WSDL.replace(
                '<xsd:schema targetNamespace="http://erp.demo.shop/orders"',
                '<xsd:schema targetNamespace="http://erp.demo.shop/orders">'
                '<xsd:include schemaLocation="../../outside.xsd"/></xsd:schema>'
                '<xsd:schema targetNamespace="urn:other"',
            ),
            "outside the project",
        ),
    ],
    ids=["missing", "not a wsdl", "dtd", "remote import", "file outside the project"],
)
def test_a_wsdl_that_cannot_be_used_is_a_problem_at_the_step(proj, wsdl, fragment):
    files = {} if wsdl is None else {"wsdl/erp.wsdl": wsdl}
    (proj.root.parent / "outside.xsd").write_text("<schema/>")
    proj.write(flows={"one": ONE_CALL}, connections=CONNECTIONS, files=files)
    problem = proj.problem(fragment, {"ERP_PASSWORD": "x"})
    assert proj.place(problem) == proj.at("flows/one.yaml", "erp,")


def test_a_wsdl_outside_the_project_or_over_plain_http_is_never_read(proj):
    connections = """
    erp:
      type: soap
      wsdl: ../outside.wsdl
    far:
      type: soap
      wsdl: http://erp.example.com/erp?wsdl
    """
    (proj.root.parent / "outside.wsdl").write_text(WSDL)
    proj.write(
        flows={
            "one": ONE_CALL,
            "two": ONE_CALL.read_text().replace("one", "two").replace("erp,", "far,"),
        },
        connections=connections,
    )
    problems = proj.problems()
    outside = [p for p in problems if "is outside the project" in p.message]
    assert [proj.place(p) for p in outside] == [proj.at("flows/one.yaml", "erp,")]
    insecure = [p for p in problems if "plain http is refused for 'erp.example.com'" in p.message]
    assert [proj.place(p) for p in insecure] == [proj.at("connections.yaml", "http://erp")]


def test_the_address_from_the_wsdl_must_be_https_unless_loopback(proj):
    connections = """
    erp:
      type: soap
      wsdl: wsdl/erp.wsdl
    """
    remote = WSDL.replace("http://localhost:8765/erp", "http://erp.example.com/erp")
    proj.write(flows={"one": ONE_CALL}, connections=connections, files={"wsdl/erp.wsdl": remote})
    problem = proj.problem("plain http is refused for 'erp.example.com'")
    assert proj.place(problem) == proj.at("flows/one.yaml", "erp,")


def test_a_soap_action_needs_a_soap_connection(proj):
    flow = """
    name: one
    steps:
      - call: soap
        with: {connection: shop, operation: GetOrderStatus}
    """
    connections = """
    shop:
      type: rest
      base_url: https://shop.example.com
    """
    proj.write(flows={"one": flow}, connections=connections)
    problem = proj.problem("needs a soap connection")
    assert proj.place(problem) == proj.at("flows/one.yaml", "shop,")
