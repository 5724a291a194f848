"""``/openapi.json``: the served channels as an OpenAPI 3.1 document, built once at start.

The generic channel gets one path per flow it runs for the served project, with the flow's
declared inputs as the request schema, so that a client generator gets typed calls. Tenants'
own flows are not listed: the document is public, a tenant's flows are not.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from csflow.engine.store.conversations import MAX_ID, MAX_TEXT
from csflow.serve.coffield import CoffieldEndpoint
from csflow.serve.config import DEFAULT_TENANT, Channels
from csflow.serve.conversation import ConversationEndpoint
from csflow.serve.endpoint import Endpoint
from csflow.serve.generic import GenericEndpoint
from csflow.serve.order_lookup import Order, OrderLookupEndpoint
from csflow.serve.zipchat import ZipchatEndpoint

_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "list": {"type": "array"},
    "object": {"type": "object"},
    "any": {},
}

_ERROR = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
}

_RUN_RESULT = {
    "type": "object",
    "required": ["flow", "status", "outputs", "reply", "error", "steps"],
    "properties": {
        "flow": {"type": "string"},
        # A flow that asks ends `waiting`; one that hands over, `handoff` (§12). Only the
        # conversation channel can answer an ask, but a run API caller is told the truth.
        "status": {"enum": ["completed", "failed", "waiting", "handoff", "expired"]},
        "outputs": {"type": "object"},
        "reply": {"type": ["string", "null"]},
        "error": {
            "type": ["object", "null"],
            "properties": {
                "kind": {"type": "string"},
                "message": {"type": "string"},
                "step": {"type": ["string", "null"]},
            },
        },
        "steps": {"type": "array", "items": {"type": "object"}},
        "handoff": {
            "type": "object",
            "properties": {
                "reason": {"type": "string"},
                "note": {"type": ["string", "null"]},
                "intent": {"type": ["string", "null"]},
            },
        },
    },
}


_FORMATS = {"uri": "uri", "date": "date"}
# Email and phone are written as the patterns the engine checks (engine/coerce.py), not as
# formats: JSON Schema's "email" refuses addresses the engine takes, and the document must
# not promise refusals the server does not make. The engine strips spaces around a value
# first (Python's idea of a space, written out: a pattern's \s is JavaScript's), and blank
# text is an absent input.
_SPACE = (
    "\\u0009-\\u000d\\u001c-\\u0020\\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
_WORD = f"[^@{_SPACE}]+"
_PATTERNS = {
    "email": (f"^[{_SPACE}]*{_WORD}@{_WORD}\\.{_WORD}[{_SPACE}]*$", "an email address"),
    "phone": (r"^(\D*\d){7}", "a phone number: 7 digits or more"),
}
_BLANK = f"^[{_SPACE}]*$"
_NOT_BLANK = f"[^{_SPACE}]"


def _schema(spec: Any, required: bool) -> dict[str, Any]:
    """An input's schema; an optional input may be null (absent), a required string not blank."""
    out = dict(_TYPES.get(spec.type, {}))
    fmt = getattr(spec, "format", None) or ""
    if fmt in _FORMATS:
        out["format"] = _FORMATS[fmt]
    if fmt in _PATTERNS and spec.type == "string":
        pattern, what = _PATTERNS[fmt]
        out["pattern"] = pattern if required else f"{_BLANK}|{pattern}"
        out["description"] = what
    elif required and spec.type == "string":
        out["pattern"] = _NOT_BLANK  # blank text is a missing input
    if spec.enum is not None:
        out["enum"] = list(spec.enum)
    if not required and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"].append(None)
    if spec.description:
        out["description"] = spec.description
    return out


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


@singledispatch
def paths(endpoint: Endpoint[Any]) -> dict[str, Any]:
    """The document's paths for one endpoint, by its platform's type."""
    raise TypeError(f"no OpenAPI paths for {type(endpoint).__name__}")


