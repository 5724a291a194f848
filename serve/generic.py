"""The generic run API: ``POST {path}/flows/{name}/runs {"inputs": {...}}`` -> RunResult JSON.

The answer is the RunResult of spec §8, with 200 whether the run completed or failed (the
``status`` field says which; a run cut off by the channel's deadline is a failed run with
``error.kind: deadline``). Refusals are ``{"error": CODE, "message": ...}``: 401
``unauthorized``, 404 ``not_found`` (unknown flow), 400 ``bad_request`` / ``bad_inputs``
(the engine's UsageError text, naming each input), 413 ``too_large``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from csflow.engine.suggest import did_you_mean
from csflow.serve.config import LoadContext
from csflow.serve.models import DEFAULT_DEADLINE, GenericChannel
from csflow.serve.runtime import (
    BadBody,
    BodyTooLarge,
    KeyRing,
    budget,
    json_response,
    parse_json_object,
    read_body,
    record,
    run_within,
    shielded,
)

RUN_ID_HEADER = "x-csflow-run-id"


def error(status: int, code: str, message: str) -> Response:
    return json_response({"error": code, "message": message}, status)


@dataclass
class GenericEndpoint:
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Any]
    allowed: frozenset[str] | None  # None: every flow of the tenant's project
    timeout: float
    type: str = "generic"

    def routes(self) -> list[BaseRoute]:
        fallback = lambda: error(500, "internal_error", "the server could not answer; see its log")  # noqa: E731
        path = f"{self.path}/flows/{{flow}}/runs"
        return [Route(path, shielded(self.handle, fallback), methods=["POST"])]

    def flows(self, tenant: str) -> dict[str, Any]:
        """The flows this channel runs for ``tenant``: name -> compiled plan."""
        plans: dict[str, Any] = self.projects[tenant].flows
        if self.allowed is None:
            return plans
        return {n: p for n, p in plans.items() if n in self.allowed}

    async def handle(self, request: Request) -> Response:
        note = record(request)
        note["channel"] = self.name
        tenant = self.keys.match(request.headers.get("x-api-key"))
        if tenant is None:
            note["outcome"] = "unauthorized"
            return error(401, "unauthorized", "missing or invalid x-api-key")
        note["tenant"] = tenant
        name = request.path_params["flow"]
        flows = self.flows(tenant)
        if name not in flows:
            note["outcome"] = "unknown_flow"
            return error(404, "not_found", f"unknown flow '{name}'{did_you_mean(name, flows)}")
        try:
            data = parse_json_object(await read_body(request) or b"{}")
        except BodyTooLarge:
            note["outcome"] = "too_large"
            return error(413, "too_large", "the request body is over 64 KiB")
        except BadBody as exc:
            note["outcome"] = "bad_request"
            return error(400, "bad_request", str(exc))
        unknown = sorted(set(data) - {"inputs"})
        inputs = data.get("inputs", {})
        if unknown or not isinstance(inputs, dict):
            note["outcome"] = "bad_request"
            what = f"unknown key '{unknown[0]}'" if unknown else "'inputs' must be an object"
            return error(400, "bad_request", f'{what}: send {{"inputs": {{...}}}}')
        outcome = await run_within(
            self.projects[tenant], name, inputs, budget(request, self.timeout), note
        )
        if outcome.usage_error is not None:
            note["outcome"] = "bad_inputs"
            return error(400, "bad_inputs", outcome.usage_error)
        if outcome.result is None:  # the backstop fired: still a §8 RunResult, failed
            note["outcome"] = "overran"
            return json_response(
                {
                    "flow": name,
                    "status": "failed",
                    "outputs": {},
                    "reply": None,
                    "error": {
                        "kind": "deadline",
                        "message": f"the run passed the channel's deadline of {self.timeout:g}s",
                        "step": None,
                    },
                    "steps": [],
                }
            )
        result = outcome.result
        note["outcome"] = result.status
        return Response(
            result.to_json().encode(),
            200,
            headers={RUN_ID_HEADER: result.run_id},
            media_type="application/json",
        )


def build(name: str, model: GenericChannel, ctx: LoadContext) -> GenericEndpoint | None:
    default = [(ref, (name, "api_keys", i)) for i, ref in enumerate(model.api_keys)]
    keys, served = ctx.key_ring(name, default, model.tenants)
    if model.flows is not None:
        for i, flow in enumerate(model.flows):
            for tenant in served.values():
                ctx.flow_in(tenant, flow, (name, "flows", i))
    return GenericEndpoint(
        name=name,
        path=model.path.rstrip("/"),
        keys=keys,
        projects={k: v.project for k, v in served.items()},
        allowed=frozenset(model.flows) if model.flows is not None else None,
        timeout=model.timeout or DEFAULT_DEADLINE,
    )
