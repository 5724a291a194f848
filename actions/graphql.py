"""The built-in ``graphql`` action: one query or mutation through the connection (§5, §6, §7).

```yaml
- id: refund
  call: graphql
  with:
    connection: subs
    query: |
      mutation Refund($id: ID!) { refundLastCharge(id: $id) { id amount currency } }
    variables: {id: "{{ subscription_id }}"}
  idempotency_key: "refund-{{ subscription_id }}"
  extract: {refund_amount: refundLastCharge.amount}
```

The query is parsed at load, and validated against the connection's ``schema:`` file when it
gives one. A mutation is a write (§7). A response with ``errors`` fails the step (kind
``action``) with their messages; ``steps.ID.error`` keeps ``code``, ``errors`` and ``data``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from csflow.adapters import graphql as adapter
from csflow.adapters.calls import bind
from csflow.adapters.operation_mocks import mocked
from csflow.engine.context import ActionContext, Payload
from csflow.engine.registry import action
from csflow.engine.suggest import did_you_mean


def check(args: dict[str, Any], connection: Any, root: Path) -> Iterable[tuple[str, str]]:
    """Load-time checks: the query parses, fits the schema, and gets the variables it declares."""
    query = args.get("query")
    if not isinstance(query, str):
        if query is not None:
            yield "query", "'query' is the text of a GraphQL query or mutation"
        return
    if "{{" in query or "{%" in query:
        return  # a templated query is parsed (and validated) when it runs
    schema = None
    if connection is not None and connection.type == "graphql":
        try:
            schema = adapter.schema_for(connection, root)
        except adapter.GraphQLProblem as exc:
            for message in exc.problems:
                yield "connection", message
    name = args.get("operation_name")
    try:
        prepared = adapter.prepare(query, name if isinstance(name, str) else None, schema)
    except adapter.GraphQLProblem as exc:
        for message in exc.problems:
            yield "query", message
        return
    variables = args.get("variables") or {}
    if not isinstance(variables, dict):
        return  # one template for the whole mapping: checked by the server
    for key in variables:
        if key not in prepared.variables:
            hint = did_you_mean(key, prepared.variables)
            yield "variables", f"the query declares no variable '${key}'{hint}"
    missing = sorted(
        n for n, required in prepared.variables.items() if required and n not in variables
    )
    if missing:
        where = "variables" if "variables" in args else "query"
        yield where, f"the query needs {', '.join('$' + m for m in missing)} in 'variables'"


@action("graphql", connection="graphql", check=check)
async def graphql(
    connection: str,
    query: str,
    variables: dict[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    ctx: ActionContext,
) -> Payload:
    """Run ``query`` (a query or a mutation) with ``variables``; ``data`` is the step's data."""
    conn, view = bind(ctx, connection)
    prepared = adapter.prepared_for(conn, query, operation_name)
    names = (
        (prepared.operation_name, *prepared.fields) if prepared.operation_name else prepared.fields
    )
    found, data = mocked(conn, *names)
    if found:
        return Payload(data=data)
    return await adapter.execute(conn, prepared, variables, view)
