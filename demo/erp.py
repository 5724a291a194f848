"""The "legacy ERP": a hand-written SOAP 1.1 document/literal server over lxml.

It answers exactly what zeep expects from demo/erp.wsdl: wrapped request elements in the
target namespace, `<op>Response` elements back, and SOAP 1.1 Faults (HTTP 500) with a
`faultcode`, a `faultstring` and an `ErpFault` detail carrying a stable code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lxml import etree
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from csflow.demo.models import ERP_STATUS, Address, ShopError, iso
from csflow.demo.state import ShopState, check_basic
from csflow.demo.store import Store

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TNS = "http://erp.demo.shop/orders"
WSDL_PATH = Path(__file__).with_name("erp.wsdl")
WSDL_PLACEHOLDER = "http://localhost:8765/erp"
MAX_BODY = 1 << 20  # an order request is a few hundred bytes; refuse anything huge
XML = "text/xml; charset=utf-8"

_ENV = f"{{{SOAP_ENV}}}Envelope"
_BODY = f"{{{SOAP_ENV}}}Body"
_NSMAP = {"soap": SOAP_ENV, "erp": TNS}

Operation = Callable[[etree._Element, Store, str], etree._Element]


class _Fault(Exception):
    def __init__(self, faultcode: str, message: str, code: str, order: str | None = None):
        super().__init__(message)
        self.faultcode, self.message, self.code, self.order = faultcode, message, code, order


def _envelope() -> tuple[etree._Element, etree._Element]:
    env = etree.Element(_ENV, nsmap=_NSMAP)
    return env, etree.SubElement(env, _BODY)


def _add(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    el = etree.SubElement(parent, f"{{{TNS}}}{name}")
    if text is not None:
        el.text = text
    return el


def _serialize(env: etree._Element) -> bytes:
    data: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return data


def fault_envelope(f: _Fault) -> bytes:
    env, body = _envelope()
    fault = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    # SOAP 1.1: faultcode, faultstring and detail are unqualified children of Fault.
    etree.SubElement(fault, "faultcode").text = f"soap:{f.faultcode}"
    etree.SubElement(fault, "faultstring").text = f.message
    detail = _add(etree.SubElement(fault, "detail"), "ErpFault")
    _add(detail, "code", f.code)
    if f.order:
        _add(detail, "orderNumber", f.order)
    return _serialize(env)


def _field(op: etree._Element, name: str, *, required: bool = True) -> str | None:
    # Match on the local name: hand-written clients often forget the namespace on children.
    for child in op:
        if isinstance(child.tag, str) and etree.QName(child).localname == name:
            text = (child.text or "").strip()
            if text or not required:
                return text or None
    if required:
        raise _Fault("Client", f"{name} is required", "INVALID_REQUEST")
    return None


def _order_number(op: etree._Element) -> str:
    value = _field(op, "orderNumber")
    assert value is not None
    return value


def _address(parent: etree._Element, name: str, a: Address) -> None:
    el = _add(parent, name)
    _add(el, "line1", a.line1)
    if a.line2:
        _add(el, "line2", a.line2)
    _add(el, "city", a.city)
    _add(el, "postalCode", a.postal_code)
    _add(el, "country", a.country)


def get_order_status(op: etree._Element, store: Store, base: str) -> etree._Element:
    order = store.order(_order_number(op))
    env, body = _envelope()
    out = _add(body, "GetOrderStatusResponse")
    _add(out, "orderNumber", order.number)
    _add(out, "status", ERP_STATUS[order.status])
    _add(out, "lastUpdate", iso(order.updated_at))
    shipments = _add(out, "shipments")
    for s in order.shipments:
        if s.tracking_number is None or s.shipped_at is None:
            continue  # a parcel still being packed is not a shipment for the ERP
        el = _add(shipments, "shipment")
        _add(el, "carrier", s.carrier)
        _add(el, "trackingNumber", s.tracking_number)
        _add(el, "trackingUrl", s.tracking_url)
        _add(el, "shippedAt", iso(s.shipped_at))
    return env


def get_shipping_address(op: etree._Element, store: Store, base: str) -> etree._Element:
    order = store.order(_order_number(op))
    env, body = _envelope()
    out = _add(body, "GetShippingAddressResponse")
    _add(out, "orderNumber", order.number)
    _address(out, "address", order.address)
    return env


def update_shipping_address(op: etree._Element, store: Store, base: str) -> etree._Element:
    number = _order_number(op)
    store.order(number)  # an unknown order is a not-found fault before any field complaint
    new = Address(
        line1=_field(op, "line1") or "",
        line2=_field(op, "line2", required=False),
        city=_field(op, "city") or "",
        postal_code=_field(op, "postalCode") or "",
        country=(_field(op, "country") or "").upper(),
    )
    order = store.update_address(number, new)
    env, body = _envelope()
    out = _add(body, "UpdateShippingAddressResponse")
    _add(out, "ok", "true")
    _address(out, "address", order.address)
    return env


def cancel_order(op: etree._Element, store: Store, base: str) -> etree._Element:
    order = store.cancel_order(_order_number(op), _field(op, "reason", required=False) or "")
    env, body = _envelope()
    out = _add(body, "CancelOrderResponse")
    _add(out, "cancelled", "true")
    _add(out, "refundAmount", f"{order.total:.2f}")
    _add(out, "currency", order.currency)
    return env


def create_return_label(op: etree._Element, store: Store, base: str) -> etree._Element:
    label = store.return_label(_order_number(op))
    env, body = _envelope()
    out = _add(body, "CreateReturnLabelResponse")
    _add(out, "labelId", label.id)
    _add(out, "labelUrl", f"{base}labels/{label.id}.pdf")
    _add(out, "carrier", label.carrier)
    _add(out, "expiresAt", iso(label.expires_at))
    return env


OPERATIONS: dict[str, Operation] = {
    "GetOrderStatus": get_order_status,
    "GetShippingAddress": get_shipping_address,
    "UpdateShippingAddress": update_shipping_address,
    "CancelOrder": cancel_order,
    "CreateReturnLabel": create_return_label,
}


def handle_envelope(
    payload: bytes, store: Store, base: str, parser: etree.XMLParser
) -> tuple[int, bytes]:
    """(HTTP status, response envelope) for one SOAP request."""
    try:
        if len(payload) > MAX_BODY:
            raise _Fault("Client", "Request too large", "INVALID_REQUEST")
        try:
            root = etree.fromstring(payload, parser)
        except etree.XMLSyntaxError as e:
            raise _Fault("Client", f"Malformed XML: {e.msg}", "INVALID_REQUEST") from None
        if root.getroottree().docinfo.doctype:
            raise _Fault("Client", "DTDs are not allowed", "INVALID_REQUEST")
        if root.tag != _ENV:
            raise _Fault("VersionMismatch", "Expected a SOAP 1.1 Envelope", "INVALID_REQUEST")
        body = root.find(_BODY)
        op = None if body is None else next((c for c in body if isinstance(c.tag, str)), None)
        if op is None:
            raise _Fault("Client", "Empty SOAP Body", "INVALID_REQUEST")
        name = etree.QName(op)
        handler = OPERATIONS.get(name.localname) if name.namespace == TNS else None
        if handler is None:
            raise _Fault("Client", f"Unknown operation {name.text}", "UNKNOWN_OPERATION")
        try:
            return 200, _serialize(handler(op, store, base))
        except ShopError as e:
            order = op.findtext(f"{{{TNS}}}orderNumber")
            raise _Fault("Client", e.message, e.code, order) from None
    except _Fault as f:
        return 500, fault_envelope(f)  # SOAP 1.1 over HTTP: every Fault is a 500
    except Exception:
        return 500, fault_envelope(_Fault("Server", "Internal ERP error", "INTERNAL"))


def _label_pdf(label_id: str) -> bytes:
    """A one-page PDF so that a demo's label link opens something real."""
    text = f"BT /F1 24 Tf 72 720 Td (Demo Shop return label {label_id}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, obj)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return out


