"""``RedisState``: the shared state in Redis (``CSFLOW_REDIS=redis://...``), for every process.

- a claim is ``SET key 1 NX PX ttl``: the first process to set it wins;
- a rate limit is one Lua script (``GCRA``) on Redis's own clock, so that servers whose
  clocks differ still agree, and it books the slot it grants;
- a value is ``GET``/``SET PX``; a lock is redis-py's ``Lock`` (``SET NX PX`` with a random
  token, released by a script only by its owner), never blocking: callers poll.

Every operation has ``OP_TIMEOUT`` (connect included) and redis-py's retries are limited to
one immediate retry, so that a pooled connection that broke when Redis restarted is
replaced at once. Any failure is ``StateUnavailable``. After one, the next operations do not
try Redis again for ``PAUSE`` seconds (a Redis that hangs would cost every call its timeout),
then one does: serving comes back by itself. Going down and coming back are logged once
each (``csflow.shared``), never per call, and never with the URL's password.

Clients belong to an event loop (asyncio sockets do), so there is one per loop, closed when
the loop ends, as the connections' httpx clients are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import LockError, RedisError

from csflow.adapters.shared.port import Held, Rate, Reservation, StateUnavailable

OP_TIMEOUT = 0.5  # seconds for one operation: Redis answers in well under a millisecond
PAUSE = 0.5  # seconds without trying Redis after it failed
PREFIX = "csflow:"

log = logging.getLogger("csflow.shared")
T = TypeVar("T")

# GCRA with a booking (local.gcra in Python), in microseconds on Redis's clock.
# KEYS[1]: the limit's key. ARGV: interval, period, within (µs). Returns the wait in µs when
# the slot is booked, or -1 - wait when it would come too late (nothing booked).
GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, period, within = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local wait = new_tat - period - now
if wait < 0 then wait = 0 end
if wait > within then return -1 - wait end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
           math.floor((new_tat - now) / 1000) + 1)
return wait
"""


def shown(url: str) -> str:
    """The URL without its user and password: what a log line may say."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class _Held:
    __slots__ = ("_lock", "_state")

    def __init__(self, state: RedisState, lock: Lock) -> None:
        self._state, self._lock = state, lock

    async def release(self) -> None:
        async def release(_: aioredis.Redis) -> None:
            # LockError: it expired (and maybe was taken since), nothing of ours to release.
            with contextlib.suppress(LockError):
                await self._lock.release()

        with contextlib.suppress(StateUnavailable):  # the lock runs out by itself
            await self._state._run("unlock", release)


class _Client:
    """One loop's Redis client and the scripts registered on it."""

    __slots__ = ("gcra", "redis")

    def __init__(self, url: str) -> None:
        self.redis = aioredis.Redis.from_url(
            url,
            socket_timeout=OP_TIMEOUT,
            socket_connect_timeout=OP_TIMEOUT,
            retry=Retry(NoBackoff(), 1),
            health_check_interval=0,
        )
        self.gcra: AsyncScript = self.redis.register_script(GCRA)


class RedisState:
    """The shared state of every process that has the same ``CSFLOW_REDIS``."""

    def __init__(self, url: str, prefix: str = PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Client] = (
            weakref.WeakKeyDictionary()
        )
        # The loop holds its async generators only weakly: the closers are held here.
        self._closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._mutex = threading.Lock()
        self._down: str | None = None  # why it last failed, while it is down
        self._retry_at = 0.0

    @property
    def where(self) -> str:
        return shown(self.url)

    # -- the port -------------------------------------------------------------------------

    async def claim(self, key: str, ttl: float) -> bool:
        async def claim(r: aioredis.Redis) -> bool:
            return bool(await r.set(self.prefix + key, b"1", nx=True, px=_ms(ttl)))

        return await self._run("claim", claim)

    async def reserve(self, key: str, rate: Rate, within: float) -> Reservation:
        micro = [round(rate.interval * 1e6), round(rate.per * 1e6), round(within * 1e6)]
        client = self._client()

        async def reserve(r: aioredis.Redis) -> int:
            return int(await client.gcra(keys=[self.prefix + key], args=micro, client=r))

        answer = await self._run("rate limit", reserve)
        if answer < 0:
            return Reservation(False, (-1 - answer) / 1e6)
        return Reservation(True, answer / 1e6)

    async def get(self, key: str) -> bytes | None:
        async def get(r: aioredis.Redis) -> bytes | None:
            value = await r.get(self.prefix + key)
            return value if isinstance(value, bytes) else None

        return await self._run("get", get)

    async def put(self, key: str, value: bytes, ttl: float | None) -> None:
        async def put(r: aioredis.Redis) -> None:
            await r.set(self.prefix + key, value, px=None if ttl is None else _ms(ttl))

        await self._run("put", put)

    async def try_lock(self, key: str, ttl: float) -> Held | None:
        async def lock(r: aioredis.Redis) -> Held | None:
            held = Lock(r, self.prefix + key, timeout=ttl, blocking=False, thread_local=False)
            return _Held(self, held) if await held.acquire() else None

        return await self._run("lock", lock)

    async def aclose(self) -> None:
        clients = list(self._clients.items())
        self._clients.clear()
        self._closers.clear()
        loop = asyncio.get_running_loop()
        for owner, client in clients:
            if owner is loop:
                await client.redis.aclose()

    # -- one operation ----------------------------------------------------------------------

    async def _run(self, what: str, op: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        if self._down is not None and time.monotonic() < self._retry_at:
            raise StateUnavailable(f"Redis at {self.where} is unavailable: {self._down}")
        try:
            async with asyncio.timeout(OP_TIMEOUT):
                result = await op(self._client().redis)
        except TimeoutError:
            raise self._failed(what, f"no answer within {OP_TIMEOUT:g}s") from None
        except (RedisError, OSError) as exc:
            raise self._failed(what, _reason(exc)) from None
        if self._down is not None:
            self._back()
        return result

    def _failed(self, what: str, reason: str) -> StateUnavailable:
        with self._mutex:
            first = self._down is None
            self._down = reason
            self._retry_at = time.monotonic() + PAUSE
        if first:
            log.warning(
                "shared state unavailable: Redis at %s (%s: %s); OAuth tokens and rate limits"
                " fall back to this process, Coffield requests are refused until it answers",
                self.where, what, reason,
            )  # fmt: skip
        return StateUnavailable(f"Redis at {self.where} is unavailable: {reason}")

    def _back(self) -> None:
        with self._mutex:
            was, self._down = self._down, None
        if was is not None:
            log.warning("shared state is back: Redis at %s answers again", self.where)

    def _client(self) -> _Client:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = _Client(self.url)
            self._close_at_loop_end(loop, client)
        return client

    def _close_at_loop_end(self, loop: asyncio.AbstractEventLoop, client: _Client) -> None:
        # asyncio.run closes live async generators before the loop (shutdown_asyncgens): a
        # run_sync's loop closes its client without anyone calling aclose.
        async def closer() -> AsyncGenerator[None, None]:
            try:
                yield
            finally:
                if self._clients.get(loop) is client:
                    del self._clients[loop]
                await client.redis.aclose()

        watcher = closer()
        self._closers[loop] = (watcher, asyncio.ensure_future(watcher.asend(None)))


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
