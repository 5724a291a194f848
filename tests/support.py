"""Helpers every test folder shares: waiting for an event, and running ``python -m csflow``.

``tests/`` is on ``sys.path`` (its ``conftest.py`` puts it there), so a test imports these
with ``from support import ...``.

No test sleeps to let something happen: it waits for the thing itself, with a deadline that
is generous (two shared cores are slow) and an error that says what did not happen.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "flows"

T = TypeVar("T")

POLL = 0.01  # how often a condition is asked again: the only pause of the waits below


def wait_until(
    condition: Callable[[], T], *, what: str, timeout: float = 20.0, detail: Callable[[], str] = str
) -> T:
    """``condition()``'s first truthy value, asked until ``timeout`` seconds have passed.

    Raise ``AssertionError("timed out after 20 s waiting for WHAT")`` then, followed by what
    ``detail()`` tells (a log, say). For example::

        pids = wait_until(lambda: started(proc.err), what="the workers to start")
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            message = f"timed out after {timeout:g} s waiting for {what}"
            raise AssertionError(f"{message}\n{detail()}".rstrip())
        time.sleep(POLL)


async def until(condition: Callable[[], T], *, what: str, timeout: float = 20.0) -> T:
    """`wait_until` for a coroutine: the loop runs on between the questions."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(POLL)


async def within(awaitable: Awaitable[T], *, what: str, timeout: float = 20.0) -> T:
    """``await awaitable`` (an ``event.wait()``, say), failing after ``timeout`` seconds."""
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}") from None


def free_port() -> int:
    """A loopback port that nothing listens on now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ the csflow command


def environment(
    env: Mapping[str, str] | None, unset: Iterable[str], columns: int | None
) -> dict[str, str]:
    """This process's environment with ``env`` over it, without ``unset``; rich's width."""
    gone = {*unset, "COLUMNS"}
    merged = {k: v for k, v in os.environ.items() if k not in gone}
    merged.update(env or {})
    if columns is not None:  # None: no COLUMNS at all, so rich's width is 80
        merged["COLUMNS"] = str(columns)
    return merged


def csflow(
    *args: str,
    cwd: Path = ROOT,
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    columns: int | None = 120,
    timeout: float = 60,
    module: str = "csflow",
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m csflow ARGS`` as a user runs it, to the end; its output as text.
    ``stdin`` is what it reads (a pipe, not a terminal); without it, nothing."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment(env, unset, columns),
        timeout=timeout,
    )


class CsflowProcess:
    """A running ``python -m csflow ARGS`` whose output lines two threads collect as they come."""

    def __init__(
        self,
        args: list[str],
        env: Mapping[str, str] | None = None,
        unset: Iterable[str] = (),
        columns: int | None = 200,
        cwd: Path = ROOT,
    ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "csflow", *args],
            cwd=cwd,
            env=environment(env, unset, columns),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
            for pipe, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)

    def _ended(self) -> bool:
        return self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)

    def wait_for(self, pattern: str, stream: str = "err", within: float = 20) -> re.Match[str]:
        """The first match of ``pattern`` in a line of stderr (or ``"out"``) once one comes."""
        lines = self.err if stream == "err" else self.out

        def found() -> re.Match[str] | bool | None:
            for line in list(lines):
                if m := re.search(pattern, line):
                    return m
            if self._ended():  # all its output is read: it can come no more
                raise AssertionError(f"the process ended without {pattern!r}:\n{''.join(lines)}")
            return None

        match = wait_until(
            found, what=f"{pattern!r} on std{stream}", timeout=within, detail=lambda: "".join(lines)
        )
        assert isinstance(match, re.Match)
        return match

    def stop(self, sig: int | None = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``sig`` (None: it was sent already) and wait for the process to end."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=20)
        for reader in self._readers:
            reader.join(5)
        return code, "".join(self.out), "".join(self.err)


@contextmanager
def csflow_running(
    *args: str,
    env: Mapping[str, str] | None = None,
    unset: Iterable[str] = (),
    columns: int | None = 200,
) -> Iterator[CsflowProcess]:
    """``python -m csflow ARGS`` running for the ``with`` block; killed after it if still up."""
    proc = CsflowProcess(list(args), env, unset, columns)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(timeout=10)
