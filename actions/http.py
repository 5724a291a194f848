"""The built-in ``http`` action: one REST call through the connection's client (§6)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from csflow.adapters.calls import bind
from csflow.adapters.xml import parse_xml
from csflow.engine.context import ActionContext, Payload
from csflow.engine.errors import ErrorKind, StepError
from csflow.engine.registry import action
from csflow.engine.urls import path_problem

METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})
EXPECT = frozenset({"auto", "json", "xml", "text"})


def check(args: dict[str, Any], connection: Any, root: Path) -> Iterable[tuple[str, str]]:
    """Load-time checks of an ``http`` step's literal arguments."""
    method = args.get("method", "GET")
    if isinstance(method, str) and "{" not in method and method.upper() not in METHODS:
        yield "method", f"unknown HTTP method '{method}'"
    path = args.get("path")
    if isinstance(path, str):
        problem = path_problem(path)
        if problem:
            yield "path", problem
    if args.get("json") is not None and args.get("form") is not None:
        yield "json", "give either 'json' or 'form', not both"
    expect = args.get("expect", "auto")
    if isinstance(expect, str) and expect not in EXPECT:
        yield "expect", f"'expect' is one of {', '.join(sorted(EXPECT))}"
    ok = args.get("ok_status")
    if ok is not None and not (isinstance(ok, list) and all(isinstance(s, int) for s in ok)):
        yield "ok_status", "'ok_status' is a list of status codes, say [404]"


@action("http", connection="rest", check=check)
async def http(
    connection: str,
    path: str,
    method: str = "GET",
    query: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    json: Any = None,
    form: dict[str, Any] | None = None,
    ok_status: list[int] | None = None,
    expect: str = "auto",
    *,
    ctx: ActionContext,
) -> Payload:
    """Call ``method path`` on the connection; the parsed body is the step's data."""
    conn, view = bind(ctx, connection)
    hdrs = {k: str(v) for k, v in (headers or {}).items()}
    content = None
    if json is not None:
        content = _dumps(json)
        hdrs.setdefault("Content-Type", "application/json")
    elif form is not None:
        content = urlencode({k: "" if v is None else v for k, v in form.items()}).encode()
        hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
    hdrs.setdefault("Accept", "application/json, application/xml;q=0.9, */*;q=0.5")
    response = await conn.send(method, path, view, params=query, headers=hdrs, content=content)
    status = response.status_code
    if status >= 400 and status not in (ok_status or ()):
        raise _status_error(method.upper(), conn.name, path, response)
    data, xml = _body(response, expect, f"{method.upper()} {conn.name}{path}")
    return Payload(data=data, status=status, xml=xml)


def _dumps(value: Any) -> bytes:
    from csflow.engine.coerce import to_json

    return json.dumps(value, default=to_json, ensure_ascii=False).encode()


def _status_error(method: str, name: str, path: str, response: Any) -> StepError:
    status = response.status_code
    kind: ErrorKind = "auth" if status in (401, 403) else "http_status"
    retry_after = _retry_after(response.headers.get("Retry-After"))
    return StepError(
        kind, f"{method} {name}{path} answered {status}", status=status, retry_after=retry_after
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        import datetime as dt
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _body(response: Any, expect: str, what: str) -> tuple[Any, Any]:
    """The parsed body: JSON, an XML tree, or text. HTML is never API data."""
    content: bytes = response.content
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not content.strip():
        return None, None
    if expect == "text":
        return response.text, None
    is_json = ctype == "application/json" or ctype.endswith("+json")
    is_xml = ctype in ("application/xml", "text/xml") or ctype.endswith("+xml")
    if expect == "auto" and not (is_json or is_xml):
        if ctype == "text/html":
            raise StepError("parse", f"{what}: expected data, got an HTML page")
        first = content.lstrip()[:1]
        is_json, is_xml = first in (b"{", b"[", b'"'), first == b"<"
        if not (is_json or is_xml):
            return response.text, None
    if expect == "json" or (expect == "auto" and is_json):
        try:
            return json.loads(content), None
        except ValueError as exc:
            raise StepError("parse", f"{what}: the body is not valid JSON ({exc})") from None
    try:
        tree = parse_xml(content)
    except Exception as exc:
        raise StepError("parse", f"{what}: the body is not valid XML ({exc})") from None
    return tree, tree
