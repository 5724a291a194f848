"""``SQLiteStore``: the run store in one SQLite file, written by one thread in batches.

The event loop never touches the database. ``finish`` puts the record on a queue and
returns; the writer thread takes whatever has queued up, JSON-encodes and redacts it
(``RunRecord.encoded``) and writes it in one transaction. ``begin`` goes through the same
queue, so records of one run stay in order, and the caller awaits the commit.

WAL mode with ``synchronous=NORMAL``: a commit survives the process crashing (the case the
``in_flight`` record is for), not the machine losing power mid-write. Readers (``csflow
runs``) open their own connection and never wait for the writer. The file keeps the newest
``max_runs`` runs; ``in_flight`` ones are never pruned, since they are the ones to check.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import queue
import sqlite3
import threading
import weakref
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csflow.engine.store import IN_FLIGHT, RunRecord, StoreError

log = logging.getLogger("csflow.store")

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
BATCH = 256
PRUNE_EVERY = 1_000

_RUN_COLUMNS = (
    "id, flow, status, started_at, duration_ms, inputs, outputs, reply, error, error_kind,"
    " error_step"
)
_UPSERT = (
    f"INSERT INTO runs ({_RUN_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (id) DO UPDATE SET status=excluded.status, duration_ms=excluded.duration_ms,"
    " outputs=excluded.outputs, reply=excluded.reply, error=excluded.error,"
    " error_kind=excluded.error_kind, error_step=excluded.error_step"
)
_STEP = "INSERT INTO steps VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


@dataclass(slots=True)
class _Write:
    record: RunRecord
    done: Future[None] | None = None


@dataclass(slots=True)
class _Flush:
    done: threading.Event


class _Close:
    pass


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


class SQLiteStore:
    """The run store in ``path`` (created with its folder unless ``create=False``)."""

    def __init__(self, path: Path, *, create: bool = True, max_runs: int = 100_000) -> None:
        self.path = Path(path)
        self.max_runs = max_runs
        if not create and not self.path.is_file():
            raise StoreError(f"no runs recorded yet: {self.path} does not exist")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = _connect(self.path)
            if create:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript(SCHEMA)
                conn.execute(f"PRAGMA user_version = {VERSION}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the run store {self.path}: {exc}") from None
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        self._queue: queue.SimpleQueue[_Write | _Flush | _Close] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start = threading.Lock()
        self._begun: set[str] = set()  # writer thread only: runs whose steps must be replaced
        self._finished = 0
        self._closed = False
        _OPEN.add(self)

    # -- writing ------------------------------------------------------------------------------

    def _put(self, job: _Write | _Flush | _Close) -> None:
        if self._closed:
            raise StoreError(f"the run store {self.path} is closed")
        if self._thread is None:
            with self._start:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._work, name="csflow-store", daemon=True
                    )
                    self._thread.start()
        self._queue.put(job)

    async def begin(self, record: RunRecord) -> None:
        """Store ``record`` (``in_flight``) and return once it is committed."""
        done: Future[None] = Future()
        self._put(_Write(record, done))
        await asyncio.wrap_future(done)

    def finish(self, record: RunRecord) -> None:
        self._put(_Write(record))

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until what was queued is written; False when ``timeout`` passed first."""
        if self._thread is None or self._closed:
            return True
        done = threading.Event()
        self._queue.put(_Flush(done))
        return done.wait(timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        if self._closed:
            return
        if self._thread is not None:
            self._queue.put(_Close())
            self._thread.join(timeout)
        self._closed = True
        if self._thread is None or not self._thread.is_alive():
            self._conn.close()
        _OPEN.discard(self)

    def _work(self) -> None:
        while True:
            jobs = [self._queue.get()]
            while len(jobs) < BATCH:
                try:
                    jobs.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            writes = [job for job in jobs if isinstance(job, _Write)]
            if writes:
                self._write_batch(writes)
            for job in jobs:
                if isinstance(job, _Flush):
                    job.done.set()
            if any(isinstance(job, _Close) for job in jobs):
                return

    def _write_batch(self, writes: list[_Write]) -> None:
        try:
            self._transaction(writes)
            errors: list[BaseException | None] = [None] * len(writes)
        except Exception:  # one bad record must not lose the others: one at a time
            errors = []
            for write in writes:
                try:
                    self._transaction([write])
                    errors.append(None)
                except Exception as exc:
                    log.error("the run store could not record run %s: %s", write.record.id, exc)
                    errors.append(exc)
        for write, error in zip(writes, errors, strict=True):
            if write.done is None:
                continue
            try:
                if error is None:
                    write.done.set_result(None)
                else:
                    write.done.set_exception(StoreError(f"the run store failed: {error}"))
            except InvalidStateError:
                pass  # the run stopped waiting (its deadline): the record stands anyway
        self._finished += sum(1 for w in writes if w.record.status != IN_FLIGHT)
        if self._finished >= PRUNE_EVERY:
            self._finished = 0
            self._prune()

    def _transaction(self, writes: list[_Write]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        try:
            for write in writes:
                self._write(conn, write.record)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _write(self, conn: sqlite3.Connection, record: RunRecord) -> None:
        e = record.encoded()
        rid = e["id"]
        conn.execute(
            _UPSERT,
            (
                rid,
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
            ),
        )
        if rid in self._begun:
            conn.execute("DELETE FROM steps WHERE run_id = ?", (rid,))
        if record.status == IN_FLIGHT:
            self._begun.add(rid)
        else:
            self._begun.discard(rid)
        conn.executemany(
            _STEP,
            [
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
            ],
        )

    def _prune(self) -> None:
        try:
            self._conn.execute(
                "DELETE FROM runs WHERE status != ? AND rowid IN (SELECT rowid FROM runs"
                " ORDER BY started_at DESC LIMIT -1 OFFSET ?)",
                (IN_FLIGHT, self.max_runs),
            )
        except sqlite3.Error as exc:
            log.warning("the run store could not prune old runs: %s", exc)

    # -- reading ------------------------------------------------------------------------------

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
        try:
            conn = _connect(self.path)
            try:
                conn.row_factory = sqlite3.Row
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the run store {self.path}: {exc}") from None

    def list_runs(
        self, *, flow: str | None = None, failed: bool = False, limit: int = 20
    ) -> list[RunRecord]:
        """The newest runs first, with their summary fields (no steps)."""
        where, args = [], []
        if flow is not None:
            where.append("flow = ?")
            args.append(flow)
        if failed:
            where.append("status = 'failed'")
        sql = f"SELECT * FROM runs {'WHERE ' + ' AND '.join(where) if where else ''}"
        sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
        return [_run(row) for row in self._read(sql, (*args, limit))]

    def last_failures(self) -> dict[str, RunRecord]:
        """Each flow's most recent failed run."""
        rows = self._read(
            "SELECT r.* FROM runs r JOIN (SELECT flow, MAX(started_at) AS at FROM runs"
            " WHERE status = 'failed' GROUP BY flow) f ON r.flow = f.flow"
            " AND r.started_at = f.at AND r.status = 'failed' ORDER BY r.flow",
            (),
        )
        return {row["flow"]: _run(row) for row in rows}

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run with this id, or the one run whose id starts with it (4+ characters)."""
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows and len(run_id) >= 4:
            escaped = run_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = self._read(
                "SELECT * FROM runs WHERE id LIKE ? ESCAPE '\\' LIMIT 2", (escaped + "%",)
            )
            if len(rows) > 1:
                raise StoreError(f"more than one run id starts with '{run_id}'")
        if not rows:
            return None
        record = _run(rows[0])
        steps = self._read("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", (record.id,))
        record.steps = [_step(row) for row in steps]
        return record


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _run(row: sqlite3.Row) -> RunRecord:
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


def _step(row: sqlite3.Row) -> dict[str, Any]:
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


_OPEN: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()


@atexit.register
def _flush_open_stores() -> None:
    """A process that ends without closing its store still writes what it queued."""
    for store in list(_OPEN):
        store.close(timeout=5.0)
