"""Coffield.io's order status connector (seed 003).

``POST {path}`` with ``{"kind", "reference", "context", "tenant_id"}`` and the headers
``X-Coffield-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, ``X-Coffield-Timestamp``
(epoch seconds), ``X-Coffield-Tenant-Id`` and ``X-Coffield-Lookup-Kind``. Answers:

- ``{"ok": true, "status", "summary", "details"}`` (200)
- ``{"ok": false, "error_code", "message"}``: ``not_found`` and ``invalid_reference`` with 200
  (they are answers the agent reads back), ``unauthorized`` with 401, ``receiver_error`` with
  503 (Coffield treats a 5xx as "our order system is having trouble", which is what happened).

The signature is checked, in constant time, before the body is parsed for anything but the
tenant that picks the secret, and before any flow runs.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from csflow.engine.errors import StepError
from csflow.serve.config import DEFAULT_TENANT, LoadContext
from csflow.serve.models import COFFIELD_DEADLINE, CoffieldChannel
from csflow.serve.runtime import (
    BadBody,
    BodyTooLarge,
    budget,
    json_response,
    parse_json_object,
    read_body,
    record,
    run_within,
    shielded,
    truthy,
)
from csflow.serve.templates import (
    REQUEST_ONLY,
    RUN_NAMES,
    Reads,
    Render,
    TemplateCompiler,
    scope,
    unwrap,
)

REQUEST_FIELDS = frozenset({"kind", "reference", "context", "tenant_id"})
UNAVAILABLE = "The order system could not be reached right now."
_DUMMY_SECRET = b"\x00" * 32  # an unknown tenant still costs one HMAC: no timing tell


def failure(code: str, message: str | None = None, status: int = 200) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code}
    if message:
        body["message"] = message
    return json_response(body, status)


@dataclass
class Kind:
    flow: str
    inputs: Render
    found: Render | None
    status: Render
    summary: Render
    details: Render


@dataclass
class Signer:
    secret: bytes
    tenant: str
    tenant_id: str | None  # None: any Coffield tenant id not claimed by another tenant


@dataclass
class CoffieldEndpoint:
    name: str
    path: str
    by_id: dict[str, Signer]
    fallback: Signer | None
    projects: dict[str, Any]
    kinds: dict[str, Kind]
    max_age: float
    unavailable: Render | None
    timeout: float
    type: str = "coffield"

    def routes(self) -> list[BaseRoute]:
        fallback = lambda: failure("receiver_error", UNAVAILABLE, 503)  # noqa: E731
        return [Route(self.path, shielded(self.handle, fallback), methods=["POST"])]

    def _signer(self, tenant_id: str | None) -> Signer | None:
        if tenant_id is not None and tenant_id in self.by_id:
            return self.by_id[tenant_id]
        return self.fallback

    async def handle(self, request: Request) -> Response:
        note = record(request)
        note["channel"] = self.name
        signature = request.headers.get("x-coffield-signature")
        if not signature:
            note["outcome"] = "unauthorized"
            return failure("unauthorized", status=401)
        try:
            body = await read_body(request)
        except BodyTooLarge:
            note["outcome"] = "too_large"
            return failure("invalid_reference", "the request body is over 64 KiB", 413)
        claimed = request.headers.get("x-coffield-tenant-id") or _peek_tenant(body)
        signer = self._signer(claimed)
        secret = signer.secret if signer is not None else _DUMMY_SECRET
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        valid = hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace"))
        if signer is None or not valid or not self._fresh(request):
            note["outcome"] = "unauthorized"
            return failure("unauthorized", status=401)
        try:
            data = parse_json_object(body)
        except BadBody as exc:
            note["outcome"] = "bad_request"
            return failure("invalid_reference", str(exc))
        tenant_id = data.get("tenant_id")
        # The header is not signed, the body is: the body's tenant must be the one that signed.
        if (
            tenant_id is None
            or str(tenant_id) != (claimed or str(tenant_id))
            or (signer.tenant_id is not None and str(tenant_id) != signer.tenant_id)
        ):
            note["outcome"] = "unauthorized"
            return failure("unauthorized", status=401)
        note["tenant"] = signer.tenant
        return await self._lookup(request, data, signer.tenant, note)

    def _fresh(self, request: Request) -> bool:
        if not self.max_age:
            return True
        raw = request.headers.get("x-coffield-timestamp", "")
        try:
            stamp = float(raw)
        except ValueError:
            return False
        return abs(time.time() - stamp) <= self.max_age  # stale, or from a clock far ahead

    async def _lookup(
        self, request: Request, data: dict[str, Any], tenant: str, note: dict[str, Any]
    ) -> Response:
        kind_name, reference = data.get("kind"), data.get("reference")
        if not isinstance(data.get("context"), dict):
            data["context"] = {}  # optional in the seed: an absent context reads as empty
        kind = self.kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None:
            note["outcome"] = "invalid_reference"
            shown = str(kind_name)[:40]
            return failure("invalid_reference", f"this endpoint does not look up '{shown}'")
        if not isinstance(reference, str | int) or not str(reference).strip():
            note["outcome"] = "invalid_reference"
            return failure("invalid_reference", "the request has no reference")
        try:
            inputs = unwrap(kind.inputs(scope(data)))
        except StepError as exc:
            return self._unavailable(data, None, note, exc)
        outcome = await run_within(
            self.projects[tenant], kind.flow, inputs, budget(request, self.timeout), note
        )
        if outcome.usage_error is not None:
            note["outcome"] = "invalid_reference"
            return failure("invalid_reference", outcome.usage_error)
        if not outcome.completed:
            return self._unavailable(data, outcome.result, note)
        result = outcome.result
        s = scope(data, result.outputs, result.reply, result.status)
        try:
            found = truthy(kind.found(s)) if kind.found is not None else True
            summary = _text(kind.summary(s))
            if not found:
                note["outcome"] = "not_found"
                return failure("not_found", summary or "No match for that reference.")
            status = _text(kind.status(s)) or "unknown"
            details = unwrap(kind.details(s))
        except StepError as exc:
            return self._unavailable(data, result, note, exc)
        note["outcome"] = "found"
        if isinstance(details, dict):
            details = {k: v for k, v in details.items() if v is not None}
        return json_response(
            {
                "ok": True,
                "status": status,
                "summary": summary or f"The {kind_name} {reference} is {status}.",
                "details": details if details is not None else {},
            }
        )

    def _unavailable(
        self, data: dict[str, Any], result: Any, note: dict[str, Any], exc: Exception | None = None
    ) -> Response:
        note["outcome"] = "unavailable"
        if exc is not None:
            note["template_error"] = str(exc)[:200]
        text = UNAVAILABLE
        if self.unavailable is not None:
            s = scope(data, getattr(result, "outputs", None), getattr(result, "reply", None))
            with contextlib.suppress(StepError):
                text = _text(self.unavailable(s)) or UNAVAILABLE
        return failure("receiver_error", text, 503)


def _peek_tenant(body: bytes) -> str | None:
    """The tenant id a body claims, read only to pick the secret that must have signed it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = data.get("tenant_id") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _pick(
    t: TemplateCompiler,
    channel: str,
    loc: tuple[str, ...],
    key: str,
    kind_value: Any,
    channel_value: Any,
    reads: Reads,
) -> Render:
    """The kind's own template for ``key``, or else the channel's."""
    if kind_value is not None:
        return t.value(kind_value, (*loc, key), reads)
    return t.value(channel_value, (channel, key), reads)


