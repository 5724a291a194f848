"""The subscriptions API: graphql-core over the SDL in demo/subscriptions.graphql.

The schema and the parsed-and-validated documents are shared by every app in the process
(they depend on the SDL only); the data comes from each app's store via the context.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime
from functools import cache
from inspect import isawaitable
from pathlib import Path
from typing import Any, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    StringValueNode,
    ValueNode,
    build_schema,
    execute,
    parse,
    validate,
)
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from csflow.demo.models import Customer, ShopError, iso
from csflow.demo.state import ShopState, check_key
from csflow.demo.store import Store

SDL_PATH = Path(__file__).with_name("subscriptions.graphql")
MAX_QUERY = 20_000
MAX_TOKENS = 2_000  # bounds the parser's work on hostile input
_CACHE_SIZE = 256

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


@cache
def _snake(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _field_resolver(source: Any, info: GraphQLResolveInfo[Any], **_: Any) -> Any:
    # The schema is camelCase, the dataclasses snake_case: map the name, read the attribute.
    return getattr(source, _snake(info.field_name), None)


def _business(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A ShopError becomes a GraphQL error with a stable `extensions.code`."""

    def resolve(source: Any, info: GraphQLResolveInfo[Any], **args: Any) -> Any:
        try:
            return fn(info.context, **args)
        except ShopError as e:
            raise GraphQLError(e.message, extensions={"code": e.code}) from None

    return resolve


# -- scalars --------------------------------------------------------------------------


def _out_date(value: Any) -> str:
    if isinstance(value, datetime):
        return iso(value) or ""
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"Date cannot represent {value!r}")


def _in_date(value: Any) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise GraphQLError(f"Date must be a string YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise GraphQLError(f"Date must be a valid YYYY-MM-DD, got {value!r}") from None


def _in_datetime(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise GraphQLError(f"DateTime must be ISO 8601, got {value!r}") from None


def _install_scalar(
    scalar: GraphQLScalarType, out: Callable[[Any], Any], value_in: Callable[[Any], Any]
) -> None:
    def literal_in(node: ValueNode, _variables: Any = None) -> Any:
        if not isinstance(node, StringValueNode):
            raise GraphQLError(f"{scalar.name} must be a string")
        return value_in(node.value)

    # graphql-core 3.3 reads coerce_*; 3.2 reads serialize/parse_*: set both spellings.
    attrs = {
        "coerce_output_value": out,
        "serialize": out,
        "coerce_input_value": value_in,
        "parse_value": value_in,
        "coerce_input_literal": literal_in,
        "parse_literal": literal_in,
    }
    for name, fn in attrs.items():
        setattr(scalar, name, fn)


# -- resolvers ------------------------------------------------------------------------


def _customer_subscriptions(
    customer: Customer, info: GraphQLResolveInfo[Any], status: str | None = None
) -> list[Any]:
    store: Store = info.context
    subs = store.subscriptions_of(customer)
    return [s for s in subs if status is None or s.status == status]


@cache
def schema() -> GraphQLSchema:
    built = build_schema(SDL_PATH.read_text(encoding="utf-8"))
    _install_scalar(built.type_map["Date"], _out_date, _in_date)  # type: ignore[arg-type]
    _install_scalar(built.type_map["DateTime"], _out_date, _in_datetime)  # type: ignore[arg-type]

    query = built.query_type
    mutation = built.mutation_type
    assert query is not None and mutation is not None
    resolvers: dict[str, Callable[..., Any]] = {
        "customer": lambda store, email: store.customer(email),
        "subscription": lambda store, id: store.subscriptions.get(id.strip().upper()),
        "plans": lambda store: list(store.plans.values()),
    }
    for name, fn in resolvers.items():
        query.fields[name].resolve = _business(fn)
    mutations: dict[str, Callable[..., Any]] = {
        "cancelSubscription": lambda store, id, reason=None: store.cancel_subscription(id, reason),
        "pauseSubscription": lambda store, id, until: store.pause_subscription(id, until),
        "resumeSubscription": lambda store, id: store.resume_subscription(id),
        "changePlan": lambda store, id, planId: store.change_plan(id, planId),
        "refundLastCharge": lambda store, id: store.refund_last_charge(id),
    }
    for name, fn in mutations.items():
        mutation.fields[name].resolve = _business(fn)
    customer = cast(GraphQLObjectType, built.type_map["Customer"])
    customer.fields["subscriptions"].resolve = _customer_subscriptions
    return built


_documents: dict[str, DocumentNode | list[GraphQLError]] = {}


def document(query: str) -> DocumentNode | list[GraphQLError]:
    """The parsed, validated document, cached: validation costs more than execution here."""
    found = _documents.get(query)
    if found is None:
        try:
            doc = parse(query, max_tokens=MAX_TOKENS)
        except GraphQLError as e:
            found = [e]
        else:
            errors = validate(schema(), doc)
            found = list(errors) if errors else doc
        if len(_documents) >= _CACHE_SIZE:
            # Oldest first (dicts keep insertion order); servers on other threads may race.
            with suppress(StopIteration, RuntimeError, KeyError):
                _documents.pop(next(iter(_documents)))
        _documents[query] = found
    return found


async def run(store: Store, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    query, variables, op_name = body.get("query"), body.get("variables"), body.get("operationName")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY:
        return 400, {"errors": [{"message": "'query' must be a non-empty string"}]}
    if variables is not None and not isinstance(variables, dict):
        return 400, {"errors": [{"message": "'variables' must be an object"}]}
    if op_name is not None and not isinstance(op_name, str):
        return 400, {"errors": [{"message": "'operationName' must be a string"}]}
    doc = document(query)
    if isinstance(doc, list):
        return 200, {"errors": [e.formatted for e in doc]}
    result = execute(
        schema(),
        doc,
        context_value=store,
        variable_values=variables,
        operation_name=op_name,
        field_resolver=_field_resolver,
    )
    if isawaitable(result):
        result = await result
    assert isinstance(result, ExecutionResult)
    return 200, dict(result.formatted)


def graphql_routes(state: ShopState) -> list[BaseRoute]:
    key = state.config.graphql_key

    def err(status: int, message: str, code: str) -> JSONResponse:
        body = {"errors": [{"message": message, "extensions": {"code": code}}]}
        return JSONResponse(body, status_code=status)

    def gateway(status: int, error: str, message: str) -> JSONResponse:
        # Not GraphQL-shaped on purpose, like an API gateway's answer: clients such as gql
        # then surface the HTTP status (401, 503) instead of a GraphQL error without one.
        return JSONResponse({"error": error, "message": message}, status_code=status)

    async def endpoint(request: Request) -> Response:
        if "graphql" in state.down:
            return gateway(503, "service_unavailable", "the subscriptions API is temporarily down")
        if not check_key(request.headers.get("x-api-key"), key):
            return gateway(401, "unauthorized", "missing or invalid X-API-Key")
        await state.delay("graphql")
        if request.method != "POST":
            return err(405, "POST a JSON body {query, variables, operationName}", "BAD_REQUEST")
        try:
            body = json.loads(await request.body())
        except ClientDisconnect:  # the caller gave up during an injected delay: nothing to do
            return Response(status_code=499)
        except ValueError:
            return err(400, "the body is not JSON", "BAD_REQUEST")
        if not isinstance(body, dict):
            return err(400, "the body must be a JSON object", "BAD_REQUEST")
        status, payload = await run(state.store, body)
        return JSONResponse(payload, status_code=status)

    return [Route("/graphql", endpoint, methods=["GET", "POST"])]
