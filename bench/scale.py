"""Scale out (issue 12): conversations per second through the conversation channel, one
``csflow serve`` process beside two behind a real load balancer, on SQLite and PostgreSQL.

A conversation is two turns of the shipped project over ``POST /v1/conversations/ID/messages``:
"where is my order?" (the flow asks for the order number: ``waiting``), then "it's ORD-1003"
(resumed: one REST call to the Demo Shop, ``completed``, with the tracking number). Each
client of a closed loop of c clients starts a new conversation when its last one ended.

Rows, measured side by side (interleaved within each round):

- *1 process, direct*: the load generator talks to one ``csflow serve``;
- *1 process, via haproxy*: the same process behind Debian's haproxy (round robin, http mode,
  keep-alive both sides, one thread): what the balancer itself costs;
- *2 processes, via haproxy*: two ``csflow serve`` behind it, each pinned to its own core,
  sharing one store: one SQLite file (two processes on one machine) or one PostgreSQL
  database (as two machines would). A conversation's two turns usually reach different
  processes, so every second turn is resumed from the store by a process that did not ask.

The machine has 2 cores. The serve processes are pinned (``os.sched_setaffinity`` before
``exec``), the first to core 0 and the second to core 1; the load generator (this process,
aiohttp on uvloop), the Demo Shop, haproxy and PostgreSQL are not pinned, and share both
cores with them. So the 2-process rows cannot show a 2x; read the CPU per conversation, which
is what capacity planning needs (docs/scaling.md), and the CPU the others took beside it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, process_time, sleep

import aiohttp
import uvloop

from bench.serve import CSFLOW_SERVE, KEYS, Cell, ServeProcess, _closed_loop, cpu_of, stop
from bench.shop import TOKEN, ShopProcess

LEVELS = (10, 50)
TRACKING = "1Z999AA10123456784"
HEADERS = {"x-api-key": KEYS["CSFLOW_API_KEY"]}
MESSAGES = "/v1/conversations/{}/messages"
ASKED = "What's your order number?"
HAPROXY = "haproxy"

# (key, label, store, serve processes, via haproxy)
ROWS = (
    ("sqlite-1", "1 process, SQLite, direct", "sqlite", 1, False),
    ("sqlite-1lb", "1 process, SQLite, via haproxy", "sqlite", 1, True),
    ("sqlite-2lb", "2 processes, one SQLite file, via haproxy", "sqlite", 2, True),
    ("pg-1", "1 process, PostgreSQL, direct", "postgresql", 1, False),
    ("pg-1lb", "1 process, PostgreSQL, via haproxy", "postgresql", 1, True),
    ("pg-2lb", "2 processes, one PostgreSQL, via haproxy", "postgresql", 2, True),
)


def postgres_cpu(data: Path) -> float:
    """CPU seconds of a PostgreSQL cluster: its postmaster and every child (the backends of
    the pools, the WAL writer, the checkpointer). A backend that ended takes its CPU along;
    the pools keep theirs for the whole run."""
    try:
        postmaster = int((data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    total = cpu_of(postmaster)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError):
                continue
            if parent == postmaster:
                total += cpu_of(int(entry))
    return total


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


HAPROXY_CONFIG = """\
global
    maxconn 4096
    nbthread 1

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s

frontend chat
    bind 127.0.0.1:{port}

    default_backend serve

