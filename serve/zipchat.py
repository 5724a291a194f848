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
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from csflow.engine.errors import StepError
from csflow.serve.config import LoadContext
from csflow.serve.models import ZIPCHAT_DEADLINE, ZipchatChannel
from csflow.serve.runtime import (
    BodyTooLarge,
    KeyRing,
    budget,
    empty_response,
    json_response,
    read_body,
    record,
    run_within,
    shielded,
    truthy,
)
from csflow.serve.templates import REQUEST_ONLY, RUN_NAMES, Reads, Render, scope, unwrap

PARAMETERS = ("order_id", "customer_email")
UNAVAILABLE = (
    "The order status could not be checked right now: the order system did not answer in "
    "time. Ask the customer to try again in a few minutes."
)
NOT_FOUND = "No order found with the provided details."
FOUND = "Order found."


@dataclass
class ZipchatEndpoint:
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Any]  # tenant -> Project
    flow: str
    inputs: Render
    found: Render | None
    context: Render
    tracking_url: Render | None
    unavailable: Render | None
    timeout: float
    type: str = "zipchat"

    def routes(self) -> list[BaseRoute]:
        fallback = lambda: json_response({"context": UNAVAILABLE}, 503)  # noqa: E731
        return [Route(self.path, shielded(self.handle, fallback), methods=["GET"])]

    async def handle(self, request: Request) -> Response:
        note = record(request)
        note["channel"] = self.name
        tenant = self.keys.match(request.headers.get("x-api-key"))
        if tenant is None:
            note["outcome"] = "unauthorized"
            return empty_response(401)
        note["tenant"] = tenant
        try:
            await read_body(request)  # a GET has none; one over the limit is still refused
        except BodyTooLarge:
            note["outcome"] = "too_large"
            return json_response({"context": "The request was too large to check."}, 413)
        fields = dict(request.query_params)
        missing = [p for p in PARAMETERS if not str(fields.get(p) or "").strip()]
        if missing:
            note["outcome"] = "bad_request"
            text = " and ".join(missing)
            return json_response(
                {"context": f"The order could not be looked up: {text} missing from the request."},
                400,
            )
        try:
            inputs = unwrap(self.inputs(scope(fields)))
        except StepError as exc:
            return self._unavailable(fields, None, note, exc)
        outcome = await run_within(
            self.projects[tenant], self.flow, inputs, budget(request, self.timeout), note
        )
        if outcome.usage_error is not None:
            note["outcome"] = "bad_request"
            text = f"The order could not be looked up with these details: {outcome.usage_error}"
            return json_response({"context": text}, 400)
        if not outcome.completed:
            return self._unavailable(fields, outcome.result, note)
        result = outcome.result
        s = scope(fields, result.outputs, result.reply, result.status)
        try:
            found = truthy(self.found(s)) if self.found is not None else True
            context = _text(self.context(s)) or (FOUND if found else NOT_FOUND)
            url = _text(self.tracking_url(s)) if self.tracking_url is not None else None
        except StepError as exc:
            return self._unavailable(fields, result, note, exc)
        note["outcome"] = "found" if found else "not_found"
        if not found:
            return json_response({"context": context}, 404)
        return json_response({"context": context, "tracking_url": url or None})

    def _unavailable(
        self,
        fields: dict[str, Any],
        result: Any,
        note: dict[str, Any],
        exc: Exception | None = None,
    ) -> Response:
        note["outcome"] = "unavailable"
        if exc is not None:
            note["template_error"] = str(exc)[:200]
        text = UNAVAILABLE
        if self.unavailable is not None:
            s = scope(fields, getattr(result, "outputs", None), getattr(result, "reply", None))
            # The platform still gets its answer if this fails: the default says the same.
            with contextlib.suppress(StepError):
                text = _text(self.unavailable(s)) or UNAVAILABLE
        return json_response({"context": text}, 503)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def build(name: str, model: ZipchatChannel, ctx: LoadContext) -> ZipchatEndpoint | None:
    default = [(model.api_key, (name, "api_key"))] if model.api_key is not None else []
    keys, served = ctx.key_ring(name, default, model.tenants)
    outputs = ctx.served_flow(model.flow, served, model.inputs, (name,))
    request_fields = frozenset(PARAMETERS)
    before = Reads(REQUEST_ONLY, request_fields, {})
    after = Reads(RUN_NAMES, request_fields, outputs)
    t = ctx.templates

    def optional(text: str | None, key: str, reads: Reads) -> Render | None:
        return None if text is None else t.template(text, (name, key), reads)

    return ZipchatEndpoint(
        name=name,
        path=model.path,
        keys=keys,
        projects={tenant: served[tenant].project for tenant in served},
        flow=model.flow,
        inputs=t.value(model.inputs, (name, "inputs"), before),
        found=optional(model.found, "found", after),
        context=t.template(model.context, (name, "context"), after),
        tracking_url=optional(model.tracking_url, "tracking_url", after),
        unavailable=optional(model.unavailable, "unavailable", after),
        timeout=model.timeout or ZIPCHAT_DEADLINE,
    )
