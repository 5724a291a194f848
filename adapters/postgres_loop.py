"""The PostgreSQL store's own event loop, in a thread of its own, and how its URL is shown.

psycopg's async pool belongs to one event loop, while a store serves every loop of the process
(``Project.run_sync`` makes one per call, a test makes one per test) and callers with none (the
CLI's readers). So the pool, the writer and every statement live on this loop, and callers
hand it coroutines: ``submit`` from any thread, ``call`` to wait for the answer from one.

A store's name in any message is its URL without the password: ``describe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from csflow.engine.errors import StoreError

T = TypeVar("T")


class StoreLoop:
    """An event loop running in a daemon thread until ``stop``."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float | None) -> T:
        """Run ``coroutine`` on the loop and wait for it; TimeoutError (it is cancelled then)."""
        future = self.submit(coroutine)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def stop(self, timeout: float = 5.0) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()


class KeyedLocks:
    """One asyncio.Lock per key, kept while someone holds or waits for it (FIFO, as asyncio's)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def _parts(url: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(url)
    except Exception:  # psycopg.ProgrammingError, with the URL in its message: not repeated
        raise StoreError("the run store's PostgreSQL URL does not parse") from None


def describe(url: str) -> str:
    """``url`` as messages show it: ``postgresql://user@host:port/db``, never the password."""
    p = _parts(url)
    user = f"{p['user']}@" if p.get("user") else ""
    port = f":{p['port']}" if p.get("port") else ""
    return f"postgresql://{user}{p.get('host', 'localhost')}{port}/{p.get('dbname', '')}"


def password(url: str) -> str | None:
    return _parts(url).get("password") or None


def conninfo(url: str, timeout: float) -> str:
    """``url`` with the store's bounds: connecting, every statement and every lock wait give up
    after ``timeout``, and keepalives find a peer that vanished (a cut cable, not a refusal)."""
    p = _parts(url)
    bound = int(timeout * 1000)
    p.setdefault("connect_timeout", max(2, math.ceil(timeout)))  # libpq's least is 2 s
    p.setdefault("application_name", "csflow")
    p.setdefault("keepalives_idle", 10)
    p.setdefault("keepalives_interval", 5)
    p.setdefault("keepalives_count", 3)
    extra = f"-c statement_timeout={bound} -c lock_timeout={bound}"
    p["options"] = f"{p.get('options', '')} {extra}".strip()
    return make_conninfo(**p)


__all__ = ["KeyedLocks", "StoreLoop", "conninfo", "describe", "password"]
