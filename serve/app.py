"""The ASGI app that ``csflow serve`` runs: the channels of channels.yaml, /healthz, /openapi.json.

The app keeps nothing between requests but what it loaded at start (projects, compiled
templates, key digests), so uvicorn can run several workers, each importing
``csflow.serve.app:create_app_from_env`` (a factory) on its own.

It is a plain ASGI callable, not a framework's: a request is one dictionary look-up away from
its endpoint, and a path that is not a channel's is a 404, never a redirect (a framework's
slash redirect echoes the request's Host and query into a Location: issue 10, item 38).
A mount (the console, ``serve.mount``) is the one exception: it answers every path under its
own, as a Starlette app of its own.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csflow.engine.errors import Problem, ProjectError
from csflow.serve.config import FILE_NAME, Channels, load_channels
from csflow.serve.endpoint import Answer, Endpoint, Inbound, answer
from csflow.serve.logs import REDACTOR, AccessEntry, app_log, emit
from csflow.serve.openapi import document
from csflow.serve.runtime import plain_json

PROJECT_ENV = "CSFLOW_PROJECT"  # where the factory finds the project in each worker
RECORD_ENV = "CSFLOW_SERVE_RECORD"  # workers record runs when it is "1"

Send = Any  # ASGI's send and receive callables: typed by their messages, not their signature
Receive = Any

_HEALTHY = Answer.json({"status": "ok"}, 200, None)
_NOT_FOUND = Answer.json({"error": "not_found", "message": "no channel at this path"}, 404, None)
_INTERNAL_ERROR = Answer.json(
    {"error": "internal_error", "message": "the server could not answer; see its log"},
    500,
    None,
)
_JSON = (b"content-type", b"application/json")


def _not_allowed(methods: tuple[str, ...]) -> Answer:
    allow = ", ".join(methods)
    return Answer.json(
        {"error": "method_not_allowed", "message": f"this path takes {allow}"},
        405,
        "method_not_allowed",
        headers=((b"allow", allow.encode()),),
    )


class _Route:
    """An endpoint, or one of csflow's own answers, with the methods its path takes."""

    __slots__ = ("endpoint", "fixed", "methods", "not_allowed")

    def __init__(
        self, methods: tuple[str, ...], endpoint: Endpoint[Any] | None, fixed: Answer | None
    ) -> None:
        # A GET also answers HEAD (uvicorn sends no body for it), as HTTP asks.
        self.methods = (*methods, "HEAD") if "GET" in methods else methods
        self.endpoint, self.fixed = endpoint, fixed
        self.not_allowed = _not_allowed(self.methods)


class ChannelsApp:
    """The served app: ``channels`` (what was loaded) and the ASGI callable around it."""

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        for secret in channels.secrets:
            REDACTOR.add(secret)
        openapi = Answer(200, plain_json(document(channels)), None)
        self._exact: dict[str, _Route] = {
            "/healthz": _Route(("GET",), None, _HEALTHY),
            "/openapi.json": _Route(("GET",), None, openapi),
        }
        self._patterned: list[_Route] = []  # paths with parameters (the generic API's flows)
        self._mounts = list(channels.mounts.values())
        for mount in self._mounts:
            for warning in mount.warnings:
                emit(app_log, logging.WARNING, warning, channel=mount.name)
        for endpoint in channels.endpoints.values():
            route = _Route(endpoint.methods, endpoint, None)
            if endpoint.match(endpoint.path) is not None:
                self._exact[endpoint.path] = route
            else:
                self._patterned.append(route)

    def _route(self, path: str) -> tuple[_Route, dict[str, str]] | None:
        route = self._exact.get(path)
        if route is not None:
            return route, {}
        for route in self._patterned:
            assert route.endpoint is not None
            params = route.endpoint.match(path)
            if params is not None:
                return route, params
        return None

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        started = time.perf_counter()  # the log's clock; the deadlines use the loop's
        client = scope.get("client")
        entry = AccessEntry(scope["method"], scope["path"], client[0] if client else None)
        status = 0
        try:
            found = self._route(scope["path"])
            mount = (
                None if found else next((m for m in self._mounts if m.owns(scope["path"])), None)
            )
            if mount is not None:
                entry.channel = mount.name

                async def sending(message: dict[str, Any]) -> None:
                    nonlocal status
                    if message["type"] == "http.response.start":
                        status = message["status"]
                    await send(message)

                await mount(scope, receive, sending)
                return
            reply: Answer | None
            if found is None:
                reply = _NOT_FOUND
            elif scope["method"] not in found[0].methods:
                reply = found[0].not_allowed
            elif found[0].fixed is not None:
                reply = found[0].fixed
            else:
                route, params = found
                assert route.endpoint is not None
                request = Inbound(scope, receive, asyncio.get_running_loop().time())
                request.path_params = params
                reply = await answer(route.endpoint, request, entry)
            if reply is not None:
                if entry.outcome is None:
                    entry.outcome = reply.outcome
                if reply.detail is not None:
                    entry.detail = reply.detail[:200]
                entry.orders = reply.orders
                status = reply.status
                await _send(send, reply)
        except Exception as exc:  # a bug of ours: one log line, a plain 500, no traceback
            entry.internal_error = f"{type(exc).__name__}: {exc}"[:300]
            if status == 0:
                status = 500
                await _send(send, _INTERNAL_ERROR)
        finally:
            entry.status = status
            entry.duration_ms = round((time.perf_counter() - started) * 1000, 2)
            entry.write()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                # Graceful shutdown: uvicorn has let the requests in flight finish.
                await self.channels.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send(send: Send, reply: Answer) -> None:
    headers = [_JSON, (b"content-length", str(len(reply.body)).encode()), *reply.headers]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


def create_app(
    project_root: Path | str, environ: Mapping[str, str] | None = None, *, store: Any = None
) -> ChannelsApp:
    """The app for the project at ``project_root``; ProjectError lists every problem.

    >>> app = create_app("flows", {**os.environ, "ZIPCHAT_API_KEY": "..."})
    >>> uvicorn.run(app)
    """
    root = Path(project_root)
    channels, problems = load_channels(root, environ, store=store)
    if not problems and not channels.endpoints:
        problems = [
            Problem(str(root / FILE_NAME), 1, 1, "no channels to serve: write channels.yaml (§9)")
        ]
    if problems:
        raise ProjectError(problems)
    return ChannelsApp(channels)


def create_app_from_env() -> ChannelsApp:
    """The factory uvicorn's workers import: the project comes from ``CSFLOW_PROJECT``."""
    record = os.environ.get(RECORD_ENV) == "1"
    app = create_app(os.environ.get(PROJECT_ENV, "."), os.environ, store=True if record else None)
    settle_heap()
    return app


def settle_heap() -> None:
    """Move what loading made (projects, plans, templates, modules) out of the GC's sight.

    A served process keeps all of it until it exits, yet every full collection walked it
    again: about 90 ms each, some 100 µs per request under load (bench/README.md, "Serve").
    Frozen objects are still freed by reference counting; only cycles among them stay.
    """
    gc.collect()
    gc.freeze()


__all__ = ["ChannelsApp", "create_app", "create_app_from_env", "settle_heap"]
