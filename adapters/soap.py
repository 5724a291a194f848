"""SOAP over zeep, through the connection's own httpx machinery.

The WSDL was read at project load (``adapters.wsdl``). At run time zeep's ``AsyncClient``
builds the envelope and reads the answer, but its POST goes through ``Connection.send``
(``ConnectionTransport``): timeouts, the host check, the size cap, auth, redaction, mocking
and ``ctx.sent`` are the same as for ``http``. zeep's exceptions become error kinds here,
once (STYLE habit 3).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import zeep
import zeep.exceptions as zx
from lxml import etree
from zeep.proxy import AsyncServiceProxy
from zeep.transports import AsyncTransport

from csflow.adapters.wsdl import Wsdl, WsdlError, wsdl_for
from csflow.adapters.xml import parse_xml, zeep_settings
from csflow.engine.context import Payload
from csflow.engine.errors import StepError


@dataclass(slots=True)
class _Call:
    """What ``ConnectionTransport.post`` needs for one operation, set around the zeep call."""

    conn: Any
    ctx: Any
    write: bool
    operation: str
    status: int | None = None
    body: bytes = b""


# zeep hands back the raw answer, which ``_answer`` reads once with csflow's own parser.
RUN_SETTINGS = zeep_settings(raw_response=True)

_CALL: contextvars.ContextVar[_Call] = contextvars.ContextVar("csflow_soap_call")


class ConnectionTransport(AsyncTransport):
    """zeep's async transport with no client of its own: every POST is ``Connection.send``."""

    def __init__(self) -> None:  # AsyncTransport's would make two httpx clients we never use
        self.cache = None
        self._close_session = False
        self.logger = logging.getLogger("zeep.transports")

    async def post(self, address: str, message: bytes, headers: dict[str, str]) -> Any:
        call = _CALL.get()
        conn = call.conn
        try:
            response = await conn.send(
                "POST", address, ctx=call.ctx, headers=headers, content=message, write=call.write
            )
        except StepError as err:
            # The absolute URL makes "POST erphttp://..."; say which operation it was.
            err.message = err.message.replace(
                f"POST {conn.name}{address}", f"SOAP {conn.name}.{call.operation}"
            )
            raise
        call.status, call.body = response.status_code, response.content
        if response.status_code in (401, 403):
            raise StepError(
                "auth",
                f"SOAP {conn.name}.{call.operation} answered {response.status_code}",
                status=response.status_code,
            )
        return response

    async def get(self, address: str, params: Any, headers: Any) -> Any:
        raise StepError("validation", "SOAP over HTTP GET is not supported")

    def load(self, url: str) -> bytes:
        raise WsdlError("nothing is loaded while running: the WSDL was read at project load")

    async def aclose(self) -> None:
        pass  # the connection owns and closes its clients


@dataclass
class _Client:
    wsdl: Wsdl
    service: Any


_clients: weakref.WeakKeyDictionary[Any, _Client] = weakref.WeakKeyDictionary()


def _client_for(conn: Any) -> _Client:
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
            wsdl.document, transport=ConnectionTransport(), settings=RUN_SETTINGS
        )
        # Not client.create_service: on an AsyncClient it makes a sync proxy (zeep 4.3).
        service = AsyncServiceProxy(client, wsdl.binding, address=address)  # type: ignore[no-untyped-call]
        found = _Client(wsdl, service)
        _clients[conn] = found
    return found


async def call(conn: Any, operation: str, args: Mapping[str, Any], ctx: Any) -> Payload:
    """Call ``operation`` with ``args``; the result as plain dicts, the envelope as XML."""
    client = _client_for(conn)
    if operation not in client.wsdl.operations:
        raise StepError("validation", f"the WSDL of '{conn.name}' has no operation '{operation}'")
    what = f"SOAP {conn.name}.{operation}"
    state = _Call(conn, ctx, operation not in conn.model.read_only, operation)
    token = _CALL.set(state)
    try:
        await client.service[operation](**args)  # raw_response: zeep hands back the answer
        result, xml = _answer(client.wsdl.binding, operation, state, what)
    except StepError:
        raise
    except zx.Fault as exc:
        raise fault_error(conn.name, operation, exc, state.status) from None
    except (zx.ValidationError, TypeError) as exc:
        # zeep checks arguments against the WSDL before sending: a missing or unknown one.
        text = getattr(exc, "message", None) or str(exc)
        raise StepError("validation", f"{what}: {text.split('. Signature')[0]}") from None
    except (zx.Error, etree.LxmlError) as exc:
        text = getattr(exc, "message", None) or str(exc)
        raise StepError(
            "parse", f"{what}: the answer could not be read ({text})", status=state.status
        ) from None
    finally:
        _CALL.reset(token)
    return Payload(data=plain(result), status=state.status, xml=xml)


def _answer(binding: Any, operation: str, state: _Call, what: str) -> tuple[Any, Any]:
    """zeep's ``process_reply``, on csflow's one safe XML parser, parsing the answer once.

    The tree is both what zeep reads the result from and the envelope ``xpath`` sees.
    """
    status, body = state.status or 0, state.body
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
