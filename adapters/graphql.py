"""GraphQL over gql, through the connection's own httpx machinery.

A query is parsed (and validated against the connection's ``schema:`` file, when it gives
one) once per text, at project load by the ``graphql`` action's check hook; the cache makes
a run's ``prepare`` a dict lookup. At run time gql's ``AsyncClientSession`` executes the
request and turns a response with ``errors`` into ``TransportQueryError``; its transport
(``ConnectionTransport``) posts through ``HttpConnection.send`` with the call's view, so
timeouts, the host check, the size cap, auth, redaction, mocking and what was sent are the
same as for ``http``.
gql's and graphql-core's exceptions become error kinds here, once.
"""

from __future__ import annotations

import json
import re
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from gql import Client, GraphQLRequest
from gql.client import AsyncClientSession
from gql.transport.async_transport import AsyncTransport
from gql.transport.exceptions import TransportQueryError
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    build_ast_schema,
    build_client_schema,
    parse,
    validate,
)

from csflow.adapters.calls import CallView
from csflow.adapters.connections import HttpConnection
from csflow.engine.coerce import to_json
from csflow.engine.context import Payload
from csflow.engine.errors import StepError

FAILURE_TTL = 30.0  # seconds a broken schema file is remembered: one project load
ACCEPT = "application/graphql-response+json, application/json;q=0.9"


class GraphQLProblem(Exception):
    """A query or schema that cannot be used; ``problems`` are messages for the flow author."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Prepared:
    """A parsed (and validated) query: what a run needs, worked out once per text."""

    document: DocumentNode
    text: str
    operation_name: str | None
    is_mutation: bool
    fields: tuple[str, ...]  # top-level fields: what an operation mock may be named after
    variables: Mapping[str, bool]  # declared variables: name -> required


# -------------------------------------------------------------------------- schema and query

_schemas: dict[tuple[Any, ...], GraphQLSchema] = {}
_schema_failures: dict[tuple[Any, ...], tuple[float, str]] = {}


def schema_for(model: Any, root: Path) -> GraphQLSchema | None:
    """The connection's schema (SDL, or introspection JSON), read once per file; None if none."""
    location = getattr(model, "schema_", None)
    if not location:
        return None
    if "://" in location:
        raise GraphQLProblem([f"schema '{location}' must be a file in the project, not a URL"])
    path = (root / location).resolve()
    try:
        stat = path.stat()
        key: tuple[Any, ...] = (str(path), stat.st_mtime_ns, stat.st_size)
    except OSError:
        raise GraphQLProblem([f"schema file '{location}' not found in the project"]) from None
    if key in _schemas:
        return _schemas[key]
    failed = _schema_failures.get(key)
    if failed is not None and time.monotonic() - failed[0] < FAILURE_TTL:
        raise GraphQLProblem([failed[1]])
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            data = json.loads(text)
            schema = build_client_schema(data.get("data", data))
        else:
            schema = build_ast_schema(parse(text))
    except (OSError, ValueError, TypeError, GraphQLError) as exc:
        message = f"schema '{location}' is not usable: {_first_line(exc)}"
        _schema_failures[key] = (time.monotonic(), message)
        raise GraphQLProblem([message]) from None
    _schemas[key] = schema
    return schema


@lru_cache(maxsize=512)
def prepare(text: str, operation_name: str | None, schema: GraphQLSchema | None) -> Prepared:
    """Parse and validate ``text``; raises GraphQLProblem listing every problem, located."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise GraphQLProblem([f"GraphQL syntax error: {_located(exc)}"]) from None
    if schema is not None:
        errors = validate(schema, document)
        if errors:
            raise GraphQLProblem([_located(e) for e in errors])
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        chosen = [o for o in operations if o.name and o.name.value == operation_name]
        if not chosen:
            names = [o.name.value for o in operations if o.name]
            raise GraphQLProblem(
                [
                    f"the query has no operation named '{operation_name}'"
                    + (f" (it has {', '.join(names)})" if names else "")
                ]
            )
        operation = chosen[0]
    elif len(operations) == 1:
        operation = operations[0]
    else:
        raise GraphQLProblem(["the query has several operations: say which with 'operation_name'"])
    if operation.operation == OperationType.SUBSCRIPTION:
        raise GraphQLProblem(["subscriptions are not supported: use a query or a mutation"])
    fields = tuple(s.name.value for s in operation.selection_set.selections if hasattr(s, "name"))
    variables = {
        v.variable.name.value: isinstance(v.type, NonNullTypeNode) and v.default_value is None
        for v in operation.variable_definitions or ()
    }
    return Prepared(
        document,
        text,
        operation.name.value if operation.name else None,
        operation.operation == OperationType.MUTATION,
        fields,
        variables,
    )


def _located(error: GraphQLError) -> str:
    where = ""
    if error.locations:
        loc = error.locations[0]
        where = f" (query line {loc.line}, column {loc.column})"
    return _first_line(error) + where


def _first_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return re.sub(r"\s+", " ", text.splitlines()[0] if text else type(exc).__name__).strip()


# -------------------------------------------------------------------------- calling


@dataclass(slots=True)
class _Request:
    """One query's POST: gql hands it to ``ConnectionTransport.execute`` as a keyword."""

    conn: HttpConnection
    view: CallView
    write: bool
    text: str
    what: str
    status: int | None = None  # the transport's answer to ``execute``: its HTTP status


