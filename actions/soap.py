"""The built-in ``soap`` action: one WSDL operation through the connection (§5, §6, §7).

```yaml
- id: erp_status
  call: soap
  with: {connection: erp, operation: GetOrderStatus, args: {orderNumber: "{{ order_number }}"}}
  extract:
    erp_status: status                                  # path: over the result as plain dicts
    carrier: {xpath: "string(//erp:shipment[last()]/erp:carrier)"}   # xpath: over the envelope
```

A call is a write (§7) unless the connection lists the operation in ``read_only``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from csflow.adapters import soap as adapter
from csflow.adapters import wsdl as wsdls
from csflow.adapters.calls import bind
from csflow.adapters.operation_mocks import mocked
from csflow.engine.context import ActionContext, Payload
from csflow.engine.registry import action
from csflow.engine.shapes import Answer
from csflow.engine.suggest import did_you_mean
from csflow.engine.urls import url_problem


def check(args: dict[str, Any], connection: Any, root: Path) -> Iterable[tuple[str, str]]:
    """Load-time checks: the WSDL loads, and names the operation and its arguments."""
    if connection is None or connection.type != "soap":
        return  # an unknown or mistyped connection is already reported
    if "://" in str(connection.wsdl) and url_problem(
        connection.wsdl, allow_insecure_http=connection.allow_insecure_http
    ):
        return  # reported at the connection's `wsdl:` by the project loader, and never fetched
    try:
        wsdl = wsdls.wsdl_for(connection, root)
    except wsdls.WsdlError as exc:
        yield "connection", str(exc)
        return
    problem = wsdls.endpoint_problem(connection, wsdl)
    if problem:
        yield "connection", problem
    operation = args.get("operation")
    if not isinstance(operation, str) or "{" in operation:
        return  # a templated operation is checked when it runs
    op = wsdl.operations.get(operation)
    if op is None:
        hint = did_you_mean(operation, wsdl.operations)
        yield "operation", f"the WSDL of this connection has no operation '{operation}'{hint}"
        return
    given = args.get("args") or {}
    if not isinstance(given, dict) or op.args is None:
        return  # a templated mapping is checked by zeep when it runs
    for name in given:
        if name not in op.args:
            hint = did_you_mean(name, op.args)
            yield "args", f"operation '{operation}' has no argument '{name}'{hint}"
    missing = sorted(op.required - set(given))
    if missing:
        where = "args" if "args" in args else "operation"
        yield (
            where,
            f"operation '{operation}' needs {', '.join(repr(m) for m in missing)} in 'args'",
        )


def answer(args: dict[str, Any], connection: Any, root: Path) -> Answer | None:
    """What ``path:`` sees of the operation's answer, from the WSDL; None when it is not known."""
    operation = args.get("operation")
    if connection is None or connection.type != "soap" or not isinstance(operation, str):
        return None
    if "://" in str(connection.wsdl) and url_problem(
        connection.wsdl, allow_insecure_http=connection.allow_insecure_http
    ):
        return None  # never fetched (see `check`)
    try:
        wsdl = wsdls.wsdl_for(connection, root)  # cached: `check` read it a moment ago
    except wsdls.WsdlError:
        return None  # reported by `check`
    op = wsdl.operations.get(operation)
    return op.answer if op is not None else None


@action("soap", connection="soap", check=check, answer=answer)
async def soap(
    connection: str, operation: str, args: dict[str, Any] | None = None, *, ctx: ActionContext
) -> Payload:
    """Call ``operation`` of the connection's WSDL with ``args``."""
    conn, view = bind(ctx, connection)
    found, data = mocked(conn, operation)
    if found:
        return Payload(data=data)
    return await adapter.call(conn, operation, args or {}, view)
