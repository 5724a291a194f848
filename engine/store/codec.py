"""Rows: what every store writes for a run, a step, a conversation and a turn, and back.

One translation for SQLite, PostgreSQL and the in-memory store, so that a record reads back
the same from each: JSON texts (redacted for runs, as ``RunRecord.encoded`` makes them, made
storable for all), columns named as in every store's tables. A row read back is any mapping
from column names (``sqlite3.Row``, psycopg's ``dict_row``, a dict).
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from csflow.engine.errors import StoreError
from csflow.engine.store import RunRecord, _dumps, storable
from csflow.engine.store.conversations import Conversation, Turn


class Row(Protocol):
    """A row read back: ``sqlite3.Row``, psycopg's ``dict_row``, a dict."""

    def __getitem__(self, key: str, /) -> Any: ...


RUN_COLUMNS = (
    "id",
    "flow",
    "status",
    "started_at",
    "duration_ms",
    "inputs",
    "outputs",
    "reply",
    "error",
    "error_kind",
    "error_step",
    "conversation_id",
    "turn",
    "dry_run",
)
STEP_COLUMNS = (
    "run_id",
    "seq",
    "step_id",
    "verb",
    "action",
    "flow",
    "line",
    "ok",
    "state",
    "status",
    "duration_ms",
    "attempts",
    "outcome",
    "error",
)
CONVERSATION_COLUMNS = (
    "id",
    "status",
    "flow",
    "intent",
    "state",
    "expires_at",
    "handoff",
    "turns",
    "last_run_id",
    "started_at",
    "updated_at",
)
TURN_COLUMNS = (
    "conversation_id",
    "seq",
    "at",
    "text",
    "status",
    "reply",
    "run_id",
    "flow",
    "intent",
    "handoff",
    "error",
    "extra",
)
# The columns every store's table holds NOT NULL: what the in-memory store refuses too.
REQUIRED = {
    "conversations": ("id", "status", "turns", "started_at", "updated_at"),
    "turns": ("conversation_id", "seq", "at", "text", "status"),
}


def missing(row: Row, table: str) -> list[str]:
    return [c for c in REQUIRED[table] if row[c] is None]


def values(row: Row, columns: tuple[str, ...]) -> tuple[Any, ...]:
    """``row``'s values in the order of ``columns``: a statement's parameters."""
    return tuple(row[c] for c in columns)


def _json(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _text(value: str | None) -> str | None:
    return None if value is None else storable(value)


# -- runs -------------------------------------------------------------------------------------


def run_row(e: Mapping[str, Any]) -> dict[str, Any]:
    """The ``runs`` row of an encoded record (``RunRecord.encoded``)."""
    return {c: e[c] for c in RUN_COLUMNS}


def step_rows(e: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": e["id"],
            "seq": seq,
            "step_id": s.get("id"),
            "verb": s.get("verb"),
            "action": s.get("action"),
            "flow": s.get("flow"),
            "line": s.get("line"),
            "ok": bool(s.get("ok")),
            "state": s.get("state"),
            "status": s.get("status"),
            "duration_ms": s.get("duration_ms"),
            "attempts": s.get("attempts"),
            "outcome": s.get("outcome"),
            "error": s.get("error"),
        }
        for seq, s in enumerate(e["steps"])
    ]


def run_from(row: Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        flow=row["flow"],
        status=row["status"],
        started_at=row["started_at"],
        duration_ms=row["duration_ms"],
        inputs=_load(row["inputs"]) or {},
        outputs=_load(row["outputs"]) or {},
        reply=row["reply"],
        error=_load(row["error"]),
        conversation_id=row["conversation_id"],
        turn=row["turn"],
        dry_run=bool(row["dry_run"]),
    )


def step_from(row: Row) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["step_id"],
        "verb": row["verb"],
        "action": row["action"],
        "ok": bool(row["ok"]),
        "status": row["status"],
        "duration_ms": row["duration_ms"],
        "attempts": row["attempts"],
        "error": _load(row["error"]),
        "line": row["line"],
    }
    for key in ("outcome", "flow", "state"):
        if row[key] is not None:
            out[key] = row[key]
    return out


Filter = tuple[str, str, Any]  # (column, "=" | ">=" | "<", value)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    ">=": operator.ge,
    "<": operator.lt,
}


