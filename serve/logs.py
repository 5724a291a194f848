"""Structured logs: one JSON object per line, with nothing of a secret in it.

The access log is written here, not by uvicorn: uvicorn's line carries the query string, and
a platform may put a key there. A line has the method, the path without its query, the status,
the time taken, and what the channel did (channel, tenant, flow, run id, run status, outcome);
never a header, a body, a query value or a key. Every line also passes through a redactor
that knows the configured keys and secrets, in case one ever reaches a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass, fields
from typing import Any

from csflow.engine.redaction import Redactor
from csflow.serve.runtime import ChannelRun

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


class LoopFlushedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes once per turn of the event loop, not once per line.

    Under load one turn of the loop answers many requests. A write per line is a write(2) per
    request when the stream is unbuffered (``PYTHONUNBUFFERED=1``, common in containers), and
    each one hands the GIL to the run store's writer thread in the middle of an answer: about
    a tenth of the server's CPU (bench/README.md, "Serve"). Lines are kept here and written
    together before the loop next waits for I/O; at once when no loop runs in this thread.
    """

    def __init__(self, stream: Any = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop in this thread: write now
            self._write([line])
            return
        if not self._pending:
            loop.call_soon(self._write_pending)
        self._pending.append(line)

    def _write_pending(self) -> None:
        with self.lock or contextlib.nullcontext():
            lines, self._pending = self._pending, []
        self._write(lines)

    def _write(self, lines: list[str]) -> None:
        if lines:
            try:
                self.stream.write("".join(lines))
                self.stream.flush()
            except Exception:  # a closed or broken stream must not break an answer
                pass

    def flush(self) -> None:
        self._write_pending()

    def close(self) -> None:
        self._write_pending()
        super().close()


def emit(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


@dataclass(slots=True)
class AccessEntry:
    """One access log line: what was asked (never a query, header or body) and what was done."""

    method: str
    path: str  # never the query string: keys and PII live there
    client: str | None
    status: int = 0
    duration_ms: float = 0.0
    channel: str | None = None
    tenant: str | None = None
    flow: str | None = None
    run_id: str | None = None
    run_status: str | None = None
    error_kind: str | None = None
    outcome: str | None = None
    orders: int | None = None  # order_lookup: how many orders the answer holds
    detail: str | None = None  # why the answer is what it is (a template's error, a late body)
    internal_error: str | None = None

    def ran(self, outcome: ChannelRun) -> None:
        """What the run did: its id and status, or why there was none."""
        result = outcome.result
        if result is not None:
            self.flow = result.flow or self.flow  # a conversation's flow is known only now
            self.run_id = result.run_id
            self.run_status = result.status
            if result.error:
                self.error_kind = result.error.get("kind")
        elif outcome.usage_error is not None:
            self.run_status = "bad_inputs"
        else:
            self.run_status = "no_time" if outcome.no_time else "overran"

    def fields(self) -> dict[str, Any]:
        """The line's fields; the request's own are always there, the channel's when known."""
        out: dict[str, Any] = {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "client": self.client,
        }
        for name in _CHANNEL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def write(self) -> None:
        emit(access_log, logging.ERROR if self.internal_error else logging.INFO, "request",
             **self.fields())  # fmt: skip


_CHANNEL_FIELDS = tuple(f.name for f in fields(AccessEntry) if f.name not in
                        ("method", "path", "status", "duration_ms", "client"))  # fmt: skip


LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "csflow.serve.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {
            "class": "csflow.serve.logs.LoopFlushedStreamHandler",
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
        # The shared state going down and coming back (adapters.shared), once each way.
        "csflow.shared": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # httpx logs every URL it calls at INFO, query strings included: not in our logs.
        "httpx": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
        "httpcore": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
    },
}