def build(name: str, model: CoffieldChannel, ctx: LoadContext) -> CoffieldEndpoint | None:
    by_id: dict[str, Signer] = {}
    fallback: Signer | None = None
    served: dict[str, Any] = {}
    if model.signing_secret is not None:
        secret = ctx.secret(model.signing_secret, (name, "signing_secret"))
        if secret is not None and DEFAULT_TENANT in ctx.tenants:
            signer = Signer(secret, DEFAULT_TENANT, model.tenant_id)
            if model.tenant_id is None:
                fallback = signer
            else:
                by_id[model.tenant_id] = signer
            served[DEFAULT_TENANT] = ctx.tenants[DEFAULT_TENANT]
    for tenant_name, entry in model.tenants.items():
        tenant = ctx.tenant(tenant_name, (name, "tenants", tenant_name))
        if tenant is None:
            continue
        loc = (name, "tenants", tenant_name)
        if entry.tenant_id in by_id:
            ctx.problem((*loc, "tenant_id"), f"Coffield tenant {entry.tenant_id} is listed twice")
            continue
        secret = ctx.secret(entry.signing_secret, (*loc, "signing_secret"))
        if secret is not None:
            by_id[entry.tenant_id] = Signer(secret, tenant_name, entry.tenant_id)
            served[tenant_name] = tenant
    kinds: dict[str, Kind] = {}
    t = ctx.templates
    for kind_name, spec in model.kinds.items():
        loc = (name, "kinds", kind_name)
        outputs = ctx.served_flow(spec.flow, served, spec.inputs, loc)
        before = Reads(REQUEST_ONLY, REQUEST_FIELDS, {})
        after = Reads(RUN_NAMES, REQUEST_FIELDS, outputs)

        kinds[kind_name] = Kind(
            flow=spec.flow,
            inputs=t.value(spec.inputs, (*loc, "inputs"), before),
            found=None
            if spec.found is None and model.found is None
            else _pick(t, name, loc, "found", spec.found, model.found, after),
            status=_pick(t, name, loc, "status", spec.status, model.status, after),
            summary=_pick(t, name, loc, "summary", spec.summary, model.summary, after),
            details=_pick(t, name, loc, "details", spec.details, model.details, after),
        )
    unavailable = (
        None
        if model.unavailable is None
        else t.template(
            model.unavailable, (name, "unavailable"), Reads(RUN_NAMES, REQUEST_FIELDS, {})
        )
    )
    return CoffieldEndpoint(
        name=name,
        path=model.path,
        by_id=by_id,
        fallback=fallback,
        projects={k: v.project for k, v in served.items()},
        kinds=kinds,
        max_age=model.max_age,
        unavailable=unavailable,
        timeout=model.timeout or COFFIELD_DEADLINE,
    )