@paths.register
def _generic(endpoint: GenericEndpoint) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    if DEFAULT_TENANT not in endpoint.projects:
        return paths
    for name, plan in sorted(endpoint.flows(DEFAULT_TENANT).items()):
        required = [n for n, s in plan.inputs.items() if s.required and s.default is None]
        inputs: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": {n: _schema(s, n in required) for n, s in plan.inputs.items()},
        }
        if required:
            inputs["required"] = required
        body: dict[str, Any] = {
            "type": "object",
            "properties": {"inputs": inputs},
            "additionalProperties": False,
        }
        if required:  # an empty body is {"inputs": {}}: fine only when no input is required
            body["required"] = ["inputs"]
        paths[f"{endpoint.path}/flows/{name}/runs"] = {
            "post": {
                "operationId": f"run_{name}",
                "summary": (plan.model.description or f"Run {name}").strip(),
                "security": [{"apiKey": []}],
                "requestBody": {"required": bool(required), **_json(body, "the flow's inputs")},
                "responses": {
                    "200": _json(_RUN_RESULT, "the run's result, as spec §8 gives it"),
                    "400": _json(_ERROR, "bad body, or inputs missing, unknown or mistyped"),
                    "401": _json(_ERROR, "missing or wrong x-api-key"),
                    "404": _json(_ERROR, "unknown flow"),
                    "413": _json(_ERROR, "body over 64 KiB"),
                },
            }
        }
    return paths


@paths.register
def _zipchat(endpoint: ZipchatEndpoint) -> dict[str, Any]:
    context = {"type": "object", "properties": {"context": {"type": "string"}}}
    found = {
        "type": "object",
        "required": ["context"],
        "properties": {"context": {"type": "string"}, "tracking_url": {"type": ["string", "null"]}},
    }
    text = {"type": "string", "minLength": 1, "pattern": "\\S"}  # blank is missing (400)
    query = [
        {"name": n, "in": "query", "required": True, "schema": text}
        for n in ("order_id", "customer_email")
    ]
    return {
        endpoint.path: {
            "get": {
                "operationId": f"{endpoint.name}_order",
                "summary": "Zipchat custom order tracking",
                "security": [{"apiKey": []}],
                "parameters": query,
                "responses": {
                    "200": _json(found, "order found"),
                    "400": _json(context, "order_id or customer_email missing or refused"),
                    "401": {"description": "missing or wrong x-api-key (no body)"},
                    "404": _json(context, "no order found"),
                    "503": _json(context, "could not check right now"),
                },
            }
        }
    }


@paths.register
def _coffield(endpoint: CoffieldEndpoint) -> dict[str, Any]:
    answer = {
        "oneOf": [
            {
                "type": "object",
                "required": ["ok", "status", "summary"],
                "properties": {
                    "ok": {"const": True},
                    "status": {"type": "string"},
                    "summary": {"type": "string"},
                    "details": {"type": "object"},
                },
            },
            {
                "type": "object",
                "required": ["ok", "error_code"],
                "properties": {
                    "ok": {"const": False},
                    "error_code": {
                        "enum": ["not_found", "unauthorized", "invalid_reference", "receiver_error"]
                    },
                    "message": {"type": "string"},
                },
            },
        ]
    }
    body = {
        "type": "object",
        "required": ["kind", "reference", "tenant_id"],
        "properties": {
            "kind": {"enum": sorted(endpoint.kinds)},
            "reference": {"type": "string"},
            "context": {"type": "object"},
            "tenant_id": {"type": ["integer", "string"]},
        },
    }
    headers = [
        {"name": h, "in": "header", "required": r, "schema": {"type": "string"}}
        for h, r in (
            ("X-Coffield-Signature", True),
            ("X-Coffield-Timestamp", endpoint.max_age > 0),
            ("X-Coffield-Tenant-Id", False),
            ("X-Coffield-Lookup-Kind", False),
        )
    ]
    return {
        endpoint.path: {
            "post": {
                "operationId": f"{endpoint.name}_lookup",
                "summary": "Coffield.io order status connector (HMAC-SHA256 signed)",
                "parameters": headers,
                "requestBody": {"required": True, **_json(body, "the lookup")},
                "responses": {
                    "200": _json(answer, "found, not_found or invalid_reference"),
                    "401": _json(answer, "unauthorized: bad signature or stale timestamp"),
                    "413": _json(answer, "body over 64 KiB"),
                    "503": _json(answer, "receiver_error: could not check right now"),
                },
            }
        }
    }


