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

A signed request is accepted once within ``max_age``: its signature is claimed in the shared
state (every server's, with ``CSFLOW_REDIS``), and a second delivery, on any server, is
refused as ``unauthorized`` with the reason. The timestamp is not signed, so it is no part of
what is remembered. A state that cannot say whether the signature was seen fails closed:
Coffield's "could not check right now" (``receiver_error``, 503), never an unchecked run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.adapters.shared import SharedState, StateUnavailable
from csflow.engine.errors import StepError
from csflow.serve.config import DEFAULT_TENANT, LoadContext
from csflow.serve.endpoint import (
    Answer,
    BadBody,
    Caller,
    Endpoint,
    FlowCall,
    Inbound,
    parse_json_object,
    unencodable,
)
from csflow.serve.models import COFFIELD_DEADLINE, CoffieldChannel
from csflow.serve.runtime import ChannelRun, text, truthy
from csflow.serve.templates import (
    REQUEST_ONLY,
    RUN_NAMES,
    Reads,
    Render,
    TemplateCompiler,
    scope,
    unwrap,
)

if TYPE_CHECKING:
    from csflow import Project

REQUEST_FIELDS = frozenset({"kind", "reference", "context", "tenant_id"})
UNAVAILABLE = "The order system could not be reached right now."
_DUMMY_SECRET = b"\x00" * 32  # an unknown tenant still costs one HMAC: no timing tell


def failure(
    code: str,
    message: str | None = None,
    status: int = 200,
    outcome: str | None = None,
    detail: str | None = None,
) -> Answer:
    body: dict[str, Any] = {"ok": False, "error_code": code}
    if message:
        body["message"] = message
    return Answer.json(body, status, outcome or code, detail=detail)


_UNAUTHORIZED = failure("unauthorized", status=401)
_REPLAYED = failure(
    "unauthorized",
    "this signed request was already received: each is accepted once",
    401,
    "replayed",
    "the signature was accepted before, within max_age",
)
_TOO_LARGE = failure("invalid_reference", "the request body is over 64 KiB", 413, "too_large")


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


@dataclass(frozen=True, slots=True)
class Lookup:
    """A signed lookup: its body, and the kind it asks for."""

    data: dict[str, Any]
    kind_name: str
    kind: Kind
    reference: str | int


@dataclass
class CoffieldEndpoint(Endpoint[Lookup]):
    methods: ClassVar[tuple[str, ...]] = ("POST",)
    platform: ClassVar[str] = "coffield"
    name: str
    path: str
    by_id: dict[str, Signer]
    fallback: Signer | None
    projects: dict[str, Project]  # tenant -> its project
    kinds: dict[str, Kind]
    max_age: float
    unavailable_text: Render | None
    timeout: float
    replays: SharedState  # the signatures accepted within max_age

    def _signer(self, tenant_id: str | None) -> Signer | None:
        if tenant_id is not None and tenant_id in self.by_id:
            return self.by_id[tenant_id]
        return self.fallback

    async def authenticate(self, request: Inbound) -> Caller | Answer:
        """The signature of the raw body, checked in constant time before anything is parsed
        but the tenant id that picks the secret."""
        signature = request.headers.get("x-coffield-signature")
        if not signature:
            return _UNAUTHORIZED
        body = await request.body(self.timeout)
        claimed = request.headers.get("x-coffield-tenant-id") or _peek_tenant(body)
        signer = self._signer(claimed)
        secret = signer.secret if signer is not None else _DUMMY_SECRET
        expected = b"sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        valid = hmac.compare_digest(expected, signature.strip().encode("latin-1", "replace"))
        if signer is None or not valid or not self._fresh(request):
            return _UNAUTHORIZED
        data = self._signed_body(body, claimed, signer)
        if isinstance(data, Answer):
            return data
        refused = await self._first_delivery(expected, request)
        if refused is not None:
            return refused
        return Caller(signer.tenant, self.projects[signer.tenant], data)

    def _signed_body(
        self, body: bytes, claimed: str | None, signer: Signer
    ) -> dict[str, Any] | Answer:
        try:
            data = parse_json_object(body)
        except BadBody as exc:
            return failure("invalid_reference", str(exc), outcome="bad_request")
        tenant_id = data.get("tenant_id")
        # The header is not signed, the body is: the body's tenant must be the one that signed.
        if (
            tenant_id is None
            or str(tenant_id) != (claimed or str(tenant_id))
            or (signer.tenant_id is not None and str(tenant_id) != signer.tenant_id)
        ):
            return _UNAUTHORIZED
        return data

    async def _first_delivery(self, signature: bytes, request: Inbound) -> Answer | None:
        """None when this signature is new within ``max_age`` (now claimed), else the answer."""
        if not self.max_age:
            return None  # no window: nothing to remember it for
        key = "coffield:seen:" + hashlib.sha256(signature).hexdigest()[:32]
        try:
            # The shared state answers within its own short timeout; the platform's deadline
            # bounds it too (a channel's timeout may be shorter).
            async with asyncio.timeout(max(0.0, request.seconds_left(self.timeout))):
                first = await self.replays.claim(key, self.max_age)
        except (StateUnavailable, TimeoutError) as exc:
            reason = str(exc) or "no answer before the platform's deadline"
            return self.unavailable(f"replays could not be checked: {reason}")
        return None if first else _REPLAYED

    def _fresh(self, request: Inbound) -> bool:
        if not self.max_age:
            return True
        raw = request.headers.get("x-coffield-timestamp", "")
        try:
            stamp = float(raw)
        except ValueError:
            return False
        return abs(time.time() - stamp) <= self.max_age  # stale, or from a clock far ahead

    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[Lookup] | Answer:
        data: dict[str, Any] = caller.data
        kind_name, reference = data.get("kind"), data.get("reference")
        if not isinstance(data.get("context"), dict):
            data["context"] = {}  # optional in the seed: an absent context reads as empty
        kind = self.kinds.get(kind_name) if isinstance(kind_name, str) else None
        if kind is None or not isinstance(kind_name, str):
            shown = str(kind_name)[:40]
            return failure("invalid_reference", f"this endpoint does not look up '{shown}'")
        if not isinstance(reference, str | int) or not str(reference).strip():
            return failure("invalid_reference", "the request has no reference")
        where = unencodable(data, "request")
        if where is not None:  # Coffield's own answer to a reference it cannot look up
            message = f"{where.removeprefix('request.')} is not valid text"
            return failure("invalid_reference", message)
        lookup = Lookup(data, kind_name, kind, reference)
        try:
            inputs = unwrap(kind.inputs(scope(data)))
        except StepError as exc:
            return self._unavailable(data, None, str(exc))
        return FlowCall(caller, kind.flow, inputs, lookup)

    def refuse_inputs(self, call: FlowCall[Lookup], message: str) -> Answer:
        return failure("invalid_reference", message)

    def render(self, call: FlowCall[Lookup], outcome: ChannelRun) -> Answer:
        result, lookup = outcome.result, call.request
        if result is None or not outcome.completed:
            return self._unavailable(lookup.data, result)
        kind = lookup.kind
        s = scope(lookup.data, result.outputs, result.reply, result.status)
        try:
            found = truthy(kind.found(s)) if kind.found is not None else True
            summary = text(kind.summary(s))
            if not found:
                return failure("not_found", summary or "No match for that reference.")
            status = text(kind.status(s)) or "unknown"
            details = unwrap(kind.details(s))
        except StepError as exc:
            return self._unavailable(lookup.data, result, str(exc))
        if isinstance(details, dict):
            details = {k: v for k, v in details.items() if v is not None}
        answer = {
            "ok": True,
            "status": status,
            "summary": summary or f"The {lookup.kind_name} {lookup.reference} is {status}.",
            "details": details if details is not None else {},
        }
        return Answer.json(answer, 200, "found")

    def unavailable(self, detail: str | None = None) -> Answer:
        return failure("receiver_error", UNAVAILABLE, 503, "unavailable", detail)

    def too_large(self) -> Answer:
        return _TOO_LARGE

    def _unavailable(self, data: dict[str, Any], result: Any, detail: str | None = None) -> Answer:
        message = UNAVAILABLE
        if self.unavailable_text is not None:
            s = scope(data, getattr(result, "outputs", None), getattr(result, "reply", None))
            with contextlib.suppress(StepError):
                message = text(self.unavailable_text(s)) or UNAVAILABLE
        return failure("receiver_error", message, 503, "unavailable", detail)

    @classmethod
    def build(cls, name: str, model: CoffieldChannel, ctx: LoadContext) -> CoffieldEndpoint | None:
        return _build(name, model, ctx)


def _peek_tenant(body: bytes) -> str | None:
    """The tenant id a body claims, read only to pick the secret that must have signed it."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    value = data.get("tenant_id") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


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


def _build(name: str, model: CoffieldChannel, ctx: LoadContext) -> CoffieldEndpoint:
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
        unavailable_text=unavailable,
        timeout=model.timeout or COFFIELD_DEADLINE,
        replays=ctx.shared,
    )
