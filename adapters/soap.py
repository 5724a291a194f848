"""SOAP over zeep, through the connection's own httpx machinery.

The WSDL was read at project load (``adapters.wsdl``). At run time zeep builds the envelope
and reads the answer, and the POST is ``HttpConnection.send`` with the call's view: timeouts,
the host check, the size cap, auth, redaction, mocking and what was sent are the same as for
``http``. zeep's exceptions become error kinds here, once (STYLE habit 3).
"""

from __future__ import annotations

import datetime as dt
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import httpx
import zeep
import zeep.exceptions as zx
from lxml import etree
from zeep.transports import AsyncTransport
from zeep.wsdl.utils import etree_to_string

from csflow.adapters.calls import CallView
from csflow.adapters.connections import HttpConnection
from csflow.adapters.wsdl import Wsdl, WsdlError, wsdl_for
from csflow.adapters.xml import parse_xml, zeep_settings
from csflow.engine.context import Payload
from csflow.engine.errors import StepError

# zeep hands back the raw answer, which ``_answer`` reads once with csflow's own parser.
RUN_SETTINGS = zeep_settings(raw_response=True)


class NoTransport(AsyncTransport):
    """zeep's transport with no client of its own: csflow posts the envelope itself.

    zeep builds the envelope (``binding._create``: WS-Addressing, plugins, WSSE) and reads the
    answer; the POST is ``HttpConnection.send`` with the call's view, so timeouts, the host
    check, the size cap, auth, redaction and what was sent are the same as for ``http``.
    """

    def __init__(self) -> None:  # AsyncTransport's would make two httpx clients we never use
        self.cache = None
        self._close_session = False
        self.logger = logging.getLogger("zeep.transports")

    async def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        raise WsdlError("csflow posts SOAP envelopes itself (adapters.soap.call)")

    async def get(self, address: str, params: Any, headers: Any) -> Any:
        raise StepError("validation", "SOAP over HTTP GET is not supported")

    def load(self, url: str) -> bytes:
        raise WsdlError("nothing is loaded while running: the WSDL was read at project load")

    async def aclose(self) -> None:
        pass  # the connection owns and closes its clients


@dataclass
class _Client:
    wsdl: Wsdl
    zeep: zeep.AsyncClient
    address: str


_clients: weakref.WeakKeyDictionary[HttpConnection, _Client] = weakref.WeakKeyDictionary()


def _client_for(conn: HttpConnection) -> _Client:
    found = _clients.get(conn)
    if found is None:
        try:
            wsdl = wsdl_for(conn.model, conn.root)
        except WsdlError as exc:
            raise StepError("validation", str(exc)) from None
        address = conn.model.url or wsdl.address
        if not address:
            raise StepError("validation", f"connection '{conn.name}' has no SOAP address")
        if not conn.base_url:
            # The address comes from the WSDL: the host check must allow that host, and only it.
            parts = urlsplit(address)
            conn.base_url, conn.origin = address, (parts.scheme, parts.hostname, parts.port)
        client = zeep.AsyncClient(  # type: ignore[no-untyped-call]
            wsdl.document, transport=NoTransport(), settings=RUN_SETTINGS
        )
        found = _Client(wsdl, client, address)
        _clients[conn] = found
    return found


