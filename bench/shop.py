"""The Demo Shop in its own process, pinned to its own core, always stopped at the end."""

from __future__ import annotations

import collections
import ctypes
import os
import re
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path
from time import monotonic
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "demo-shop-token"
START_TIMEOUT = 30.0
_BANNER = re.compile(r"Demo Shop running on (http://\S+)")
_PR_SET_PDEATHSIG = 1


class ShopProcess:
    """``with ShopProcess(core=1) as shop: shop.rest_url``: ``python -m demo --port 0``.

    The child is pinned before it starts Python (so uvicorn's loop and every thread stay on
    ``core``), and asks the kernel for SIGTERM if the bench dies without cleaning up.
    """

    def __init__(self, core: int | None) -> None:
        self.core = core
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""
        self.output: collections.deque[str] = collections.deque(maxlen=50)
        try:
            self._libc: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
        except OSError:  # pragma: no cover - not Linux
            self._libc = None

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/api"

    def cpu_seconds(self) -> float | None:
        """CPU time (user + system) the Demo Shop has used so far, from /proc; None elsewhere."""
        if self.proc is None:
            return None
        try:
            with open(f"/proc/{self.proc.pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _in_child(self) -> None:
        if self.core is not None:
            os.sched_setaffinity(0, {self.core})
        if self._libc is not None and sys.platform.startswith("linux"):
            self._libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def start(self) -> ShopProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "demo", "--host", "127.0.0.1", "--port", "0"],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            preexec_fn=self._in_child,  # runs before exec; we start no threads before this
        )
        try:
            self._wait_for_banner()
        except BaseException:
            self.stop()
            raise
        # Keep reading its output, so that a chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain, name="demo-shop-output", daemon=True).start()
        return self

    def _wait_for_banner(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = monotonic() + START_TIMEOUT
        while monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                if not line and self.proc.poll() is not None:
                    break
                self.output.append(line.rstrip())
                m = _BANNER.search(line)
                if m:
                    self.base_url = m.group(1)
                    return
            elif self.proc.poll() is not None:
                break
        tail = "\n".join(self.output)
        raise RuntimeError(f"the Demo Shop did not start (python -m demo):\n{tail}")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line.rstrip())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def __enter__(self) -> ShopProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
