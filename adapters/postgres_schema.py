"""The PostgreSQL run store's tables, their versioned migrations, and its statements.

Migrations run when a store opens, in one transaction under ``pg_advisory_xact_lock``: of
several servers starting at once, one migrates and the others, waiting on the lock, find
``schema_version`` up to date. Columns are those of the SQLite file (``engine.store.codec``),
times as ISO texts (they sort, and compare with ``list_runs``' ``since``/``until``, as there),
JSON as text: ``jsonb`` would refuse the escaped lone surrogates ``storable`` leaves in a
customer's text. The inbox alone uses the server's clock (``clock_timestamp()``), which every
csflow server sharing the database shares.
"""

from __future__ import annotations

from typing import Any

from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT
from csflow.engine.store.codec import (
    CONVERSATION_COLUMNS,
    RUN_COLUMNS,
    STEP_COLUMNS,
    TURN_COLUMNS,
)
from csflow.engine.store.conversations import WAITING
from csflow.engine.store.retention import PRUNE_BATCH, Keep

# pg_advisory_xact_lock's keys: two int4s. (LOCK_SPACE, MIGRATING) for the migrations, and
# (INBOX_SPACE, hashtext(conversation_id)) for one conversation's tickets, one at a time.
LOCK_SPACE = 0x6373666C  # "csfl"
MIGRATING = 1
INBOX_SPACE = LOCK_SPACE + 1

MIGRATIONS: dict[int, str] = {
    1: """
CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    n               BIGINT GENERATED ALWAYS AS IDENTITY,  -- the order runs were first written
    flow            TEXT NOT NULL,
    status          TEXT NOT NULL,
    started_at      TEXT NOT NULL,
    duration_ms     DOUBLE PRECISION,
    inputs          TEXT NOT NULL,
    outputs         TEXT NOT NULL,
    reply           TEXT,
    error           TEXT,
    error_kind      TEXT,
    error_step      TEXT,
    conversation_id TEXT,
    turn            INTEGER,
    dry_run         BOOLEAN NOT NULL DEFAULT false
);
CREATE INDEX runs_by_time ON runs (started_at);
CREATE INDEX runs_by_flow ON runs (flow, started_at);
CREATE INDEX runs_by_status ON runs (status, started_at);
CREATE INDEX runs_by_conversation ON runs (conversation_id, turn);
CREATE TABLE steps (
    run_id      TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    step_id     TEXT,
    verb        TEXT NOT NULL,
    action      TEXT,
    flow        TEXT,
    line        INTEGER,
    ok          BOOLEAN NOT NULL,
    state       TEXT,
    status      INTEGER,
    duration_ms DOUBLE PRECISION,
    attempts    INTEGER,
    outcome     TEXT,
    error       TEXT,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE conversations (
    id          TEXT PRIMARY KEY,
    n           BIGINT GENERATED ALWAYS AS IDENTITY,
    status      TEXT NOT NULL,
    flow        TEXT,
    intent      TEXT,
    state       TEXT,
    expires_at  TEXT,
    handoff     TEXT,
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
);
CREATE TABLE inbox (
    ticket          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    lapses_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX inbox_by_conversation ON inbox (conversation_id, ticket);
""",
}
VERSION = max(MIGRATIONS)
KEEP = [IN_FLIGHT, WAITING]