backend serve
    balance roundrobin
    http-reuse always
{servers}
"""


class Haproxy:
    """Debian's haproxy on a free loopback port in front of ``backends`` (``http://H:P``),
    from a config written to a temporary file; in the foreground (``-db``), stopped at the end."""

    def __init__(self, backends: list[str]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        servers = "\n".join(
            f"    server s{i} {url.removeprefix('http://')}" for i, url in enumerate(backends)
        )
        self.config = HAPROXY_CONFIG.format(port=self.port, servers=servers)
        self.proc: subprocess.Popen[str] | None = None
        self._folder = Path(tempfile.mkdtemp(prefix="csflow-bench-haproxy-"))

    def cpu_seconds(self) -> float:
        return 0.0 if self.proc is None else cpu_of(self.proc.pid)

    def __enter__(self) -> Haproxy:
        path = self._folder / "haproxy.cfg"
        path.write_text(self.config, encoding="utf-8")
        log = self._folder / "haproxy.log"  # a file, not a pipe nobody reads: it never blocks
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [HAPROXY, "-db", "-f", str(path)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = monotonic() + 10
        while monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"haproxy ended: {log.read_text(errors='replace')}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return self
            sleep(0.02)  # the bench waits for a port, not for something to happen in a test
        self.__exit__()
        raise RuntimeError("haproxy did not listen within 10 s")

    def __exit__(self, *exc: object) -> None:
        stop(self.proc, 10)
        shutil.rmtree(self._folder, ignore_errors=True)


_CONVERSATIONS = itertools.count()


def talk_to(
    url: str, concurrency: int, warmup: float, duration: float, cpu: Callable[[], float]
) -> Cell:
    """A closed loop of two-turn conversations against ``url``; every answer is checked."""

    async def main() -> Cell:
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(url, connector=connector, headers=HEADERS) as session:

            async def turn(cid: str, text: str, status: str, expect: str) -> float:
                t0 = monotonic()
                async with session.post(MESSAGES.format(cid), json={"text": text}) as r:
                    body = await r.json(content_type=None)
                took = monotonic() - t0
                reply = body.get("reply") or ""
                if r.status != 200 or body.get("status") != status or expect not in reply:
                    raise RuntimeError(f"{r.status} {str(body)[:160]}")
                return took

            async def talk() -> list[float]:
                cid = f"bench-{os.getpid()}-{next(_CONVERSATIONS)}"  # new in every cell
                return [
                    await turn(cid, "where is my order?", "waiting", ASKED),
                    await turn(cid, "it's ORD-1003", "completed", TRACKING),
                ]

            await talk()  # checked once before anything is timed
            return await _closed_loop(talk, concurrency, warmup, duration, cpu)

    return uvloop.run(main())


@dataclass
class Figures:
    """One cell: the loop's figures, and the CPU (µs) or counts per conversation of the
    other parts, keyed by source."""

    cell: Cell
    per_conversation: dict[str, float]
    processes: int


@dataclass
class Target:
    url: str
    serves: list[ServeProcess]
    balancer: Haproxy | None
    counters: dict[str, Callable[[], float]]


class PostgresCounters:
    """The cluster's CPU, and the database's write transactions and WAL bytes so far: read
    at once (no statistics collector's delay), by a session of the bench's own."""

    def __init__(self, url: str, data: Path) -> None:
        import psycopg

        self.data = data
        self.conn = psycopg.connect(url, autocommit=True)

    def _read(self) -> tuple[float, float]:
        row = self.conn.execute(
            "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"
        ).fetchone()
        assert row is not None
        return float(row[0]), float(row[1])

    def sources(self) -> dict[str, Callable[[], float]]:
        return {
            "postgres": lambda: postgres_cpu(self.data),
            # The next transaction id: ids are given to transactions that write, each one.
            "xacts": lambda: self._read()[0],
            "wal": lambda: self._read()[1],
        }

    def on_disk(self) -> dict[str, tuple[int, int]]:
        """Each table's rows and bytes (with its indexes and TOAST)."""
        sizes = {}
        for table in ("runs", "steps", "conversations", "turns", "inbox"):
            row = self.conn.execute(
                f"SELECT count(*), pg_total_relation_size('{table}') FROM {table}"  # the five names above
            ).fetchone()
            assert row is not None
            sizes[table] = (int(row[0]), int(row[1]))
        return sizes

    def close(self) -> None:
        self.conn.close()


def _sampler(
    sources: dict[str, Callable[[], float]], marks: list[dict[str, float]]
) -> Callable[[], float]:
    """The ``cpu`` of ``_closed_loop``: the serve processes' CPU, and every other source
    sampled at the same two moments."""

    def cpu() -> float:
        sample = {name: read() for name, read in sources.items()}
        marks.append(sample)
        return sample["serve"]

    return cpu


def _targets(
    stack: contextlib.ExitStack,
    location: str,
    env: dict[str, str],
    cores: tuple[int | None, int | None],
    base: dict[str, Callable[[], float]],
) -> dict[int, Target]:
    """Two serve processes on the store at ``location``, and a haproxy in front of the first
    alone and of both: the targets by processes behind haproxy (0: the first one, direct)."""
    served = {**env, "CSFLOW_STORE": location}
    a = stack.enter_context(ServeProcess(cores[0], served, CSFLOW_SERVE))
    b = stack.enter_context(ServeProcess(cores[1], served, CSFLOW_SERVE))
    one = stack.enter_context(Haproxy([a.url]))
    two = stack.enter_context(Haproxy([a.url, b.url]))

    def serve_cpu(procs: list[ServeProcess]) -> Callable[[], float]:
        return lambda: sum(p.cpu_seconds() for p in procs)

    return {
        0: Target(a.url, [a], None, {**base, "serve": serve_cpu([a])}),
        1: Target(one.url, [a], one, {**base, "serve": serve_cpu([a]), "haproxy": one.cpu_seconds}),
        2: Target(
            two.url, [a, b], two, {**base, "serve": serve_cpu([a, b]), "haproxy": two.cpu_seconds}
        ),
    }


@dataclass
class Stored:
    """What PostgreSQL holds after the run: each table's (rows, bytes), and its CPU in all."""

    tables: dict[str, tuple[int, int]]
    cpu_seconds: float

    @property
    def conversations(self) -> int:
        return self.tables["conversations"][0]


def run(
    quick: bool, cores: tuple[int | None, int | None]
) -> tuple[dict[tuple[str, int], Figures], Stored | None]:
    """Every row at every level, and what PostgreSQL holds after them (None without it)."""
    from bench.store import postgres

    warmup, duration, rounds = (0.3, 1.0, 1) if quick else (0.5, 2.0, 3)
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, allowed)  # the load generator shares every core (see the docstring)
    figures: dict[tuple[str, int], Figures] = {}
    stored = None
    with (
        tempfile.TemporaryDirectory(prefix="csflow-bench-scale-") as scratch,
        ShopProcess(None) as shop,
        postgres() as pg,
        contextlib.ExitStack() as stack,
    ):
        env = {**os.environ, **KEYS, "DEMO_SHOP_URL": shop.rest_url, "DEMO_SHOP_TOKEN": TOKEN}
        base: dict[str, Callable[[], float]] = {
            "load": process_time,
            "shop": lambda: shop.cpu_seconds() or 0.0,
        }
        targets: dict[str, Target] = {}
        counters = None
        locations = {"sqlite": str(Path(scratch) / "shared.sqlite3")}
        if pg is not None:
            locations["postgresql"] = pg.create_database("scale")
            counters = PostgresCounters(locations["postgresql"], pg.data)
            pg_started = postgres_cpu(pg.data)
        for store, location in locations.items():
            extra = counters.sources() if store == "postgresql" and counters else {}
            by_count = _targets(stack, location, env, cores, {**base, **extra})
            for key, _, row_store, processes, balanced in ROWS:
                if row_store == store:
                    targets[key] = by_count[processes if balanced else 0]
        for _ in range(rounds):
            for c in LEVELS:
                for key, _, _, processes, _ in ROWS:
                    target = targets.get(key)
                    if target is None:
                        continue
                    marks: list[dict[str, float]] = []
                    cpu = _sampler(target.counters, marks)
                    cell = talk_to(target.url, c, warmup, duration, cpu)
                    n = max(cell.rate * duration, 1)
                    per = {k: (marks[1][k] - marks[0][k]) / n for k in marks[0]}
                    best = figures.get((key, c))
                    if best is None or cell.rate > best.cell.rate:  # noise only slows down
                        figures[(key, c)] = Figures(cell, per, processes)
        if counters is not None:
            stored = Stored(counters.on_disk(), postgres_cpu(counters.data) - pg_started)
            counters.close()
    return figures, stored