def run_filters(
    *,
    flow: str | None = None,
    failed: bool = False,
    status: str | None = None,
    since: str | None = None,
    until: str | None = None,
    conversation_id: str | None = None,
) -> list[Filter]:
    """``RunReader.list_runs``'s filters, one meaning for every store: ``since <= started_at
    < until`` (half open, so that windows that follow each other page without overlap)."""
    found: list[Filter] = []
    if flow is not None:
        found.append(("flow", "=", flow))
    if failed:
        found.append(("status", "=", "failed"))
    if status is not None:
        found.append(("status", "=", status))
    if since is not None:
        found.append(("started_at", ">=", since))
    if until is not None:
        found.append(("started_at", "<", until))
    if conversation_id is not None:
        found.append(("conversation_id", "=", conversation_id))
    return found


def where(filters: list[Filter], placeholder: str) -> str:
    """The filters as SQL (``WHERE a = ? AND ...``, or nothing), ``placeholder`` for values."""
    if not filters:
        return ""
    return " WHERE " + " AND ".join(f"{col} {op} {placeholder}" for col, op, _ in filters)


def matches(row: Row, filters: list[Filter]) -> bool:
    """Whether ``row`` passes ``filters``: the in-memory store's WHERE."""
    return all(row[col] is not None and _OPS[op](row[col], value) for col, op, value in filters)


def found_run(
    run_id: str,
    rows: Callable[[str, str], list[Any]],
    steps: Callable[[str], list[Any]],
) -> RunRecord | None:
    """``RunReader.get_run`` over a database: the run with this id, or the one run whose id
    starts with it (4+ characters; StoreError for more than one).

    ``rows(where, value)`` reads the ``runs`` rows where ``where`` is ``"exact"`` (``id = ``)
    or ``"prefix"`` (``id LIKE value ESCAPE '\\'``, ``LIMIT 2``); ``steps(id)`` a run's steps.
    """
    found = rows("exact", run_id)
    if not found and len(run_id) >= 4:
        escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = rows("prefix", escaped + "%")
        if len(found) > 1:
            raise StoreError(f"more than one run id starts with '{run_id}'")
    if not found:
        return None
    record = run_from(found[0])
    record.steps = [step_from(row) for row in steps(record.id)]
    return record


# -- conversations ----------------------------------------------------------------------------


def conversation_row(c: Conversation) -> dict[str, Any]:
    return {
        "id": storable(c.id),
        "status": c.status,
        "flow": c.flow,
        "intent": _json(c.intent),
        "state": _json(c.state),
        "expires_at": c.expires_at,
        "handoff": _json(c.handoff),
        "turns": c.turns,
        "last_run_id": _text(c.last_run_id),
        "started_at": c.started_at,
        "updated_at": c.updated_at,
    }


def conversation_from(row: Row) -> Conversation:
    return Conversation(
        id=row["id"],
        status=row["status"],
        started_at=row["started_at"],
        updated_at=row["updated_at"],
        flow=row["flow"],
        intent=_load(row["intent"]),
        state=_load(row["state"]),
        expires_at=row["expires_at"],
        handoff=_load(row["handoff"]),
        turns=row["turns"],
        last_run_id=row["last_run_id"],
    )


def turn_row(conversation_id: str, t: Turn) -> dict[str, Any]:
    return {
        "conversation_id": storable(conversation_id),
        "seq": t.seq,
        "at": t.at,
        "text": storable(t.text),  # the customer's own words: a lone surrogate is possible
        "status": t.status,
        "reply": _text(t.reply),
        "run_id": _text(t.run_id),
        "flow": t.flow,
        "intent": _json(t.intent),
        "handoff": _json(t.handoff),
        "error": _json(t.error),
        "extra": _json(t.extra or None),
    }


def turn_from(row: Row) -> Turn:
    return Turn(
        seq=row["seq"],
        at=row["at"],
        text=row["text"],
        status=row["status"],
        reply=row["reply"],
        run_id=row["run_id"],
        flow=row["flow"],
        intent=_load(row["intent"]),
        handoff=_load(row["handoff"]),
        error=_load(row["error"]),
        extra=_load(row["extra"]) or {},
    )


__all__ = [
    "CONVERSATION_COLUMNS",
    "REQUIRED",
    "RUN_COLUMNS",
    "STEP_COLUMNS",
    "TURN_COLUMNS",
    "Filter",
    "Row",
    "conversation_from",
    "conversation_row",
    "found_run",
    "matches",
    "missing",
    "run_filters",
    "run_from",
    "run_row",
    "step_from",
    "step_rows",
    "turn_from",
    "turn_row",
    "values",
    "where",
]
