"""A real ``redis-server`` on a free loopback port, in a temporary folder, persisting nothing.

``RedisServer().start()`` returns once it answers PING; ``stop()`` ends it (SIGTERM, then
SIGKILL), and ``start()`` again brings it back on the same port, as a restarted Redis would.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from support import free_port, wait_until

BINARY = "redis-server"


def available() -> bool:
    return shutil.which(BINARY) is not None


def ping(port: int) -> bool:
    """Whether a Redis answers PING on 127.0.0.1:``port`` (RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="csflow-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self._dir),
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        self._proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self._dir
        )
        proc = self._proc

        def up() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise AssertionError(f"redis-server ended with {proc.returncode}: {err}")
            return ping(self.port)

        wait_until(up, what=f"redis-server to answer on port {self.port}", timeout=20)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