async def call(
    conn: HttpConnection, operation: str, args: Mapping[str, Any], view: CallView
) -> Payload:
    """Call ``operation`` with ``args``; the result as plain dicts, the envelope as XML."""
    client = _client_for(conn)
    if operation not in client.wsdl.operations:
        raise StepError("validation", f"the WSDL of '{conn.name}' has no operation '{operation}'")
    what = f"SOAP {conn.name}.{operation}"
    status: int | None = None
    try:
        # zeep's own send_async, with our POST: the envelope with WS-Addressing, plugins, WSSE.
        envelope, headers = client.wsdl.binding._create(
            operation, (), dict(args), client=client.zeep, options={"address": client.address}
        )
        message = etree_to_string(envelope)  # type: ignore[no-untyped-call]
        response = await _post(conn, client.address, message, headers, operation, view, what)
        status = response.status_code
        result, xml = _answer(client.wsdl.binding, operation, status, response.content, what)
    except StepError:
        raise
    except zx.Fault as exc:
        raise fault_error(conn.name, operation, exc, status) from None
    except (zx.ValidationError, TypeError) as exc:
        # zeep checks arguments against the WSDL before sending: a missing or unknown one.
        text = getattr(exc, "message", None) or str(exc)
        raise StepError("validation", f"{what}: {text.split('. Signature')[0]}") from None
    except (zx.Error, etree.LxmlError) as exc:
        text = getattr(exc, "message", None) or str(exc)
        raise StepError(
            "parse", f"{what}: the answer could not be read ({text})", status=status
        ) from None
    return Payload(data=plain(result), status=status, xml=xml)


async def _post(
    conn: HttpConnection,
    address: str,
    message: bytes,
    headers: dict[str, str],
    operation: str,
    view: CallView,
    what: str,
) -> httpx.Response:
    write = operation not in conn.model.read_only
    try:
        response = await conn.send(
            "POST", address, view, headers=headers, content=message, write=write
        )
    except StepError as err:
        # The absolute URL makes "POST erphttp://..."; say which operation it was.
        raise err.replace(message=err.message.replace(f"POST {conn.name}{address}", what)) from None
    if response.status_code in (401, 403):
        raise StepError(
            "auth", f"{what} answered {response.status_code}", status=response.status_code
        )
    return response


def _answer(binding: Any, operation: str, status: int, body: bytes, what: str) -> tuple[Any, Any]:
    """zeep's ``process_reply``, on csflow's one safe XML parser, parsing the answer once.

    The tree is both what zeep reads the result from and the envelope ``xpath`` sees.
    """
    if status in (201, 202) and not body:
        return None, None
    try:
        doc = parse_xml(body)
    except etree.LxmlError:
        if status >= 400:  # a gateway's text or HTML page: the status says what happened
            raise StepError("http_status", f"{what} answered {status}", status=status) from None
        raise
    op = binding.get(operation)
    fault = doc.find("soap-env:Body/soap-env:Fault", namespaces=binding.nsmap)
    if status != 200 or fault is not None:
        binding.process_error(doc, op)  # raises zeep's Fault
    return op.process_reply(doc), doc


def fault_error(name: str, operation: str, fault: zx.Fault, status: int | None) -> StepError:
    """A SOAP Fault as ``http_status``: its code and string, and its detail's leaf values.

    A ``Client`` fault is the merchant refusing this request: sending it again cannot help.
    """
    code = fault.code or ""
    detail = _detail(fault.detail)
    message = f"SOAP fault from {name}.{operation}: {fault.message or code or 'no faultstring'}"
    return StepError(
        "http_status",
        message,
        status=status if status and status >= 400 else 500,
        retryable=not code.rpartition(":")[2].startswith("Client"),
        details={"fault_code": code, "fault_string": fault.message, "fault_detail": detail},
    )


def _detail(node: Any) -> dict[str, Any]:
    """``<detail><ErpFault><code>X</code></ErpFault></detail>`` as ``{"code": "X"}``."""
    out: dict[str, Any] = {}
    if not isinstance(node, etree._Element):
        return out
    for el in node.iter():
        if isinstance(el.tag, str) and len(el) == 0 and el is not node:
            out.setdefault(etree.QName(el).localname, (el.text or "").strip())
    return out


def plain(value: Any) -> Any:
    """zeep's objects as JSON-friendly data: dicts, lists, str, float, int, bool, ISO dates."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    values = getattr(value, "__values__", None)  # zeep's CompoundValue: read its dict directly
    if values is not None:
        return {k: plain(v) for k, v in values.items()}
    if isinstance(value, Decimal):  # money: 158.00 stays a number, as in the REST API
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() == dt.timedelta(0):
            return value.replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, etree._Element):
        return etree.tostring(value, encoding="unicode")
    return str(value)
