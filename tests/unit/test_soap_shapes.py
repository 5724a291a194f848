"""What ``path:`` sees of a SOAP answer, told from the WSDL: for ``inspect`` and the loader.

Checked on the Demo Shop WSDL and on a WCF-shaped one (``data/wcf_orders.wsdl``:
``XxxResponse{XxxResult{...}}``), against what zeep really gives for an answer: every path
listed finds its value, and a path the check refuses finds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jmespath
import pytest
from unit_support import ProjectFiles
from zeep.transports import Transport
from zeep.wsdl import Document

from csflow.adapters.soap import _answer, plain
from csflow.adapters.wsdl import SETTINGS
from csflow.adapters.wsdl_shapes import answer_of
from csflow.engine.shapes import Answer, path_problem, paths

DATA = Path(__file__).parent / "data"
DEMO_WSDL = Path(__file__).resolve().parents[2] / "demo" / "erp.wsdl"
WCF_WSDL = DATA / "wcf_orders.wsdl"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

WCF_STATUS = f"""<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body>
<GetOrderStatusResponse xmlns="http://tempuri.org/"><GetOrderStatusResult
 xmlns:a="http://schemas.datacontract.org/2004/07/Shop">
<a:OrderNumber>ORD-7</a:OrderNumber><a:Status>Shipped</a:Status>
<a:Parcels><a:Parcel><a:Carrier>UPS</a:Carrier><a:TrackingNumber>1Z</a:TrackingNumber></a:Parcel></a:Parcels>
</GetOrderStatusResult></GetOrderStatusResponse></s:Body></s:Envelope>""".encode()

DEMO_STATUS = f"""<s:Envelope xmlns:s="{SOAP_ENV}" xmlns:erp="http://erp.demo.shop/orders"><s:Body>
<erp:GetOrderStatusResponse><erp:orderNumber>ORD-1</erp:orderNumber><erp:status>IN_TRANSIT</erp:status>
<erp:lastUpdate>2026-11-20T10:00:00Z</erp:lastUpdate><erp:shipments><erp:shipment>
<erp:carrier>UPS</erp:carrier><erp:trackingNumber>1Z1</erp:trackingNumber>
<erp:trackingUrl>https://ups.example/1Z1</erp:trackingUrl><erp:shippedAt>2026-11-19T10:00:00Z</erp:shippedAt>
</erp:shipment></erp:shipments></erp:GetOrderStatusResponse></s:Body></s:Envelope>""".encode()


def _binding(wsdl: Path) -> Any:
    document = Document(str(wsdl), Transport(), settings=SETTINGS)  # type: ignore[arg-type]
    service = next(iter(document.services.values()))
    return next(iter(service.ports.values())).binding


def _answer_and_data(wsdl: Path, operation: str, body: bytes) -> tuple[Answer, Any]:
    binding = _binding(wsdl)
    answer = answer_of(operation, binding._operations[operation])
    assert answer is not None
    result, _ = _answer(binding, operation, 200, body, operation)
    return answer, plain(result)


@pytest.mark.parametrize(
    ("wsdl", "body"), [(WCF_WSDL, WCF_STATUS), (DEMO_WSDL, DEMO_STATUS)], ids=["wcf", "demo"]
)
def test_every_path_the_wsdl_lists_finds_its_value_in_a_real_answer(wsdl: Path, body: bytes):
    answer, data = _answer_and_data(wsdl, "GetOrderStatus", body)
    listed = [p for p, _ in paths(answer.shape)]
    assert len(listed) >= 6
    for path in listed:
        assert jmespath.search(path, data) not in (None, []), path
        assert path_problem(path, answer) is None, path


def test_a_wcf_answer_is_seen_inside_its_result_and_the_wrapper_is_a_near_miss():
    answer, data = _answer_and_data(WCF_WSDL, "GetOrderStatus", WCF_STATUS)
    assert answer.unwrapped == ("GetOrderStatusResult",)
    assert jmespath.search("GetOrderStatusResult.Status", data) is None  # what went silent
    assert jmespath.search("Status", data) == "Shipped"
    assert path_problem("GetOrderStatusResult.Status", answer) == (
        "'GetOrderStatusResult.Status' cannot match the answer of GetOrderStatus (the path"
        " starts inside GetOrderStatusResult, which is unwrapped): its fields are OrderNumber,"
        " Status, Parcels; did you mean 'Status'?"
    )


def test_a_one_field_result_is_unwrapped_twice_to_its_value():
    binding = _binding(WCF_WSDL)
    answer = answer_of("RefundOrder", binding._operations["RefundOrder"])
    assert answer is not None and answer.unwrapped == ("RefundOrderResult", "Amount")
    assert path_problem("@", answer) is None
    problem = path_problem("Amount", answer)
    assert problem is not None and "the answer is one value (decimal)" in problem


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("order.status", "its fields are orderNumber, status, lastUpdate, shipments; did you mean 'status'?"),
        ("shipments.shipment.carrier", "'shipments.shipment' is a list: reach into it with 'shipments.shipment[]'; did you mean 'shipments.shipment[].carrier'?"),
        ("shipments.shipment[?carrier=='UPS'].trackingNumbr", "'shipments.shipment[]' has the fields carrier, trackingNumber, trackingUrl, shippedAt; did you mean 'shipments.shipment[].trackingNumber'?"),
        ("status.code", "'status' is a value of type OrderStatus, with no fields; did you mean 'status'?"),
    ],
)  # fmt: skip
def test_a_path_that_cannot_match_the_demo_erp_says_what_is_there(path: str, says: str):
    answer, data = _answer_and_data(DEMO_WSDL, "GetOrderStatus", DEMO_STATUS)
    assert jmespath.search(path, data) in (None, [])  # it really finds nothing
    problem = path_problem(path, answer)
    assert problem is not None and problem.endswith(says), problem


@pytest.mark.parametrize(
    "path",
    [
        "status",
        "shipments.shipment[-1].trackingNumber",
        "shipments.shipment[].{c: carrier, t: trackingNumber}",
        "length(shipments.shipment)",
        "max_by(shipments.shipment, &shippedAt).carrier",
        "status || 'UNKNOWN'",
        "shipments.shipment[0] | carrier",
    ],
)
def test_paths_that_can_match_pass(path: str):
    answer, _ = _answer_and_data(DEMO_WSDL, "GetOrderStatus", DEMO_STATUS)
    assert path_problem(path, answer) is None


def test_a_path_that_cannot_match_is_a_placed_load_problem(proj: ProjectFiles):
    proj.write(
        flows={"status": (DATA / "wcf_status_flow.yaml").read_text()},
        connections=(DATA / "wcf_connections.yaml").read_text(),
        files={"wsdl/orders.wsdl": WCF_WSDL.read_text()},
    )
    problems = [(p.path, p.line, p.column, p.message) for p in proj.problems()]
    f = "flows/status.yaml"
    assert problems == [
        (
            *proj.at(f, "GetOrderStatusResult.Status"),
            "'GetOrderStatusResult.Status' cannot match the answer of GetOrderStatus (the path"
            " starts inside GetOrderStatusResult, which is unwrapped): its fields are"
            " OrderNumber, Status, Parcels; did you mean 'Status'?",
        ),
        (
            *proj.at(f, "Parcels.Parcel.Carrier"),
            "'Parcels.Parcel.Carrier' cannot match the answer of GetOrderStatus (the path"
            " starts inside GetOrderStatusResult, which is unwrapped): 'Parcels.Parcel' is a"
            " list: reach into it with 'Parcels.Parcel[]'; did you mean"
            " 'Parcels.Parcel[].Carrier'?",
        ),
    ]
