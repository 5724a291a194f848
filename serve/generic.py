"""The generic run API: ``POST {path}/flows/{name}/runs {"inputs": {...}}`` -> RunResult JSON.

The answer is the RunResult of spec §8, with 200 whether the run completed or failed (the
``status`` field says which; a run cut off by the channel's deadline is a failed run with
``error.kind: deadline``). Refusals are ``{"error": CODE, "message": ...}``: 401
``unauthorized``, 404 ``not_found`` (unknown flow), 400 ``bad_request`` / ``bad_inputs``
(the engine's UsageError text, naming each input; text that is not Unicode, naming where),
413 ``too_large``, 500 ``internal_error`` (a bug of ours, in the log).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.engine.suggest import did_you_mean
from csflow.serve.config import LoadContext
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
from csflow.serve.models import DEFAULT_DEADLINE, GenericChannel
from csflow.serve.runtime import ChannelRun, KeyRing, plain_json

if TYPE_CHECKING:
    from csflow import Project

RUN_ID_HEADER = b"x-csflow-run-id"
_FLOW_NAME = re.compile(r"[^/]+")


def error(status: int, code: str, message: str, outcome: str | None = None) -> Answer:
    return Answer.json({"error": code, "message": message}, status, outcome or code)


_UNAUTHORIZED = error(401, "unauthorized", "missing or invalid x-api-key")
_TOO_LARGE = error(413, "too_large", "the request body is over 64 KiB")


# JSON carries types, so an input must arrive with its declared one (§8: a wrong type is a
# usage error); only text given on a command line is converted. null is an absent input.
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "date": (str,),
    "datetime": (str,),
    "list": (list,),
    "object": (dict,),
}
_JSON_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean", list: "array"}


def _mistyped(plan: Any, inputs: dict[str, Any]) -> list[str]:
    problems = []
    for name, value in inputs.items():
        spec = plan.inputs.get(name)
        wanted = _JSON_TYPES.get(spec.type) if spec is not None else None
        if wanted is None or value is None:
            continue  # unknown inputs and "any" are the engine's to judge
        if (isinstance(value, bool) and bool not in wanted) or not isinstance(value, wanted):
            got = _JSON_NAMES.get(type(value), "object")
            problems.append(f"input '{name}': expected {spec.type}, got a JSON {got}")
    return problems


@dataclass
class GenericEndpoint(Endpoint[None]):
    methods: ClassVar[tuple[str, ...]] = ("POST",)
    platform: ClassVar[str] = "generic"
    name: str
    path: str
    keys: KeyRing
    projects: dict[str, Project]  # tenant -> its project
    allowed: frozenset[str] | None  # None: every flow of the tenant's project
    timeout: float

    def match(self, path: str) -> dict[str, str] | None:
        prefix, suffix = f"{self.path}/flows/", "/runs"
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        name = path[len(prefix) : -len(suffix)]
        return {"flow": name} if _FLOW_NAME.fullmatch(name) else None

    def flows(self, tenant: str) -> dict[str, Any]:
        """The flows this channel runs for ``tenant``: name -> compiled plan."""
        plans: dict[str, Any] = self.projects[tenant].flows
        if self.allowed is None:
            return plans
        return {n: p for n, p in plans.items() if n in self.allowed}

    async def authenticate(self, request: Inbound) -> Caller | Answer:
        tenant = self.keys.match(request.headers.get("x-api-key"))
        if tenant is None:
            return _UNAUTHORIZED
        return Caller(tenant, self.projects[tenant])

    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[None] | Answer:
        name = request.path_params["flow"]
        flows = self.flows(caller.tenant)
        if name not in flows:
            hint = did_you_mean(name, flows)
            return error(404, "not_found", f"unknown flow '{name}'{hint}", "unknown_flow")
        try:
            data = parse_json_object(await request.body(self.timeout) or b"{}")
        except BadBody as exc:
            return error(400, "bad_request", str(exc))
        unknown = sorted(set(data) - {"inputs"})
        inputs = data.get("inputs", {})
        if unknown or not isinstance(inputs, dict):
            what = f"unknown key '{unknown[0]}'" if unknown else "'inputs' must be an object"
            return error(400, "bad_request", f'{what}: send {{"inputs": {{...}}}}')
        where = unencodable(inputs, "inputs")
        if where is not None:
            message = f"{where}: the text is not valid Unicode (a lone surrogate)"
            return error(400, "bad_inputs", message)
        mistyped = _mistyped(flows[name], inputs)
        if mistyped:
            return error(400, "bad_inputs", f"flow '{name}': " + "; ".join(mistyped))
        return FlowCall(caller, name, inputs, None)

    def refuse_inputs(self, call: FlowCall[None], message: str) -> Answer:
        return error(400, "bad_inputs", message)

    def render(self, call: FlowCall[None], outcome: ChannelRun) -> Answer:
        result = outcome.result
        if result is None:  # the backstop fired: still a §8 RunResult, failed
            failed: dict[str, Any] = {
                "flow": call.flow,
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
            return Answer(200, plain_json(failed), "overran")
        body = result.to_json().encode("utf-8", "replace")
        return Answer(200, body, result.status, ((RUN_ID_HEADER, result.run_id.encode()),))

    def unavailable(self, detail: str | None = None) -> Answer:
        return Answer.json(
            {"error": "internal_error", "message": "the server could not answer; see its log"},
            500,
            "internal_error",
            detail=detail,
        )

    def too_large(self) -> Answer:
        return _TOO_LARGE

    def late_body(self, detail: str) -> Answer:
        message = f"the request body did not arrive within {self.timeout:g}s"
        return error(408, "timeout", message, "body_timeout")

    @classmethod
    def build(cls, name: str, model: GenericChannel, ctx: LoadContext) -> GenericEndpoint | None:
        default = [(ref, (name, "api_keys", i)) for i, ref in enumerate(model.api_keys)]
        keys, served = ctx.key_ring(name, default, model.tenants)
        if model.flows is not None:
            for i, flow in enumerate(model.flows):
                for tenant in served.values():
                    ctx.flow_in(tenant, flow, (name, "flows", i))
        return cls(
            name=name,
            path=model.path.rstrip("/"),
            keys=keys,
            projects={k: v.project for k, v in served.items()},
            allowed=frozenset(model.flows) if model.flows is not None else None,
            timeout=model.timeout or DEFAULT_DEADLINE,
        )
