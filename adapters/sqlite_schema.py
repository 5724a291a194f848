"""The SQLite run store's tables, and the translation between its rows and ``RunRecord``.

One module for the shape of the file, so that the writer (``sqlite_store``) holds only the
how: its thread, its queue and its commits.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          TEXT PRIMARY KEY,
    flow        TEXT NOT NULL,
    status      TEXT NOT NULL,          -- in_flight | completed | failed
    started_at  TEXT NOT NULL,          -- ISO 8601, UTC
    duration_ms REAL,
    inputs      TEXT NOT NULL,          -- JSON, redacted
    outputs     TEXT NOT NULL,          -- JSON, redacted
    reply       TEXT,
    error       TEXT,                   -- JSON {kind, message, step, ...}, redacted
    error_kind  TEXT,
    error_step  TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_time ON runs (started_at);
CREATE INDEX IF NOT EXISTS runs_by_flow ON runs (flow, started_at);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, started_at);
CREATE TABLE IF NOT EXISTS steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    step_id     TEXT,
    verb        TEXT NOT NULL,
    action      TEXT,
    flow        TEXT,
    line        INTEGER,
    ok          INTEGER NOT NULL,
    state       TEXT,                   -- in_flight: the write that was leaving
    status      INTEGER,
    duration_ms REAL,
    attempts    INTEGER,
    outcome     TEXT,                   -- done | not_sent | unknown
    error       TEXT,                   -- JSON, redacted
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"""
VERSION = 1
# Runs that are still open are never pruned: in_flight ones are the ones to check, and a
# waiting conversation (§12) is one that will go on.
KEEP = (IN_FLIGHT, "waiting")

_RUN_COLUMNS = (
    "id, flow, status, started_at, duration_ms, inputs, outputs, reply, error, error_kind,"
    " error_step"
)
_UPDATE = (
    " ON CONFLICT (id) DO UPDATE SET status=excluded.status, duration_ms=excluded.duration_ms,"
    " outputs=excluded.outputs, reply=excluded.reply, error=excluded.error,"
    " error_kind=excluded.error_kind, error_step=excluded.error_step"
)
_RUN_VALUES = "(" + ",".join("?" * 11) + ")"
_STEP_VALUES = "(" + ",".join("?" * 14) + ")"
# SQLite's bound on the parameters of one statement (32766 since 3.32, 999 before).
MAX_PARAMETERS = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999


def upsert_runs(count: int) -> str:
    """One statement for ``count`` runs' rows. A group's rows go in a few statements, not one
    per row: each statement releases and retakes the GIL, which a busy event loop holds."""
    return f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES {','.join([_RUN_VALUES] * count)}{_UPDATE}"


def delete_steps(count: int) -> str:
    return f"DELETE FROM steps WHERE run_id IN ({','.join('?' * count)})"


def insert_steps(count: int) -> str:
    return f"INSERT INTO steps VALUES {','.join([_STEP_VALUES] * count)}"


def chunks(rows: list[tuple[Any, ...]], width: int) -> list[list[tuple[Any, ...]]]:
    """``rows`` in slices that keep a statement under MAX_PARAMETERS."""
    size = max(1, MAX_PARAMETERS // width)
    return [rows[i : i + size] for i in range(0, len(rows), size)]


PRUNE = (
    f"DELETE FROM runs WHERE status NOT IN ({','.join('?' * len(KEEP))}) AND rowid IN"
    " (SELECT rowid FROM runs ORDER BY started_at DESC LIMIT -1 OFFSET ?)"
)


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def check_is_a_run_store(conn: sqlite3.Connection, path: Path) -> None:
    """StoreError unless ``path`` is a csflow run store: SQLite, with a ``runs`` table.

    SQLite opens any file lazily and only says "file is not a database" on the first query;
    a reader must not turn that into a traceback, nor take another program's database.
    """
    try:
        found = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('runs', 'steps')"
        ).fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a csflow run store (SQLite says: {exc})") from None
    if found != 2:
        raise StoreError(f"{path} is not a csflow run store: it has no runs and steps tables")


def run_row(e: dict[str, Any]) -> tuple[Any, ...]:
    """The ``runs`` row of an encoded record (``RunRecord.encoded``)."""
    return (
        e["id"],
        e["flow"],
        e["status"],
        e["started_at"],
        e["duration_ms"],
        e["inputs"],
        e["outputs"],
        e["reply"],
        e["error"],
        e["error_kind"],
        e["error_step"],
    )


def step_rows(e: dict[str, Any]) -> list[tuple[Any, ...]]:
    rid = e["id"]
    return [
        (
            rid,
            seq,
            s.get("id"),
            s.get("verb"),
            s.get("action"),
            s.get("flow"),
            s.get("line"),
            1 if s.get("ok") else 0,
            s.get("state"),
            s.get("status"),
            s.get("duration_ms"),
            s.get("attempts"),
            s.get("outcome"),
            s.get("error"),
        )
        for seq, s in enumerate(e["steps"])
    ]


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def run_from(row: sqlite3.Row) -> RunRecord:
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
    )


def step_from(row: sqlite3.Row) -> dict[str, Any]:
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
