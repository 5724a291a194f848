"""The shop's REST API under /api (bearer token) and the admin switches under /_admin."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from csflow.demo.models import REST_STATUS, Order, Shipment, ShopError, iso
from csflow.demo.state import SERVICES, ShopState, check_bearer

# Query names the shop accepts; the seed-000 spellings (order_id, ref_id) are aliases.
_FILTERS = {
    "email": "email",
    "phone": "phone",
    "ref": "ref",
    "ref_id": "ref",
    "number": "number",
    "order_id": "number",
}
MAX_DELAY_MS = 60_000


def _error(status: int, error: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def _unauthorized() -> JSONResponse:
    return _error(401, "unauthorized", "missing or invalid bearer token", **{
        "WWW-Authenticate": 'Bearer realm="demo-shop"'
    })  # fmt: skip


def shipment_json(s: Shipment, *, events: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": s.id,
        "carrier": s.carrier,
        "tracking_number": s.tracking_number,
        "tracking_url": s.tracking_url,
        "status": s.status,
        "shipped_at": iso(s.shipped_at),
        "delivered_at": iso(s.delivered_at),
        "eta": s.eta.isoformat() if s.eta else None,
        "lines": list(s.skus),
    }
    if events:
        out["events"] = [
            {
                "at": iso(e.at),
                "status": e.status,
                "location": e.location,
                "description": e.description,
            }
            for e in s.events
        ]
    return out


def order_json(o: Order) -> dict[str, Any]:
    hide = o.erp_only  # the ERP-only record: no status, no parcels, no shipped quantities
    a = o.address
    return {
        "number": o.number,
        "status": None if hide else REST_STATUS[o.status],
        "created_at": iso(o.created_at),
        "updated_at": iso(o.updated_at),
        "expected_delivery": o.expected_delivery.isoformat() if o.expected_delivery else None,
        "customer": {"email": o.customer.email, "phone": o.phone, "name": o.customer.name},
        "ref": o.ref,
        "lines": [
            {
                "sku": line.sku,
                "name": line.name,
                "quantity": line.quantity,
                "price": line.price,
                "image_url": line.image_url,
                "shipped_quantity": None if hide else o.shipped_quantity(line),
            }
            for line in o.lines
        ],
        "total": o.total,
        "currency": o.currency,
        "shipping_address": {
            "line1": a.line1,
            "line2": a.line2,
            "city": a.city,
            "postal_code": a.postal_code,
            "country": a.country,
        },
        "shipments": [] if hide else [shipment_json(s) for s in o.shipments],
        "cancelled_at": iso(o.cancelled_at),
        "cancel_reason": o.cancel_reason,
    }


def tracking_json(s: Shipment) -> dict[str, Any]:
    out = shipment_json(s, events=True)
    out["tracking_number"] = s.tracking_number
    out["order_number"] = s.order_number
    return out


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def rest_routes(state: ShopState) -> list[BaseRoute]:
    token = state.config.token

    async def guard(request: Request) -> Response | None:
        # A down API does not check tokens: the 503 comes first, as from a load balancer.
        if "rest" in state.down:
            return _error(503, "service_unavailable", "the order API is temporarily down")
        if not check_bearer(request.headers.get("authorization"), token):
            return _unauthorized()
        await state.delay("rest")
        return None

    async def list_orders(request: Request) -> Response:
        if (refused := await guard(request)) is not None:
            return refused
        filters: dict[str, str] = {}
        for name, value in request.query_params.items():
            key = _FILTERS.get(name)
            if key is not None and value.strip():
                filters[key] = value
        if not filters:
            return _error(400, "missing_filter", "give at least one of email, phone, ref, number")
        orders = state.store.find_orders(**filters)
        return JSONResponse([order_json(o) for o in orders])

    async def get_order(request: Request) -> Response:
        if (refused := await guard(request)) is not None:
            return refused
        try:
            order = state.store.order(request.path_params["number"])
        except ShopError as e:
            return _error(404, "not_found", e.message)
        return JSONResponse(order_json(order))

    async def get_shipments(request: Request) -> Response:
        if (refused := await guard(request)) is not None:
            return refused
        try:
            order = state.store.order(request.path_params["number"])
        except ShopError as e:
            return _error(404, "not_found", e.message)
        parcels = [] if order.erp_only else order.shipments
        return JSONResponse([shipment_json(s, events=True) for s in parcels])

    async def get_tracking(request: Request) -> Response:
        if (refused := await guard(request)) is not None:
            return refused
        number = request.path_params["tracking_number"]
        shipment = state.store.shipment(number)
        if shipment is None:
            return _error(404, "not_found", f"Tracking number {number} not found")
        return JSONResponse(tracking_json(shipment))

    async def api_not_found(request: Request) -> Response:
        if (refused := await guard(request)) is not None:
            return refused
        return _error(404, "not_found", f"no route {request.method} {request.url.path}")

    # -- admin: switches for demos and tests -------------------------------------------

    def admin_auth(request: Request) -> Response | None:
        if not check_bearer(request.headers.get("authorization"), token):
            return _unauthorized()
        return None

    def services_of(body: dict[str, Any]) -> list[str] | None:
        services = body.get("services", ["rest"])
        if not isinstance(services, list) or not all(s in SERVICES for s in services):
            return None
        return services

    async def outage(request: Request) -> Response:
        if (refused := admin_auth(request)) is not None:
            return refused
        body = await _json_body(request)
        services = services_of(body) if body is not None else None
        if body is None or not isinstance(body.get("on"), bool) or services is None:
            return _error(
                400, "bad_request", f'send {{"on": true|false, "services": {list(SERVICES)}}}'
            )
        if body["on"]:
            state.down.update(services)
        else:
            state.down.difference_update(services)
        return JSONResponse({"down": sorted(state.down)})

    async def delay(request: Request) -> Response:
        if (refused := admin_auth(request)) is not None:
            return refused
        body = await _json_body(request)
        services = services_of(body) if body is not None else None
        ms = body.get("ms") if body is not None else None
        if services is None or not isinstance(ms, int) or not 0 <= ms <= MAX_DELAY_MS:
            return _error(
                400, "bad_request", f'send {{"ms": 0..{MAX_DELAY_MS}, "services": [...]}}'
            )
        for service in services:
            state.delays[service] = ms / 1000
        return JSONResponse({"delays_ms": {k: int(v * 1000) for k, v in state.delays.items()}})

    async def reset(request: Request) -> Response:
        if (refused := admin_auth(request)) is not None:
            return refused
        state.reset()
        state.down.clear()
        state.delays.clear()
        return JSONResponse({"reset": True, "seeded_at": iso(state.store.seeded_at)})

    async def health(request: Request) -> Response:
        return JSONResponse(
            {"status": "ok", "down": sorted(state.down), "seeded_at": iso(state.store.seeded_at)}
        )

    admin = [
        Route("/outage", outage, methods=["POST"]),
        Route("/delay", delay, methods=["POST"]),
        Route("/reset", reset, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
    routes: list[BaseRoute] = []
    # The switches answer both at the root and under /api, whichever a script guesses.
    for prefix in ("/_admin", "/api/_admin"):
        routes += [Route(prefix + r.path, r.endpoint, methods=r.methods) for r in admin]
    routes += [
        Route("/api/orders", list_orders, methods=["GET"]),
        Route("/api/orders/{number}", get_order, methods=["GET"]),
        Route("/api/orders/{number}/shipments", get_shipments, methods=["GET"]),
        Route("/api/tracking/{tracking_number}", get_tracking, methods=["GET"]),
        Route("/api/{path:path}", api_not_found),
    ]
    return routes
