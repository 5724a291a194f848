"""The SQLite store's conversations: the inbox's statements, a turn's save, and the readers.

The writing functions run on the writer thread's connection, inside the transaction it opened
(``SQLiteStore._calls``); ``engine.store.inbox`` says what each one is for. Expiry is read
from ``time.time()``: the processes that share one SQLite file share one machine's clock.
"""

from __future__ import annotations

import sqlite3
import time

from csflow.engine.store.codec import (
    CONVERSATION_COLUMNS,
    TURN_COLUMNS,
    conversation_from,
    conversation_row,
    turn_from,
    turn_row,
    values,
)
from csflow.engine.store.conversations import Conversation, Turn
from csflow.engine.store.inbox import lapsed_turn

_CLAIM = (
    "UPDATE inbox SET lapses_at = :until WHERE ticket = :ticket AND lapses_at > :now"
    " AND NOT EXISTS (SELECT 1 FROM inbox WHERE conversation_id = :id AND ticket < :ticket"
    " AND lapses_at > :now)"
)
_UPSERT_CONVERSATION = (
    f"INSERT INTO conversations ({', '.join(CONVERSATION_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(CONVERSATION_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c}=excluded.{c}" for c in CONVERSATION_COLUMNS if c != "id")
)
# Not INSERT OR REPLACE for the conversation: a replaced row would cascade to its turns.
_PUT_TURN = (
    f"INSERT OR REPLACE INTO turns ({', '.join(TURN_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(TURN_COLUMNS))})"
)


def claim(
    conn: sqlite3.Connection, conversation_id: str, ticket: int, hold: float, now: float
) -> bool:
    found = conn.execute(
        _CLAIM, {"until": now + hold, "ticket": ticket, "now": now, "id": conversation_id}
    )
    return found.rowcount == 1


def enter(
    conn: sqlite3.Connection, conversation_id: str, wait: float, hold: float
) -> tuple[int, bool]:
    now = time.time()
    conn.execute(
        "DELETE FROM inbox WHERE conversation_id = ? AND lapses_at <= ?", (conversation_id, now)
    )
    ticket = conn.execute(
        "INSERT INTO inbox (conversation_id, lapses_at) VALUES (?, ?)",
        (conversation_id, now + wait + hold),
    ).lastrowid
    assert ticket is not None
    return ticket, claim(conn, conversation_id, ticket, hold, now)


def save(
    conn: sqlite3.Connection,
    conversation_id: str,
    ticket: int,
    conversation: Conversation,
    turn: Turn,
) -> None:
    live = conn.execute(
        "SELECT 1 FROM inbox WHERE ticket = ? AND lapses_at > ?", (ticket, time.time())
    ).fetchone()
    if live is None:
        raise lapsed_turn(conversation_id)
    conn.execute(_UPSERT_CONVERSATION, values(conversation_row(conversation), CONVERSATION_COLUMNS))
    conn.execute(_PUT_TURN, values(turn_row(conversation_id, turn), TURN_COLUMNS))


def leave(conn: sqlite3.Connection, ticket: int) -> None:
    conn.execute("DELETE FROM inbox WHERE ticket = ?", (ticket,))


def sweep(conn: sqlite3.Connection) -> None:
    """Tickets that lapsed long ago (their process died): nobody will take them out."""
    conn.execute("DELETE FROM inbox WHERE lapses_at < ?", (time.time() - 3600,))


# -- reading (any connection) ---------------------------------------------------------------


def load(conn: sqlite3.Connection, conversation_id: str) -> Conversation | None:
    row = conn.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
    return None if row is None else conversation_from(row)


def listed(
    conn: sqlite3.Connection, status: str | None, limit: int, offset: int
) -> list[Conversation]:
    where = "" if status is None else " WHERE status = ?"
    args = () if status is None else (status,)
    rows = conn.execute(
        f"SELECT * FROM conversations{where} ORDER BY updated_at DESC, rowid DESC LIMIT ? OFFSET ?",
        (*args, limit, offset),
    ).fetchall()
    return [conversation_from(row) for row in rows]


def transcript(
    conn: sqlite3.Connection, conversation_id: str
) -> tuple[Conversation, list[Turn]] | None:
    found = load(conn, conversation_id)
    if found is None:
        return None
    rows = conn.execute(
        "SELECT * FROM turns WHERE conversation_id = ? ORDER BY seq", (conversation_id,)
    ).fetchall()
    return found, [turn_from(row) for row in rows]


__all__ = ["claim", "enter", "leave", "listed", "load", "save", "sweep", "transcript"]
