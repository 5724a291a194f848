"""Serving the channels app with uvicorn: blocking (``csflow serve``) or on a thread (tests).

Shutdown is graceful: on SIGINT or SIGTERM uvicorn stops accepting, lets the requests in
flight finish (up to ``GRACE`` seconds, more than any platform's deadline), then the app's
lifespan closes the merchant connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import logging.config
import os
import signal
import socket
import threading
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn

from csflow.adapters.listen import listen_socket
from csflow.serve import http_limits
from csflow.serve.app import PROJECT_ENV, ChannelsApp, settle_heap
from csflow.serve.http_limits import Limits, guarded_protocol
from csflow.serve.logs import LOG_CONFIG, app_log, emit

TLS = tuple[str, str]  # certificate file, key file
GRACE = 10.0  # seconds: longer than Coffield's 8 s, so no answer in flight is cut off
START_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server, ending with exit status 0 after a graceful shutdown.

    uvicorn re-raises SIGTERM once it has shut down, so the process ends as killed (-15);
    a clean stop of ``csflow serve`` is a success. A second signal still forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def uvicorn_settings(limits: Limits) -> dict[str, Any]:
    """What every csflow server runs with, one worker or many."""
    return {
        "http": guarded_protocol(limits),  # httptools, with bounds on the head (http_limits)
        "loop": "auto",  # uvloop where it is installed
        "access_log": False,  # ours is structured and has no query strings (logs.AccessEntry)
        "lifespan": "on",
        "ws": "none",
        "server_header": False,
        "timeout_graceful_shutdown": int(GRACE),
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.concurrency,
    }


def uvicorn_config(
    app: Any, host: str, port: int, limits: Limits | None = None, **extra: Any
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=extra.pop("log_config", LOG_CONFIG),
        **uvicorn_settings(limits or Limits()),
        **extra,
    )


def bind(host: str, port: int) -> socket.socket:
    """A bound socket, so that port 0's real port is known before uvicorn starts.

    ``ListenError`` (an OSError) says "cannot listen on HOST:PORT: address already in use",
    the same line as ``csflow demo-merchant``'s.
    """
    return listen_socket(host, port)


def url(host: str, port: int, *, tls: bool = False) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def _run_loop(server: uvicorn.Server, main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main)


def serve(
    app: ChannelsApp,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    on_started: Callable[[str], None] | None = None,
    tls: TLS | None = None,
) -> None:
    """Serve in this (main) thread until SIGINT or SIGTERM; ``on_started(url)`` once listening.

    ``tls`` is ``(certfile, keyfile)``: platforms call https endpoints only (Coffield refuses
    http://), so either this or a proxy in front terminates TLS.
    """
    sock = sock or bind(host, port)
    server = _Server(uvicorn_config(app, host, port, **_tls(tls)))
    settle_heap()  # this process serves until it exits: what is loaded now stays
    bound = sock.getsockname()[1]

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            emit(
                app_log,
                logging.INFO,
                "serving",
                url=url(host, bound, tls=tls is not None),
                channels={
                    **{n: e.path for n, e in app.channels.endpoints.items()},
                    **{n: m.path for n, m in app.channels.mounts.items()},
                },
                shared_state=app.channels.shared.where,
                pid=os.getpid(),
            )
            if on_started is not None:
                on_started(url(host, bound, tls=tls is not None))
        await task

    _run_loop(server, main())


def serve_workers(
    project_dir: Path, host: str, port: int, workers: int, tls: TLS | None = None
) -> None:
    """Several worker processes, each loading the project through the app factory."""
    os.environ[PROJECT_ENV] = str(project_dir.resolve())
    logging.config.dictConfig(LOG_CONFIG)
    shown = url(host, port, tls=tls is not None)
    emit(app_log, logging.INFO, "serving", url=shown, workers=workers)
    uvicorn.run(
        "csflow.serve.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=LOG_CONFIG,
        # Workers are spawned: they import the protocol by name.
        **{
            **uvicorn_settings(Limits()),
            "http": f"{http_limits.__name__}:GuardedHttpToolsProtocol",
        },
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )


def _tls(tls: TLS | None) -> dict[str, Any]:
    return {} if tls is None else {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]}


class ChannelServer:
    """The app on uvicorn, on its own thread and loop: ``with ChannelServer(app) as s: s.url``."""

    def __init__(
        self,
        app: ChannelsApp,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        # Tests and the demo keep the process's own logging: no dictConfig from a thread.
        config = uvicorn_config(app, host, port, limits, log_config=None)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return url(self.host, self.port)

    def start(self) -> ChannelServer:
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        started = threading.Event()

        async def main() -> None:
            task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.005)
            started.set()
            await task

        def run() -> None:
            try:
                _run_loop(self._server, main())
            finally:
                started.set()

        self._thread = threading.Thread(target=run, name=f"csflow-serve-{self.port}", daemon=True)
        self._thread.start()
        if not started.wait(START_TIMEOUT) or not self._server.started:
            self.stop()
            sock.close()
            raise RuntimeError(f"the channels server did not start on {self.url}")
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(GRACE + 5)

    def __enter__(self) -> ChannelServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
