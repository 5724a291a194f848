"""The SOAP ERP through zeep, exactly as a merchant's integration would call it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault
from zeep.helpers import serialize_object
from zeep.transports import AsyncTransport, Transport

from csflow.demo import DemoShop

TNS = "http://erp.demo.shop/orders"


def zeep_client(s: DemoShop) -> zeep.Client:
    session = requests.Session()
    session.auth = (s.erp_user, s.erp_password)
    return zeep.Client(s.erp_wsdl_url, transport=Transport(session=session, timeout=5))


@pytest.fixture(scope="module")
def erp(shop: DemoShop) -> zeep.Client:
    return zeep_client(shop)


@pytest.fixture
def fresh_erp(fresh_shop: DemoShop) -> zeep.Client:
    return zeep_client(fresh_shop)


@pytest.fixture
def fresh_rest(fresh_shop: DemoShop) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {fresh_shop.token}"}
    with httpx.Client(base_url=fresh_shop.rest_url, headers=headers) as client:
        yield client


def fault_code(fault: Fault) -> str:
    """The stable code in the ErpFault detail."""
    assert fault.detail is not None
    return str(fault.detail.findtext(f"{{{TNS}}}ErpFault/{{{TNS}}}code"))


# -- the WSDL and auth ------------------------------------------------------------------


def test_the_wsdl_is_served_with_the_servers_real_address(shop: DemoShop) -> None:
    r = httpx.get(shop.erp_wsdl_url, auth=(shop.erp_user, shop.erp_password))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    assert f'location="{shop.erp_url}"' in r.text
    assert "localhost:8765" not in r.text
    assert 'targetNamespace="http://erp.demo.shop/orders"' in r.text


@pytest.mark.parametrize("auth", [None, ("erp", "wrong"), ("admin", "erp-secret")])
def test_the_erp_wants_basic_auth(shop: DemoShop, auth: tuple[str, str] | None) -> None:
    for response in (
        httpx.get(shop.erp_wsdl_url, auth=auth),
        httpx.post(shop.erp_url, content=b"<x/>", auth=auth),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic")


def test_zeep_sees_every_operation(erp: zeep.Client) -> None:
    service = erp.wsdl.services["ErpOrdersService"]
    operations = service.ports["ErpOrdersPort"].binding._operations
    assert set(operations) == {
        "GetOrderStatus",
        "GetShippingAddress",
        "UpdateShippingAddress",
        "CancelOrder",
        "CreateReturnLabel",
    }


# -- reads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("ORD-1001", "OPEN"),
        ("ORD-1002", "IN_PROGRESS"),
        ("ORD-1003", "IN_TRANSIT"),
        ("ORD-1005", "DELIVERED"),
        ("ORD-1007", "CANCELLED"),
        ("ORD-1008", "IN_TRANSIT"),
    ],
)
def test_get_order_status_speaks_the_erp_vocabulary(
    erp: zeep.Client, number: str, status: str
) -> None:
    result = erp.service.GetOrderStatus(orderNumber=number)
    assert result.orderNumber == number
    assert result.status == status
    assert isinstance(result.lastUpdate, datetime)
    assert result.lastUpdate <= datetime.now(UTC)


def test_the_erp_knows_the_parcels_the_rest_record_lacks(erp: zeep.Client) -> None:
    data = serialize_object(erp.service.GetOrderStatus("ORD-1008"), dict)
    (parcel,) = data["shipments"]["shipment"]
    assert parcel["carrier"] == "USPS"
    assert parcel["trackingNumber"] == "9400111899223100012345"
    assert parcel["trackingUrl"].endswith("9400111899223100012345")


def test_only_parcels_that_left_are_erp_shipments(erp: zeep.Client) -> None:
    partial = erp.service.GetOrderStatus("ORD-1004")
    assert [s.trackingNumber for s in partial.shipments.shipment] == ["00340434161234567890"]
    # zeep quirk: an empty <shipments/> comes back as None, not as an empty list.
    pending = erp.service.GetOrderStatus("ORD-1001")
    assert pending.shipments is None


def test_get_shipping_address(erp: zeep.Client) -> None:
    result = erp.service.GetShippingAddress(orderNumber="ORD-1012")
    assert result.orderNumber == "ORD-1012"
    a = result.address
    assert (a.line1, a.line2, a.city, a.postalCode, a.country) == (
        "233 S Wacker Drive",
        "Suite 4100",
        "Chicago",
        "60606",
        "US",
    )


def test_an_unknown_order_is_a_client_fault(erp: zeep.Client) -> None:
    with pytest.raises(Fault) as caught:
        erp.service.GetOrderStatus("ORD-9999")
    assert caught.value.code == "soap:Client"
    assert caught.value.message == "Order ORD-9999 not found"
    assert fault_code(caught.value) == "ORDER_NOT_FOUND"


def test_a_fault_is_an_http_500_soap_envelope(shop: DemoShop) -> None:
    envelope = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
        f' xmlns:erp="{TNS}"><soap:Body><erp:GetShippingAddress>'
        "<erp:orderNumber>ORD-0000</erp:orderNumber>"
        "</erp:GetShippingAddress></soap:Body></soap:Envelope>"
    )
    r = httpx.post(shop.erp_url, content=envelope, auth=(shop.erp_user, shop.erp_password))
    assert r.status_code == 500
    assert r.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(r.content)
    assert root.findtext(".//faultcode") == "soap:Client"
    assert "ORD-0000" in (root.findtext(".//faultstring") or "")


@pytest.mark.parametrize(
    "payload",
    [
        b"not xml at all",
        b'<Envelope xmlns="urn:nope"><Body/></Envelope>',
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap:Body/></soap:Envelope>",
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<soap:Body><x:Drop xmlns:x="http://erp.demo.shop/orders"/></soap:Body></soap:Envelope>',
    ],
    ids=["not-xml", "not-soap", "empty-body", "unknown-operation"],
)
def test_bad_requests_are_faults_not_crashes(shop: DemoShop, payload: bytes) -> None:
    r = httpx.post(shop.erp_url, content=payload, auth=(shop.erp_user, shop.erp_password))
    assert r.status_code == 500
    assert etree.fromstring(r.content).find(".//faultcode") is not None


def test_entities_and_dtds_are_refused(shop: DemoShop) -> None:
    xxe = (
        b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
        b'<erp:GetOrderStatus xmlns:erp="http://erp.demo.shop/orders">'
        b"<erp:orderNumber>&x;</erp:orderNumber></erp:GetOrderStatus></soap:Body></soap:Envelope>"
    )
    r = httpx.post(shop.erp_url, content=xxe, auth=(shop.erp_user, shop.erp_password))
    assert r.status_code == 500
    assert b"root:" not in r.content
    assert etree.fromstring(r.content).findtext(".//faultcode") == "soap:Client"


# -- writes, which the REST view must reflect --------------------------------------------


def test_update_shipping_address_shows_in_rest(
    fresh_erp: zeep.Client, fresh_rest: httpx.Client
) -> None:
    result = fresh_erp.service.UpdateShippingAddress(
        orderNumber="ORD-1001",
        line1="1 Infinite Loop",
        city="Cupertino",
        postalCode="95014",
        country="us",
    )
    assert result.ok is True
    assert (result.address.line1, result.address.line2, result.address.country) == (
        "1 Infinite Loop",
        None,
        "US",
    )
    rest = fresh_rest.get("/orders/ORD-1001").json()
    assert rest["shipping_address"]["city"] == "Cupertino"
    assert rest["updated_at"] > rest["created_at"]


@pytest.mark.parametrize(
    ("number", "code"),
    [("ORD-1003", "ORDER_SHIPPED"), ("ORD-1004", "ORDER_SHIPPED"), ("ORD-1007", "ORDER_CANCELLED")],
)
def test_the_address_cannot_change_once_shipped_or_cancelled(
    erp: zeep.Client, number: str, code: str
) -> None:
    with pytest.raises(Fault) as caught:
        erp.service.UpdateShippingAddress(
            orderNumber=number, line1="x", city="y", postalCode="1", country="US"
        )
    assert fault_code(caught.value) == code


def test_cancel_order_refunds_and_shows_cnl_in_rest(
    fresh_erp: zeep.Client, fresh_rest: httpx.Client
) -> None:
    result = fresh_erp.service.CancelOrder(orderNumber="ORD-1002", reason="Found it cheaper")
    assert result.cancelled is True
    assert result.refundAmount == Decimal("349.00")
    assert result.currency == "EUR"
    rest = fresh_rest.get("/orders/ORD-1002").json()
    assert (rest["status"], rest["cancel_reason"]) == ("CNL", "Found it cheaper")
    assert fresh_erp.service.GetOrderStatus("ORD-1002").status == "CANCELLED"

    with pytest.raises(Fault) as caught:
        fresh_erp.service.CancelOrder(orderNumber="ORD-1002", reason="again")
    assert fault_code(caught.value) == "ALREADY_CANCELLED"


@pytest.mark.parametrize("number", ["ORD-1003", "ORD-1005", "ORD-1008"])
def test_shipped_and_delivered_orders_cannot_be_cancelled(erp: zeep.Client, number: str) -> None:
    with pytest.raises(Fault) as caught:
        erp.service.CancelOrder(orderNumber=number, reason="too late")
    assert caught.value.code == "soap:Client"
    assert fault_code(caught.value) == "ORDER_SHIPPED"


def test_create_return_label_for_a_delivered_order(fresh_shop: DemoShop) -> None:
    erp = zeep_client(fresh_shop)
    label = erp.service.CreateReturnLabel(orderNumber="ORD-1005")
    assert label.labelId.startswith("RL-")
    assert label.carrier == "FedEx"
    assert label.expiresAt > datetime.now(UTC)
    assert label.labelUrl.startswith(fresh_shop.base_url)
    pdf = httpx.get(label.labelUrl)
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    # Asking again hands out the same, still valid label.
    assert erp.service.CreateReturnLabel(orderNumber="ORD-1005").labelId == label.labelId
    assert httpx.get(f"{fresh_shop.base_url}/labels/RL-0000-999.pdf").status_code == 404


@pytest.mark.parametrize("number", ["ORD-1001", "ORD-1003", "ORD-1007"])
def test_no_return_label_before_delivery(erp: zeep.Client, number: str) -> None:
    with pytest.raises(Fault) as caught:
        erp.service.CreateReturnLabel(orderNumber=number)
    assert fault_code(caught.value) == "NOT_DELIVERED"


def test_a_missing_required_field_is_a_fault(erp: zeep.Client) -> None:
    # zeep refuses to send a missing required element itself; strict=False-like clients do.
    with pytest.raises(Fault) as caught:
        erp.service.GetOrderStatus(orderNumber="   ")
    assert fault_code(caught.value) == "INVALID_REQUEST"


# -- zeep's async client over httpx -----------------------------------------------------


async def test_the_async_zeep_client_over_httpx(shop: DemoShop) -> None:
    auth = (shop.erp_user, shop.erp_password)
    transport = AsyncTransport(
        client=httpx.AsyncClient(auth=auth, timeout=5),
        wsdl_client=httpx.Client(auth=auth, timeout=5),
    )
    try:
        client = zeep.AsyncClient(shop.erp_wsdl_url, transport=transport)
        result = await client.service.GetOrderStatus(orderNumber="ORD-1011")
        assert result.status == "IN_TRANSIT"
        assert result.shipments.shipment[0].carrier == "An Post"
        with pytest.raises(Fault) as caught:
            await client.service.CreateReturnLabel(orderNumber="ORD-1011")
        assert fault_code(caught.value) == "NOT_DELIVERED"
    finally:
        await transport.aclose()
        transport.wsdl_client.close()