def erp_routes(state: ShopState) -> list[BaseRoute]:
    cfg = state.config
    wsdl_template = WSDL_PATH.read_text(encoding="utf-8")
    wsdl_by_base: dict[str, bytes] = {}
    # One parser per app: each app runs on one server thread, and lxml parsers are not
    # meant to be shared across threads. The settings refuse entities, DTDs and network.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )

    async def erp(request: Request) -> Response:
        if "erp" in state.down:
            return Response("Service Unavailable", 503, media_type="text/plain")
        if not check_basic(request.headers.get("authorization"), cfg.erp_user, cfg.erp_password):
            return Response(
                "Unauthorized",
                401,
                headers={"WWW-Authenticate": 'Basic realm="Demo ERP"'},
                media_type="text/plain",
            )
        await state.delay("erp")
        base = str(request.base_url)
        if request.method == "GET":
            if not any(k.lower() == "wsdl" for k in request.query_params):
                return Response("POST SOAP 1.1 envelopes here; the WSDL is at ?wsdl", 405,
                                headers={"Allow": "POST"}, media_type="text/plain")  # fmt: skip
            wsdl = wsdl_by_base.get(base)
            if wsdl is None:
                wsdl = wsdl_template.replace(WSDL_PLACEHOLDER, f"{base}erp").encode()
                wsdl_by_base[base] = wsdl
            return Response(wsdl, media_type=XML)
        try:
            raw = await request.body()
        except ClientDisconnect:  # the caller gave up during an injected delay: nothing to do
            return Response(status_code=499)
        status, payload = handle_envelope(raw, state.store, base, parser)
        return Response(payload, status, media_type=XML)

    async def label(request: Request) -> Response:
        label_id = request.path_params["label_id"]
        if state.store.label(label_id) is None:
            return Response("Not Found", 404, media_type="text/plain")
        return Response(_label_pdf(label_id), media_type="application/pdf")

    return [
        Route("/erp", erp, methods=["GET", "POST"]),
        Route("/labels/{label_id}.pdf", label, methods=["GET"]),
    ]
