"""What every channel does the same way: keys, body limits, deadlines, the per-request record.

Keys are compared as HMAC digests under a per-process random key, with
``hmac.compare_digest`` against every configured key: the time taken reveals neither how much
of a key matched, nor its length, nor which tenant's key came closest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from csflow.engine.errors import UsageError

MAX_BODY_BYTES = 64 * 1024
# The run's deadline ends this long before the platform gives up, so that the result is
# rendered and on the wire in time; the asyncio backstop fires a little later still.
RUN_MARGIN = 0.5
BACKSTOP_MARGIN = 0.25
STARTED_KEY = "csflow.started"
RECORD_KEY = "csflow.record"

log = logging.getLogger("csflow.channels")
_PROCESS_KEY = secrets.token_bytes(32)


def digest(value: bytes) -> bytes:
    return hmac.new(_PROCESS_KEY, value, hashlib.sha256).digest()


@dataclass
class KeyRing:
    """API keys of one channel, each selecting a tenant."""

    entries: list[tuple[bytes, str]] = field(default_factory=list)  # (digest, tenant)

    def add(self, key: bytes, tenant: str) -> bool:
        """False when the key is already in the ring (two tenants cannot share a key)."""
        d = digest(key)
        if any(hmac.compare_digest(d, other) for other, _ in self.entries):
            return False
        self.entries.append((d, tenant))
        return True

    def match(self, presented: str | None) -> str | None:
        """The tenant whose key was presented, or None; every entry is compared, always."""
        d = digest((presented or "").encode("utf-8", "surrogateescape"))
        found = None
        for other, tenant in self.entries:
            if hmac.compare_digest(d, other) and presented:
                found = tenant
        return found


class BodyTooLarge(Exception):
    pass


class BadBody(Exception):
    pass


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, counted while it is read: Content-Length is checked too, never trusted alone."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # deep nesting is a RecursionError
        raise BadBody("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    return data


def record(request: Request) -> dict[str, Any]:
    """The request's entry for the access log: channel, tenant, flow, run id, outcome."""
    found: dict[str, Any] | None = request.scope.get(RECORD_KEY)
    if found is None:
        found = request.scope[RECORD_KEY] = {}
    return found


def budget(request: Request, timeout: float) -> float:
    """Seconds left of the platform's ``timeout`` since the request arrived."""
    loop = asyncio.get_running_loop()
    started = float(request.scope.get(STARTED_KEY, loop.time()))
    return timeout - (loop.time() - started)


@dataclass
class Outcome:
    """How a run ended for a channel: a result, an overrun, or inputs the flow refused."""

    result: Any = None  # engine.RunResult
    overran: bool = False
    usage_error: str | None = None

    @property
    def completed(self) -> bool:
        return self.result is not None and self.result.status == "completed"


async def run_within(
    project: Any, flow: str, inputs: Mapping[str, Any], seconds: float, note: dict[str, Any]
) -> Outcome:
    """Run ``flow`` with a deadline, and an asyncio timeout around it, inside ``seconds``.

    The deadline lets the runner end the run cleanly with ``deadline``; the timeout is the
    backstop for anything that does not honour it. Either way the caller answers in time.
    """
    note["flow"] = flow
    hard = seconds - BACKSTOP_MARGIN
    deadline = seconds - RUN_MARGIN
    if deadline <= 0.05:
        note["run_status"] = "no_time"
        return Outcome(overran=True)
    try:
        async with asyncio.timeout(hard):
            result = await project.run(flow, inputs, deadline=deadline)
    except TimeoutError:
        note["run_status"] = "overran"
        return Outcome(overran=True)
    except UsageError as exc:
        note["run_status"] = "bad_inputs"
        return Outcome(usage_error=str(exc))
    note["run_id"] = result.run_id
    note["run_status"] = result.status
    if result.error:
        note["error_kind"] = result.error.get("kind")
    return Outcome(result=result)


def truthy(value: Any) -> bool:
    """``found:`` as a CS author means it: "false", "no", "0" and empty are not found."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none", "null")
    return bool(value)


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)  # Decimal and the like: text rather than a 500


def json_response(
    content: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """JSON with the platform's Content-Type; dates as ISO 8601."""
    body = json.dumps(content, default=_plain, ensure_ascii=False, separators=(",", ":"))
    return Response(
        body.encode(), status, headers=dict(headers or {}), media_type="application/json"
    )


def empty_response(status: int) -> Response:
    # Zipchat's 401 has "no body"; the Content-Type stays what every answer of theirs carries.
    return Response(b"", status, media_type="application/json")


Handler = Callable[[Request], Awaitable[Response]]


def shielded(handler: Handler, fallback: Callable[[], Response]) -> Handler:
    """``handler``, answering the platform's "could not check" shape if it ever raises.

    A bug must still leave the platform an answer it understands, and a log line (the access
    log's ``internal_error``) rather than a traceback.
    """

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception as exc:
            record(request)["internal_error"] = f"{type(exc).__name__}: {exc}"[:300]
            return fallback()

    return endpoint