async def migrate(conn: Any, name: str) -> None:
    """Bring the database to ``VERSION`` (``conn``: an autocommit ``AsyncConnection``)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, MIGRATING))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
        found = row[0] or 0
        if found == 0:
            taken = await (await conn.execute("SELECT to_regclass('runs')")).fetchone()
            if taken[0] is not None:  # never add csflow's tables to another's database
                raise StoreError(
                    f"{name} is not a csflow run store: it has a runs table of its own"
                )
        if found > VERSION:
            raise StoreError(
                f"{name} was written by a newer csflow (schema version {found}; this one"
                f" knows up to {VERSION})"
            )
        for version in range(found + 1, VERSION + 1):
            await conn.execute(MIGRATIONS[version])
            await conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))


def no_nul(row: dict[str, Any]) -> dict[str, Any]:
    """PostgreSQL's text takes no NUL character, which SQLite's does: it is kept as ``\\x00``."""
    for key, value in row.items():
        if isinstance(value, str) and "\x00" in value:
            row[key] = value.replace("\x00", "\\x00")
    return row


def _placeholders(columns: tuple[str, ...]) -> str:
    return ", ".join(f"%({c})s" for c in columns)


def _updates(columns: tuple[str, ...], kept: tuple[str, ...]) -> str:
    return ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in kept)


UPSERT_RUN = (
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES ({_placeholders(RUN_COLUMNS)})"
    f" ON CONFLICT (id) DO UPDATE SET {_updates(RUN_COLUMNS, ('id', 'started_at', 'inputs'))}"
)
DELETE_STEPS = "DELETE FROM steps WHERE run_id = ANY(%s)"
INSERT_STEP = (
    f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES ({_placeholders(STEP_COLUMNS)})"
)
UPSERT_CONVERSATION = (
    f"INSERT INTO conversations ({', '.join(CONVERSATION_COLUMNS)})"
    f" VALUES ({_placeholders(CONVERSATION_COLUMNS)})"
    f" ON CONFLICT (id) DO UPDATE SET {_updates(CONVERSATION_COLUMNS, ('id',))}"
)
UPSERT_TURN = (
    f"INSERT INTO turns ({', '.join(TURN_COLUMNS)}) VALUES ({_placeholders(TURN_COLUMNS)})"
    f" ON CONFLICT (conversation_id, seq) DO UPDATE SET"
    f" {_updates(TURN_COLUMNS, ('conversation_id', 'seq'))}"
)


def prune_statements(keep: Keep) -> list[tuple[str, tuple[Any, ...]]]:
    """The deletes ``keep`` asks for. Open runs and waiting conversations always stay."""
    found: list[tuple[str, tuple[Any, ...]]] = []
    cutoff = keep.cutoff()
    if cutoff is not None:
        found.append((
            "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE status <> ALL(%s)"
            " AND started_at < %s LIMIT %s)",
            (KEEP, cutoff, PRUNE_BATCH),
        ))  # fmt: skip
        found.append((
            "DELETE FROM conversations WHERE id IN (SELECT id FROM conversations"
            " WHERE status <> 'waiting' AND updated_at < %s LIMIT %s)",
            (cutoff, PRUNE_BATCH),
        ))  # fmt: skip
    if keep.runs is not None:
        found.append((
            "DELETE FROM runs WHERE status <> ALL(%s) AND id IN"
            " (SELECT id FROM runs ORDER BY started_at DESC, n DESC OFFSET %s)",
            (KEEP, keep.runs),
        ))  # fmt: skip
        found.append((
            "DELETE FROM conversations WHERE status <> 'waiting' AND id IN"
            " (SELECT id FROM conversations ORDER BY updated_at DESC, n DESC OFFSET %s)",
            (keep.runs,),
        ))  # fmt: skip
    return found


SWEEP_INBOX = "DELETE FROM inbox WHERE lapses_at < clock_timestamp() - interval '1 hour'"

# The inbox (engine.store.inbox): a ticket is live while lapses_at is ahead of the server's
# clock; it enters when no live ticket of its conversation is before it.
# A ticket need not survive a crash of the server: a ticket lost then only fails its turn's
# save, a removal lost only lets the ticket lapse. So their commits do not wait for the WAL
# to reach the disk (two flushes saved a turn); a turn's save does wait.
NOT_DURABLE = "SET LOCAL synchronous_commit TO OFF"
ENTER_LOCK = "SELECT pg_advisory_xact_lock(%s, hashtext(%s))"
DROP_LAPSED = "DELETE FROM inbox WHERE conversation_id = %s AND lapses_at <= clock_timestamp()"
QUEUE = (
    "INSERT INTO inbox (conversation_id, lapses_at)"
    " VALUES (%s, clock_timestamp() + make_interval(secs => %s)) RETURNING ticket"
)
CLAIM = (
    "UPDATE inbox SET lapses_at = clock_timestamp() + make_interval(secs => %(hold)s)"
    " WHERE ticket = %(ticket)s AND lapses_at > clock_timestamp() AND NOT EXISTS"
    " (SELECT 1 FROM inbox o WHERE o.conversation_id = %(id)s AND o.ticket < %(ticket)s"
    " AND o.lapses_at > clock_timestamp())"
)
LIVE = "SELECT 1 FROM inbox WHERE ticket = %s AND lapses_at > clock_timestamp()"
LEAVE = "DELETE FROM inbox WHERE ticket = %s"
