"""Who waits for a store's commit, and how a writer tells them: one mechanism for every store.

A writer (SQLite's thread, PostgreSQL's loop) commits in groups; each job of a group may have
a waiter on the caller's event loop, or, for a caller with no loop, a thread future. ``settle``
resolves a whole group with one ``call_soon_threadsafe`` per loop, so that a hundred runs
committed together cost their loop one wake-up, not a hundred.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Generator, Sequence
from concurrent.futures import Future as ThreadFuture
from dataclasses import dataclass
from typing import Any

from csflow.engine.store import RunRecord

Outcome = tuple[Any, BaseException | None]  # a value, or the error instead
Waiter = asyncio.Future[Any] | ThreadFuture[Any]


@dataclass(slots=True)
class Job:
    """A job for a writer: who waits for it (a loop's future, a thread future, or nobody)."""

    loop: asyncio.AbstractEventLoop | None
    waiter: Waiter | None


@dataclass(slots=True)
class Write(Job):
    """A run record to commit."""

    record: RunRecord


class ThreadCommit:
    """The awaitable ``finish`` returns when called outside a running loop."""

    __slots__ = ("future",)

    def __init__(self, future: ThreadFuture[None]) -> None:
        self.future = future

    def __await__(self) -> Generator[Any, None, None]:
        return asyncio.wrap_future(self.future).__await__()


def _consume(future: asyncio.Future[Any]) -> None:
    # A run that stopped waiting (cancelled) never reads its future; the failure is logged
    # with the run's id already, so asyncio need not log "exception was never retrieved".
    if not future.cancelled():
        future.exception()


def write_for(record: RunRecord) -> tuple[Write, Awaitable[None]]:
    """The job for ``record`` and what its caller awaits: a future of the running loop, or,
    with no loop running (a synchronous caller), a thread future."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        waiter: ThreadFuture[None] = ThreadFuture()
        return Write(None, waiter, record), ThreadCommit(waiter)
    done: asyncio.Future[None] = loop.create_future()
    done.add_done_callback(_consume)
    return Write(loop, done, record), done


def _settle(outcomes: list[tuple[asyncio.Future[Any], Outcome]]) -> None:
    """On the loop: resolve every waiter of one commit."""
    for future, (value, error) in outcomes:
        if future.done():  # its caller was cancelled, or gave up waiting: the record stands
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def settle(jobs: Sequence[Job], outcomes: Sequence[Outcome]) -> None:
    """From the writer: resolve ``jobs``' waiters with ``outcomes``, one call per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
    for job, (value, error) in zip(jobs, outcomes, strict=True):
        waiter = job.waiter
        if isinstance(waiter, ThreadFuture):
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(value)
            else:
                waiter.set_exception(error)
        elif waiter is not None and job.loop is not None:
            by_loop.setdefault(job.loop, []).append((waiter, (value, error)))
    for loop, settled in by_loop.items():
        # RuntimeError: that loop has closed, nobody is left to wait; the records stand.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, settled)


__all__ = ["Job", "Outcome", "ThreadCommit", "Waiter", "Write", "settle", "write_for"]
