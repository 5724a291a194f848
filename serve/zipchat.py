"""Zipchat's custom order-tracking API (seed 001).

``GET {path}?order_id=..&customer_email=..`` with ``x-api-key``:

- found: 200 ``{"context": ..., "tracking_url": ...}`` (``tracking_url`` null when there is none)
- not found: 404 ``{"context": ...}``
- missing or wrong key: 401, no body
- a run that fails or would pass Zipchat's 5 s: 503 ``{"context": "could not check now"}``
- order_id or customer_email missing, or refused by the flow: 400 ``{"context": ...}`` naming it

Zipchat gives its agent only the ``context`` (never the status), so every answer says in its
context whether an order was found.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.engine.errors import StepError
from csflow.serve.config import LoadContext
from csflow.serve.endpoint import Answer, Caller, Endpoint, FlowCall, Inbound
from csflow.serve.models import ZIPCHAT_DEADLINE, ZipchatChannel
from csflow.serve.runtime import ChannelRun, KeyRing, text, truthy
from csflow.serve.templates import REQUEST_ONLY, RUN_NAMES, Reads, Render, scope, unwrap

if TYPE_CHECKING:
    from csflow import Project

PARAMETERS = ("order_id", "customer_email")
UNAVAILABLE = (
    "The order status could not be checked right now: the order system did not answer in "
    "time. Ask the customer to try again in a few minutes."
)
NOT_FOUND = "No order found with the provided details."
FOUND = "Order found."
_UNAUTHORIZED = Answer(401, b"", "unauthorized")  # "no body", and still Zipchat's Content-Type
_TOO_LARGE = Answer.json({"context": "The request was too large to check."}, 413, "too_large")

Fields = dict[str, Any]  # the query's fields, as the templates read them


@dataclass
class ZipchatEndpoint(Endpoint[Fields]):
    methods: ClassVar[tuple[str, ...]] = ("GET",)
    platform: ClassVar[str] = "zipchat"
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Project]  # tenant -> its project
    flow: str
    inputs: Render
    found: Render | None
    context: Render
    tracking_url: Render | None
    unavailable_text: Render | None
    timeout: float

    async def authenticate(self, request: Inbound) -> Caller | Answer:
        tenant = self.keys.match(request.headers.get("x-api-key"))
        if tenant is None:
            return _UNAUTHORIZED
        return Caller(tenant, self.projects[tenant])

    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[Fields] | Answer:
        await request.body(self.timeout)  # a GET has none; one over the limit is still refused
        fields: Fields = dict(request.query)
        missing = [p for p in PARAMETERS if not str(fields.get(p) or "").strip()]
        if missing:
            text_ = " and ".join(missing)
            return Answer.json(
                {"context": f"The order could not be looked up: {text_} missing from the request."},
                400,
                "bad_request",
            )
        try:
            inputs = unwrap(self.inputs(scope(fields)))
        except StepError as exc:
            return self._unavailable(fields, None, str(exc))
        return FlowCall(caller, self.flow, inputs, fields)

    def refuse_inputs(self, call: FlowCall[Fields], message: str) -> Answer:
        context = f"The order could not be looked up with these details: {message}"
        return Answer.json({"context": context}, 400, "bad_request")

    def render(self, call: FlowCall[Fields], outcome: ChannelRun) -> Answer:
        result = outcome.result
        if result is None or not outcome.completed:
            return self._unavailable(call.request, result)
        s = scope(call.request, result.outputs, result.reply, result.status)
        try:
            found = truthy(self.found(s)) if self.found is not None else True
            context = text(self.context(s)) or (FOUND if found else NOT_FOUND)
            url = text(self.tracking_url(s)) if self.tracking_url is not None else None
        except StepError as exc:
            return self._unavailable(call.request, result, str(exc))
        if not found:
            return Answer.json({"context": context}, 404, "not_found")
        return Answer.json({"context": context, "tracking_url": url or None}, 200, "found")

    def unavailable(self, detail: str | None = None) -> Answer:
        return Answer.json({"context": UNAVAILABLE}, 503, "unavailable", detail=detail)

    def too_large(self) -> Answer:
        return _TOO_LARGE

    def _unavailable(self, fields: Fields, result: Any, detail: str | None = None) -> Answer:
        context = UNAVAILABLE
        if self.unavailable_text is not None:
            s = scope(fields, getattr(result, "outputs", None), getattr(result, "reply", None))
            # The platform still gets its answer if this fails: the default says the same.
            with contextlib.suppress(StepError):
                context = text(self.unavailable_text(s)) or UNAVAILABLE
        return Answer.json({"context": context}, 503, "unavailable", detail=detail)

    @classmethod
    def build(cls, name: str, model: ZipchatChannel, ctx: LoadContext) -> ZipchatEndpoint | None:
        default = [(model.api_key, (name, "api_key"))] if model.api_key is not None else []
        keys, served = ctx.key_ring(name, default, model.tenants)
        outputs = ctx.served_flow(model.flow, served, model.inputs, (name,))
        request_fields = frozenset(PARAMETERS)
        before = Reads(REQUEST_ONLY, request_fields, {})
        after = Reads(RUN_NAMES, request_fields, outputs)
        t = ctx.templates

        def optional(text: str | None, key: str, reads: Reads) -> Render | None:
            return None if text is None else t.template(text, (name, key), reads)

        return cls(
            name=name,
            path=model.path,
            keys=keys,
            projects={tenant: served[tenant].project for tenant in served},
            flow=model.flow,
            inputs=t.value(model.inputs, (name, "inputs"), before),
            found=optional(model.found, "found", after),
            context=t.template(model.context, (name, "context"), after),
            tracking_url=optional(model.tracking_url, "tracking_url", after),
            unavailable_text=optional(model.unavailable, "unavailable", after),
            timeout=model.timeout or ZIPCHAT_DEADLINE,
        )
