"""Structured logs: one JSON object per line, with nothing of a secret in it.

The access log is written here, not by uvicorn: uvicorn's line carries the query string, and
a platform may put a key there. A line has the method, the path without its query, the status,
the time taken, and what the channel did (channel, tenant, flow, run id, run status, outcome);
never a header, a body, a query value or a key. Every line also passes through a redactor
that knows the configured keys and secrets, in case one ever reaches a message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from csflow.engine.redaction import Redactor
from csflow.serve.runtime import RECORD_KEY, STARTED_KEY

access_log = logging.getLogger("csflow.access")
app_log = logging.getLogger("csflow.channels")
REDACTOR = Redactor()  # filled with the channels' secrets when an app is made


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...fields}``, redacted, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info and record.exc_info[1] is not None:
            # A type and a message, never a traceback: frames can hold keys in their locals.
            exc = record.exc_info[1]
            out["error"] = f"{type(exc).__name__}: {exc}"
        return REDACTOR.text(json.dumps(out, default=str, ensure_ascii=False))


def emit(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


_INTERNAL_ERROR = b'{"error":"internal_error","message":"the server could not answer; see its log"}'


class AccessLog:
    """ASGI middleware: times each request, logs one line, and turns a crash into a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[STARTED_KEY] = asyncio.get_running_loop().time()  # the deadline's clock
        started = time.perf_counter()  # the log's: the loop's clock can tick in whole ms
        note: dict[str, Any] = {}
        scope[RECORD_KEY] = note
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # a bug of ours: one log line, a plain 500, no traceback
            note["internal_error"] = f"{type(exc).__name__}: {exc}"[:300]
            if status == 0:
                status = 500
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"application/json")],
                    }
                )
                await send({"type": "http.response.body", "body": _INTERNAL_ERROR})
        finally:
            client = scope.get("client")
            emit(
                access_log,
                logging.ERROR if "internal_error" in note else logging.INFO,
                "request",
                method=scope.get("method"),
                path=scope.get("path"),  # never the query string: keys and PII live there
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                client=client[0] if client else None,
                **note,
            )


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "csflow.serve.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
    },
    "loggers": {
        "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        "csflow.access": {"handlers": ["stdout"], "level": "INFO", "propagate": False},
        "csflow.channels": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # httpx logs every URL it calls at INFO, query strings included: not in our logs.
        "httpx": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "httpcore": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