@paths.register
def _order_lookup(endpoint: OrderLookupEndpoint) -> dict[str, Any]:
    query = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("email", "order_id", "phone", "ref_id")
    ]
    return {
        endpoint.path: {
            "get": {
                "operationId": f"{endpoint.name}_orders",
                "summary": "Orders by email, order_id, phone (last 7 digits) or ref_id",
                "security": [{"apiKey": []}],
                "parameters": query,
                "responses": {
                    "200": _json(
                        {"type": "array", "items": {"$ref": "#/components/schemas/Order"}},
                        "the matching orders, [] when none",
                    ),
                    "400": _json(_ERROR, "none of the parameters given, or one refused"),
                    "401": _json(_ERROR, "missing or wrong key"),
                    "503": _json(_ERROR, "could not check right now"),
                },
            }
        }
    }


_NULLABLE_TEXT = {"type": ["string", "null"]}
_TURN = {
    "type": "object",
    "required": ["conversation_id", "status", "reply", "intent", "run_id", "handoff"],
    "properties": {
        "conversation_id": {"type": "string"},
        "status": {"enum": ["waiting", "completed", "failed", "handoff", "expired"]},
        "reply": _NULLABLE_TEXT,
        "intent": {
            "type": ["object", "null"],
            "description": "the intent the conversation started from; name null: not understood",
            "required": ["name", "confidence"],
            "properties": {"name": _NULLABLE_TEXT, "confidence": {"type": "number"}},
        },
        "run_id": {"type": "string"},
        "handoff": {
            **_RUN_RESULT["properties"]["handoff"],  # type: ignore[index]
            "type": ["object", "null"],
            "required": ["reason", "note", "intent"],
        },
    },
}  # fmt: skip
_MESSAGE = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "\\S"},
        "context": {"type": ["object", "null"], "description": "fills the flow's inputs"},
    },
}
_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}


@paths.register
def _conversation(endpoint: ConversationEndpoint) -> dict[str, Any]:
    conversation_id = {
        "name": "conversation_id",
        "in": "path",
        "required": True,
        "description": "the platform's own id of the conversation",
        "schema": {"type": "string", "pattern": f"^[A-Za-z0-9._:-]{{1,{MAX_ID}}}$"},
    }
    return {
        f"{endpoint.path}/{{conversation_id}}/messages": {
            "post": {
                "operationId": f"{endpoint.name}_message",
                "summary": "A customer's message in a conversation, and its answer (spec §12)",
                "security": [{"apiKey": []}],
                "parameters": [conversation_id],
                "requestBody": {"required": True, **_json(_MESSAGE, "the customer's message")},
                "responses": {
                    "200": _json(_TURN, "the turn's answer: waiting asks a question"),
                    "400": _json(_ERROR, "bad id, text, context or body (bad_request), or a "
                                 "context value the flow refuses (bad_context)"),
                    "401": _json(_ERROR, "missing or wrong x-api-key"),
                    "408": _json(_ERROR, "the body did not arrive in time"),
                    "409": {**_json(_ERROR, "busy: earlier messages still being answered"),
                            "headers": _RETRY},
                    "413": _json(_ERROR, "body over 64 KiB"),
                    "503": {**_json(_ERROR, "the turn passed the deadline; send it again"),
                            "headers": _RETRY},
                },
            }
        }
    }  # fmt: skip


def document(channels: Channels) -> dict[str, Any]:
    described: dict[str, Any] = {}
    for endpoint in channels.endpoints.values():
        described.update(paths(endpoint))
    order_schema = Order.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = {"Order": {k: v for k, v in order_schema.items() if k != "$defs"}}
    schemas.update(order_schema.get("$defs", {}))
    return {
        "openapi": "3.1.0",
        "info": {"title": "csflow channels", "version": "1"},
        "paths": described,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"}},
            "schemas": schemas,
        },
    }