def report(
    figures: dict[tuple[str, int], Figures],
    stored: Stored | None,
    quick: bool,
    cores: tuple[int | None, int | None],
) -> list[str]:
    rounds = "1 round of 1 s" if quick else "best of 3 rounds of 2 s"
    cpus = os.cpu_count() or 1
    pinned = (
        f"serve processes pinned, the first to core {cores[0]}, the second to core {cores[1]}"
        if cores[0] is not None
        else "NOT pinned (needs Linux and 2 cores)"
    )
    lines = [
        f"7. Scale out: two-turn conversations (message -> ask, answer -> completed) through the "
        f"conversation channel of the shipped project; {rounds} per cell",
        f"   {cpus} cores: {pinned}; the load generator (aiohttp, this process), the Demo Shop, "
        "haproxy and PostgreSQL are not pinned and share the cores with them",
        "   closed loop of c clients; conversations/s (one turn's p50/p99 ms) | CPU of the serve "
        "process(es) per conversation, µs",
        "   " + " " * 44 + "".join(f"{f'c={c}':>32}" for c in LEVELS),
    ]
    for key, label, _, _, _ in ROWS:
        row = ""
        for c in LEVELS:
            f = figures.get((key, c))
            if f is None:
                row += f"{'(not measured)':>32}"
                continue
            text = f"{f.cell.rate:5.0f} ({f.cell.turn_ms(0.5):.1f}/{f.cell.turn_ms(0.99):.1f}) | {f.cell.cpu_us:5.0f}"
            row += f"{text:>32}"
        lines.append(f"   {label:<44}{row}")

    def ratio(top: str, bottom: str, c: int) -> str:
        a, b = figures.get((top, c)), figures.get((bottom, c))
        return "-" if a is None or b is None else f"{a.cell.rate / b.cell.rate:.2f}"

    for c in LEVELS:
        lines.append(
            f"   c={c}: 2 processes / 1 process, both via haproxy: SQLite {ratio('sqlite-2lb', 'sqlite-1lb', c)}, "
            f"PostgreSQL {ratio('pg-2lb', 'pg-1lb', c)}; via haproxy / direct: SQLite "
            f"{ratio('sqlite-1lb', 'sqlite-1', c)}, PostgreSQL {ratio('pg-1lb', 'pg-1', c)}; "
            f"PostgreSQL / SQLite, 1 process direct {ratio('pg-1', 'sqlite-1', c)}, 2 processes {ratio('pg-2lb', 'sqlite-2lb', c)}"
        )
    lines.append(
        "   CPU per conversation beside the serve processes, µs: load generator | Demo Shop | haproxy | PostgreSQL"
    )
    for c in LEVELS:
        for key, label, _, _, _ in ROWS:
            f = figures.get((key, c))
            if f is None:
                continue
            p = f.per_conversation

            def us(name: str, p: dict[str, float] = p) -> str:
                return f"{p[name] * 1e6:5.0f}" if name in p else "    -"

            lines.append(
                f"     c={c:<3} {label:<44}{us('load')} | {us('shop')} | {us('haproxy')} | {us('postgres')}"
            )
    pg_rows = [(key, c) for key, *_ in ROWS if key.startswith("pg") for c in LEVELS]
    measured = [
        figures[k] for k in pg_rows if k in figures and "xacts" in figures[k].per_conversation
    ]
    if measured:
        xacts = [f.per_conversation["xacts"] / 2 for f in measured]
        wal = [f.per_conversation["wal"] / 2 for f in measured]
        lines.append(
            f"   PostgreSQL per turn: {min(xacts):.1f}-{max(xacts):.1f} write transactions, "
            f"{min(wal) / 1024:.1f}-{max(wal) / 1024:.1f} KiB of WAL (fsync on; over every PostgreSQL cell)"
        )
    if stored is not None and stored.conversations:
        sizes = stored.tables
        kept = {t: v for t, v in sizes.items() if t != "inbox"}
        total = sum(size for _, size in kept.values())
        parts = ", ".join(
            f"{table} {rows} rows {size / max(rows, 1):.0f} B/row"
            for table, (rows, size) in kept.items()
        )
        lines.append(
            f"   PostgreSQL on disk after the run: {stored.conversations} conversations, "
            f"{total / stored.conversations:.0f} bytes "
            f"per conversation of 2 turns (tables with their indexes): {parts}; the inbox "
            f"(tickets, deleted as turns end) {sizes['inbox'][1] // 1024} KiB until vacuumed"
        )
        lines.append(
            f"   PostgreSQL's server used {stored.cpu_seconds:.0f} CPU-seconds in all: not a child "
            "of the bench, so the footer counts it among the other processes"
        )
    for (key, c), f in figures.items():
        if f.cell.errors:
            lines.append(f"   errors: {key} at c={c}: {f.cell.errors}, first: {f.cell.error[:160]}")
    return lines


__all__ = ["Haproxy", "report", "run"]
