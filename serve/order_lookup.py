"""A custom order-tracking endpoint (seed 000).

``GET {path}?email=&order_id=&phone=&ref_id=`` (at least one) with the key in ``x-api-key``
(or ``Authorization: Bearer KEY``). The answer is always an array of orders in the seed's
suggested ``Order`` schema, ``[]`` when none match; each order is checked against that schema
before it leaves, so a flow that maps a field wrong is a 503 in the log, never a bad answer.
Errors are ``{"error": CODE, "message": ...}``: 400 ``missing_parameter``, 401
``unauthorized``, 413 ``too_large``, 503 ``unavailable``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from csflow.engine.errors import StepError
from csflow.serve.config import LoadContext
from csflow.serve.models import DEFAULT_DEADLINE, OrderLookupChannel
from csflow.serve.runtime import (
    BodyTooLarge,
    KeyRing,
    budget,
    json_response,
    read_body,
    record,
    run_within,
    shielded,
)
from csflow.serve.templates import REQUEST_ONLY, RUN_NAMES, Reads, Render, scope, unwrap

PARAMETERS = ("email", "order_id", "phone", "ref_id")


class _Open(BaseModel):
    # "Your field names don't need to match exactly": extra fields are allowed, the named
    # ones must have the seed's types.
    model_config = ConfigDict(extra="allow", strict=True)


class Customer(_Open):
    email: str
    phone: str | None = None
    name: str | None = None


class Address(_Open):
    line1: str
    city: str
    postal_code: str
    country: str


class Item(_Open):
    sku: str
    name: str
    quantity: int
    price: float
    image_url: str | None = None


class Order(_Open):
    """The seed's suggested schema (its TypeScript ``Order``)."""

    id: str
    status: Literal["pending", "processing", "shipped", "delivered", "cancelled"]
    created_at: str
    updated_at: str | None = None
    customer: Customer
    shipping_address: Address | None = None
    items: list[Item]
    total: float
    currency: str
    tracking_number: str | None = None
    external_ref_id: str | None = None


ORDERS = TypeAdapter(list[Order])


def error(status: int, code: str, message: str) -> Response:
    return json_response({"error": code, "message": message}, status)


@dataclass
class OrderLookupEndpoint:
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Any]
    flow: str
    inputs: Render
    orders: Render
    timeout: float
    type: str = "order_lookup"

    def routes(self) -> list[BaseRoute]:
        fallback = lambda: error(503, "unavailable", "the order system could not be reached")  # noqa: E731
        return [Route(self.path, shielded(self.handle, fallback), methods=["GET"])]

    async def handle(self, request: Request) -> Response:
        note = record(request)
        note["channel"] = self.name
        presented = request.headers.get("x-api-key") or _bearer(
            request.headers.get("authorization")
        )
        tenant = self.keys.match(presented)
        if tenant is None:
            note["outcome"] = "unauthorized"
            return error(401, "unauthorized", "missing or invalid API key")
        note["tenant"] = tenant
        try:
            await read_body(request)
        except BodyTooLarge:
            note["outcome"] = "too_large"
            return error(413, "too_large", "the request body is over 64 KiB")
        fields = {k: v for k, v in request.query_params.items() if k in PARAMETERS and v.strip()}
        if not fields:
            note["outcome"] = "bad_request"
            return error(
                400, "missing_parameter", "give at least one of email, order_id, phone, ref_id"
            )
        try:
            inputs = unwrap(self.inputs(scope(fields)))
        except StepError as exc:
            return self._unavailable(note, str(exc))
        outcome = await run_within(
            self.projects[tenant], self.flow, inputs, budget(request, self.timeout), note
        )
        if outcome.usage_error is not None:
            note["outcome"] = "bad_request"
            return error(400, "invalid_parameter", outcome.usage_error)
        if not outcome.completed:
            return self._unavailable(note)
        result = outcome.result
        try:
            orders = unwrap(self.orders(scope(fields, result.outputs, result.reply, result.status)))
        except StepError as exc:
            return self._unavailable(note, str(exc))
        if orders is None:
            orders = []
        elif isinstance(orders, dict):
            orders = [orders]  # one order is still an array
        try:
            ORDERS.validate_python(orders)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return self._unavailable(note, f"orders[{where}]: {first['msg']}")
        note["outcome"] = "found" if orders else "not_found"
        note["orders"] = len(orders)
        return json_response(orders)

    def _unavailable(self, note: dict[str, Any], why: str | None = None) -> Response:
        note["outcome"] = "unavailable"
        if why:
            note["template_error"] = why[:200]
        return error(503, "unavailable", "the order system could not be reached; try again later")


def _bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def build(name: str, model: OrderLookupChannel, ctx: LoadContext) -> OrderLookupEndpoint | None:
    default = [(model.api_key, (name, "api_key"))] if model.api_key is not None else []
    keys, served = ctx.key_ring(name, default, model.tenants)
    outputs = ctx.served_flow(model.flow, served, model.inputs, (name,))
    fields = frozenset(PARAMETERS)
    t = ctx.templates
    return OrderLookupEndpoint(
        name=name,
        path=model.path,
        keys=keys,
        projects={k: v.project for k, v in served.items()},
        flow=model.flow,
        inputs=t.value(model.inputs, (name, "inputs"), Reads(REQUEST_ONLY, fields, {})),
        orders=t.template(model.orders, (name, "orders"), Reads(RUN_NAMES, fields, outputs)),
        timeout=model.timeout or DEFAULT_DEADLINE,
    )
