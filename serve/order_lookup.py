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
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from csflow.engine.errors import StepError
from csflow.serve.config import LoadContext
from csflow.serve.endpoint import Answer, Caller, Endpoint, FlowCall, Inbound
from csflow.serve.models import DEFAULT_DEADLINE, OrderLookupChannel
from csflow.serve.runtime import ChannelRun, KeyRing, plain_json
from csflow.serve.templates import REQUEST_ONLY, RUN_NAMES, Reads, Render, scope, unwrap

if TYPE_CHECKING:
    from csflow import Project

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


def error(status: int, code: str, message: str, outcome: str, detail: str | None = None) -> Answer:
    return Answer.json({"error": code, "message": message}, status, outcome, detail=detail)


_UNAUTHORIZED = error(401, "unauthorized", "missing or invalid API key", "unauthorized")
_TOO_LARGE = error(413, "too_large", "the request body is over 64 KiB", "too_large")
_NO_PARAMETER = error(
    400, "missing_parameter", "give at least one of email, order_id, phone, ref_id", "bad_request"
)
Fields = dict[str, str]


@dataclass
class OrderLookupEndpoint(Endpoint[Fields]):
    methods: ClassVar[tuple[str, ...]] = ("GET",)
    platform: ClassVar[str] = "order_lookup"
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Project]  # tenant -> its project
    flow: str
    inputs: Render
    orders: Render
    timeout: float

    async def authenticate(self, request: Inbound) -> Caller | Answer:
        headers = request.headers
        tenant = self.keys.match(headers.get("x-api-key") or _bearer(headers.get("authorization")))
        if tenant is None:
            return _UNAUTHORIZED
        return Caller(tenant, self.projects[tenant])

    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[Fields] | Answer:
        await request.body(self.timeout)
        fields = {k: v for k, v in request.query.items() if k in PARAMETERS and v.strip()}
        if not fields:
            return _NO_PARAMETER
        try:
            inputs = unwrap(self.inputs(scope(fields)))
        except StepError as exc:
            return self.unavailable(str(exc))
        return FlowCall(caller, self.flow, inputs, fields)

    def refuse_inputs(self, call: FlowCall[Fields], message: str) -> Answer:
        return error(400, "invalid_parameter", message, "bad_request")

    def render(self, call: FlowCall[Fields], outcome: ChannelRun) -> Answer:
        result = outcome.result
        if result is None or not outcome.completed:
            return self.unavailable()
        try:
            s = scope(call.request, result.outputs, result.reply, result.status)
            orders = unwrap(self.orders(s))
        except StepError as exc:
            return self.unavailable(str(exc))
        if orders is None:
            orders = []
        elif isinstance(orders, dict):
            orders = [orders]  # one order is still an array
        try:
            ORDERS.validate_python(orders)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return self.unavailable(f"orders[{where}]: {first['msg']}")
        outcome_ = "found" if orders else "not_found"
        return Answer(200, plain_json(orders), outcome_, orders=len(orders))

    def unavailable(self, detail: str | None = None) -> Answer:
        message = "the order system could not be reached; try again later"
        return error(503, "unavailable", message, "unavailable", detail)

    def too_large(self) -> Answer:
        return _TOO_LARGE

    @classmethod
    def build(cls, name: str, model: OrderLookupChannel, ctx: LoadContext) -> OrderLookupEndpoint:
        default = [(model.api_key, (name, "api_key"))] if model.api_key is not None else []
        keys, served = ctx.key_ring(name, default, model.tenants)
        outputs = ctx.served_flow(model.flow, served, model.inputs, (name,))
        fields = frozenset(PARAMETERS)
        t = ctx.templates
        return cls(
            name=name,
            path=model.path,
            keys=keys,
            projects={k: v.project for k, v in served.items()},
            flow=model.flow,
            inputs=t.value(model.inputs, (name, "inputs"), Reads(REQUEST_ONLY, fields, {})),
            orders=t.template(model.orders, (name, "orders"), Reads(RUN_NAMES, fields, outputs)),
            timeout=model.timeout or DEFAULT_DEADLINE,
        )


def _bearer(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None
