"""Running the Demo Shop: in a background thread for tests, or standalone and blocking."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine
from datetime import datetime
from types import TracebackType
from typing import Any

import uvicorn

from csflow.adapters.listen import ListenError, listen_socket
from csflow.demo.app import create_app
from csflow.demo.state import (
    DEFAULT_ERP_PASSWORD,
    DEFAULT_ERP_USER,
    DEFAULT_GRAPHQL_KEY,
    DEFAULT_TOKEN,
    DemoConfig,
)

DEFAULT_PORT = 8765  # the port written in demo/erp.wsdl's placeholder address
START_TIMEOUT = 10.0


def _config(app: Any, host: str, port: int) -> uvicorn.Config:
    # No websockets, no lifespan, no access log: lean for benchmarks pinned to one core.
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        ws="none",
        lifespan="off",
        timeout_graceful_shutdown=5,
    )


def _run_loop(server: uvicorn.Server, main: Coroutine[Any, Any, None]) -> None:
    # uvicorn's loop factory (uvloop when installed); asyncio.Runner because Python 3.11's
    # asyncio.run() has no loop_factory.
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(main)


class DemoShop:
    """A Demo Shop served by uvicorn on its own thread and event loop.

    `with DemoShop() as shop:` or `async with DemoShop() as shop:` (start and stop then run
    in a worker thread, so an async test's loop is never blocked).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        token: str = DEFAULT_TOKEN,
        erp_user: str = DEFAULT_ERP_USER,
        erp_password: str = DEFAULT_ERP_PASSWORD,
        graphql_key: str = DEFAULT_GRAPHQL_KEY,
        now: datetime | None = None,
    ) -> None:
        self.host = host
        self.config = DemoConfig(token, erp_user, erp_password, graphql_key, now)
        self.app = create_app(self.config)
        self._server = uvicorn.Server(_config(self.app, host, port))
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.port = port

    # -- credentials and URLs ----------------------------------------------------------

    token = property(lambda self: self.config.token)
    erp_user = property(lambda self: self.config.erp_user)
    erp_password = property(lambda self: self.config.erp_password)
    graphql_key = property(lambda self: self.config.graphql_key)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"{self.base_url}/api"

    @property
    def erp_url(self) -> str:
        return f"{self.base_url}/erp"

    @property
    def erp_wsdl_url(self) -> str:
        return f"{self.erp_url}?wsdl"

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    def env(self) -> dict[str, str]:
        """Environment variables for a csflow project's connections.yaml."""
        return {
            "DEMO_SHOP_URL": self.rest_url,
            "DEMO_SHOP_TOKEN": self.token,
            "DEMO_ERP_URL": self.erp_url,
            "DEMO_ERP_WSDL": self.erp_wsdl_url,
            "DEMO_ERP_USER": self.erp_user,
            "DEMO_ERP_PASSWORD": self.erp_password,
            "DEMO_SUBS_URL": self.graphql_url,
            "DEMO_SUBS_KEY": self.graphql_key,
        }

    # -- lifecycle ---------------------------------------------------------------------

    def _run(self, sock: socket.socket, started: threading.Event) -> None:
        async def main() -> None:
            task = asyncio.create_task(self._server.serve(sockets=[sock]))
            while not self._server.started and not task.done():
                await asyncio.sleep(0.005)
            started.set()
            await task

        try:
            _run_loop(self._server, main())
        except BaseException as e:  # reported by start(); the thread just ends
            self._error = e
        finally:
            started.set()

    def start(self) -> DemoShop:
        if self._thread is not None:
            raise RuntimeError("this DemoShop was already started")
        sock = bind_socket(self.host, self.port)  # binding here: port 0 is known at once
        self.port = sock.getsockname()[1]
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(sock, started), name=f"demo-shop-{self.port}", daemon=True
        )
        self._thread.start()
        if not started.wait(START_TIMEOUT) or not self._server.started:
            self.stop()
            sock.close()
            msg = f"the Demo Shop did not start on {self.host}:{self.port}"
            raise RuntimeError(msg) from self._error
        return self

    def stop(self) -> None:
        """Graceful shutdown: stop accepting, let requests finish, join the thread."""
        self._server.should_exit = True
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(START_TIMEOUT)

    def __enter__(self) -> DemoShop:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> DemoShop:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def banner(shop_base: str, config: DemoConfig) -> str:
    return "\n".join(
        [
            f"Demo Shop running on {shop_base}",
            f"  REST      {shop_base}/api          Authorization: Bearer {config.token}",
            f"  SOAP ERP  {shop_base}/erp?wsdl     Basic {config.erp_user}:{config.erp_password}",
            f"  GraphQL   {shop_base}/graphql      X-API-Key: {config.graphql_key}",
            f"  Admin     {shop_base}/_admin/health (outage, delay, reset: POST, bearer token)",
            "  Seeded customers and orders: demo/README.md",
        ]
    )


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound socket for a DemoShop in a thread: a taken port is a RuntimeError here,
    rather than uvicorn's sys.exit() from inside the server's thread."""
    try:
        return listen_socket(host, port)
    except ListenError as e:
        raise RuntimeError(f"the Demo Shop did not start: {e}") from e


def serve(
    host: str = "127.0.0.1", port: int = DEFAULT_PORT, config: DemoConfig | None = None
) -> None:
    """Serve until Ctrl+C / SIGTERM, in the calling (main) thread; ListenError when
    ``host:port`` cannot be listened on."""
    config = config or DemoConfig()
    sock = listen_socket(host, port)  # ListenError: the caller says so, in one line
    server = uvicorn.Server(_config(create_app(config), host, port))
    bound = sock.getsockname()[1]

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.01)
        if server.started:
            shown = f"[{host}]" if ":" in host else host
            print(banner(f"http://{shown}:{bound}", config), flush=True)
        await task

    _run_loop(server, main())


__all__ = ["DEFAULT_PORT", "DemoConfig", "DemoShop", "serve"]
