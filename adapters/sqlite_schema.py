"""The SQLite run store's tables, their migrations, and the statements of its writer.

One module for the shape of the file, so that the writer (``sqlite_store``) holds only the
how: its thread, its queue and its commits. The rows themselves are ``engine.store.codec``'s,
the same for every store.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT
from csflow.engine.store.codec import RUN_COLUMNS, STEP_COLUMNS
from csflow.engine.store.conversations import WAITING
from csflow.engine.store.retention import PRUNE_BATCH, Keep

# Each version's statements, applied in order to a file that has the ones before (its
# ``PRAGMA user_version``). A file of version 1 keeps its runs: 2 only adds.
MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    flow        TEXT NOT NULL,
    status      TEXT NOT NULL,          -- in_flight | completed | failed | waiting | ...
    started_at  TEXT NOT NULL,          -- ISO 8601, UTC
    duration_ms REAL,
    inputs      TEXT NOT NULL,          -- JSON, redacted
    outputs     TEXT NOT NULL,          -- JSON, redacted
    reply       TEXT,
    error       TEXT,                   -- JSON {kind, message, step, ...}, redacted
    error_kind  TEXT,
    error_step  TEXT
);
CREATE INDEX runs_by_time ON runs (started_at);
CREATE INDEX runs_by_flow ON runs (flow, started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);
CREATE TABLE steps (
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
""",
    2: """
ALTER TABLE runs ADD COLUMN conversation_id TEXT;
ALTER TABLE runs ADD COLUMN turn INTEGER;
ALTER TABLE runs ADD COLUMN dry_run INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_by_conversation ON runs (conversation_id, turn);
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,          -- waiting | completed | failed | handoff | expired
    flow        TEXT,
    intent      TEXT,                   -- JSON {name, confidence}
    state       TEXT,                   -- JSON: engine.suspend's saved run, while waiting
    expires_at  TEXT,
    handoff     TEXT,                   -- JSON {reason, note, intent}
    turns       INTEGER NOT NULL,
    last_run_id TEXT,
    started_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX conversations_by_time ON conversations (updated_at);
CREATE INDEX conversations_by_status ON conversations (status, updated_at);
CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    text        TEXT NOT NULL,
    status      TEXT NOT NULL,
    reply       TEXT,
    run_id      TEXT,
    flow        TEXT,
    intent      TEXT,
    handoff     TEXT,
    error       TEXT,
    extra       TEXT,
    PRIMARY KEY (conversation_id, seq)
) WITHOUT ROWID;
-- One ticket per message queued or being answered (engine.store.inbox); AUTOINCREMENT, so
-- that a number is never given twice, even after the newest ticket left.
CREATE TABLE inbox (
    ticket          INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    lapses_at       REAL NOT NULL       -- time.time(): every process shares this machine's clock
);
CREATE INDEX inbox_by_conversation ON inbox (conversation_id, ticket);
""",
}
VERSION = max(MIGRATIONS)
# Runs that are still open are never pruned: in_flight ones are the ones to check, and a
# waiting conversation (§12) is one that will go on.
KEEP = (IN_FLIGHT, WAITING)

_RUN_COLUMNS = ", ".join(RUN_COLUMNS)
_UPDATE = " ON CONFLICT (id) DO UPDATE SET " + ", ".join(
    f"{c}=excluded.{c}" for c in RUN_COLUMNS if c not in ("id", "started_at", "inputs")
)
_RUN_VALUES = "(" + ",".join("?" * len(RUN_COLUMNS)) + ")"
_STEP_VALUES = "(" + ",".join("?" * len(STEP_COLUMNS)) + ")"
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


def prune_statements(keep: Keep) -> list[tuple[str, tuple[Any, ...]]]:
    """The deletes ``keep`` asks for. Open runs and waiting conversations always stay."""
    held = ",".join("?" * len(KEEP))
    found: list[tuple[str, tuple[Any, ...]]] = []
    cutoff = keep.cutoff()
    if cutoff is not None:
        found.append((
            f"DELETE FROM runs WHERE rowid IN (SELECT rowid FROM runs WHERE status NOT IN"
            f" ({held}) AND started_at < ? LIMIT ?)",
            (*KEEP, cutoff, PRUNE_BATCH),
        ))  # fmt: skip
        found.append((
            "DELETE FROM conversations WHERE rowid IN (SELECT rowid FROM conversations"
            " WHERE status != 'waiting' AND updated_at < ? LIMIT ?)",
            (cutoff, PRUNE_BATCH),
        ))  # fmt: skip
    if keep.runs is not None:
        found.append((
            f"DELETE FROM runs WHERE status NOT IN ({held}) AND rowid IN"
            " (SELECT rowid FROM runs ORDER BY started_at DESC LIMIT -1 OFFSET ?)",
            (*KEEP, keep.runs),
        ))  # fmt: skip
        found.append((
            "DELETE FROM conversations WHERE status != 'waiting' AND rowid IN"
            " (SELECT rowid FROM conversations ORDER BY updated_at DESC LIMIT -1 OFFSET ?)",
            (keep.runs,),
        ))  # fmt: skip
    return found


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


def statements(script: str) -> list[str]:
    """``script`` one statement at a time: ``executescript`` would commit the transaction."""
    found, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            found.append(pending.strip())
            pending = ""
    return found


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the file to ``VERSION`` in one transaction, whoever else opens it meanwhile.

    ``BEGIN IMMEDIATE`` takes the write lock before the version is read, so that of two
    processes starting together one migrates and the other finds the work done.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = _tables(conn)
        if found == 0 and {"runs", "steps"} <= tables:  # by a csflow that set no version yet
            found = 1
        elif found == 0 and tables:  # never add csflow's tables to another's database
            raise StoreError(f"{path} is not a csflow run store: it has no runs and steps tables")
        if found > VERSION:
            raise StoreError(
                f"{path} was written by a newer csflow (schema version {found}; this one"
                f" knows up to {VERSION})"
            )
        for version in range(found + 1, VERSION + 1):
            for statement in statements(MIGRATIONS[version]):
                conn.execute(statement)
        if found != VERSION:
            conn.execute(f"PRAGMA user_version = {VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {row[0] for row in rows} - {"sqlite_sequence"}