class ConnectionTransport(AsyncTransport):
    """gql's transport over ``HttpConnection.send``: one POST per request, JSON in and out."""

    async def connect(self) -> None:
        pass  # the connection owns its pooled clients

    async def close(self) -> None:
        pass

    def subscribe(self, request: GraphQLRequest) -> Any:
        raise StepError("validation", "GraphQL subscriptions are not supported")

    async def execute(self, request: GraphQLRequest, *, call: _Request) -> ExecutionResult:  # type: ignore[override]
        payload: dict[str, Any] = {"query": call.text}
        if request.operation_name:
            payload["operationName"] = request.operation_name
        if request.variable_values:
            payload["variables"] = request.variable_values
        conn = call.conn
        url = conn.model.url or ""  # as configured: a trailing slash may matter to the server
        content = json.dumps(payload, default=to_json, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Accept": ACCEPT}
        try:
            response = await conn.send(
                "POST", url, call.view, headers=headers, content=content, write=call.write
            )
        except StepError as err:
            # The absolute URL makes "POST subshttp://..."; say which operation it was.
            raise err.replace(
                message=err.message.replace(f"POST {conn.name}{url}", call.what)
            ) from None
        status = call.status = response.status_code
        body = _json(response.content)
        if status in (401, 403):
            raise StepError("auth", f"{call.what} answered {status}", status=status)
        if status >= 400:
            raise StepError(
                "http_status",
                f"{call.what} answered {status}{_messages(body, ': ')}",
                status=status,
                details=_errors_details(body) if isinstance(body, dict) else {},
            )
        if not isinstance(body, dict) or not ("data" in body or "errors" in body):
            raise StepError(
                "parse",
                f"{call.what} answered {status} with a body that is not a GraphQL result",
                status=status,
            )
        return ExecutionResult(
            data=body.get("data"), errors=body.get("errors"), extensions=body.get("extensions")
        )


def _json(content: bytes) -> Any:
    try:
        return json.loads(content) if content.strip() else None
    except ValueError:
        return None


@dataclass
class _Client:
    session: AsyncClientSession
    schema: GraphQLSchema | None


_clients: weakref.WeakKeyDictionary[HttpConnection, _Client] = weakref.WeakKeyDictionary()


def _client_for(conn: HttpConnection) -> _Client:
    found = _clients.get(conn)
    if found is None:
        try:
            schema = schema_for(conn.model, conn.root)  # read at load: a cache hit
        except GraphQLProblem as exc:
            raise StepError("validation", f"GraphQL {conn.name}: {exc}") from None
        # No schema on the client: the query was validated once, at load; gql would do it on
        # every call. No execute_timeout: the step's timeout and the run's deadline apply.
        client = Client(transport=ConnectionTransport(), execute_timeout=None)
        found = _clients[conn] = _Client(AsyncClientSession(client), schema)
    return found


def prepared_for(conn: HttpConnection, query: str, operation_name: str | None) -> Prepared:
    """The prepared query, from the load-time cache; problems are a ``validation`` error."""
    try:
        return prepare(query, operation_name, _client_for(conn).schema)
    except GraphQLProblem as exc:
        raise StepError("validation", f"GraphQL {conn.name}: {exc}") from None


async def execute(
    conn: HttpConnection,
    prepared: Prepared,
    variables: Mapping[str, Any] | None,
    view: CallView,
) -> Payload:
    """Run a prepared query or mutation; ``errors`` fail the step, partial data kept."""
    name = prepared.operation_name or (prepared.fields[0] if prepared.fields else "query")
    what = f"GraphQL {conn.name}.{name}"
    call = _Request(conn, view, prepared.is_mutation, prepared.text, what)
    request = GraphQLRequest(
        prepared.document,
        variable_values=dict(variables) if variables else None,
        operation_name=prepared.operation_name,
    )
    try:
        result = await _client_for(conn).session.execute(
            request, get_execution_result=True, call=call
        )
    except TransportQueryError as exc:
        raise errors_error(what, exc.errors or [], exc.data, call.status) from None
    return Payload(data=result.data, status=call.status)


def errors_error(what: str, errors: list[Any], data: Any, status: int | None) -> StepError:
    """A response with ``errors``: kind ``action`` (the API refused), messages and codes kept.

    ``details``: ``errors`` (message, code, path of each), ``code`` (the first error's
    ``extensions.code``, for a ``switch``) and ``data`` (whatever partial data came back).
    """
    details = _errors_details({"errors": errors})
    details["data"] = data
    return StepError(
        "action",
        f"{what} answered with errors: {_messages({'errors': errors}, '')}",
        status=status,
        retryable=False,  # the API decided; the same request gets the same answer
        details=details,
    )


def _errors_details(body: Mapping[str, Any]) -> dict[str, Any]:
    errors = body.get("errors")
    if not isinstance(errors, list):
        return {}
    out = []
    for e in errors:
        if isinstance(e, dict):
            ext = e.get("extensions")
            ext = ext if isinstance(ext, dict) else {}
            out.append(
                {"message": e.get("message"), "code": ext.get("code"), "path": e.get("path")}
            )
    return {"errors": out, "code": out[0]["code"] if out else None}


def _messages(body: Any, prefix: str) -> str:
    if not isinstance(body, dict):
        return ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        texts = [str(e.get("message") if isinstance(e, dict) else e) for e in errors[:5]]
        return prefix + "; ".join(texts)
    message = body.get("message")
    return prefix + str(message) if isinstance(message, str) else ""
