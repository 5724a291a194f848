"""The ASGI app that ``csflow serve`` runs: the channels of channels.yaml, /healthz, /openapi.json.

The app keeps nothing between requests but what it loaded at start (projects, compiled
templates, key digests), so uvicorn can run several workers, each importing
``adapters.channels.app:create_app_from_env`` (a factory) on its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from csflow.engine.errors import Problem, ProjectError
from csflow.serve.config import FILE_NAME, Channels, load_channels
from csflow.serve.logs import REDACTOR, AccessLog
from csflow.serve.openapi import document
from csflow.serve.runtime import json_response

PROJECT_ENV = "CSFLOW_PROJECT"  # where the factory finds the project in each worker
RECORD_ENV = "CSFLOW_SERVE_RECORD"  # workers record runs when it is "1"


class ChannelsApp:
    """The served app: ``channels`` (what was loaded) and the ASGI callable around it."""

    def __init__(self, channels: Channels) -> None:
        self.channels = channels
        for secret in channels.secrets:
            REDACTOR.add(secret)
        openapi = json_response(document(channels))

        async def healthz(request: Request) -> Response:
            return json_response({"status": "ok"})

        async def openapi_json(request: Request) -> Response:
            return openapi

        routes: list[BaseRoute] = [
            Route("/healthz", healthz, methods=["GET", "HEAD"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ]
        for endpoint in channels.endpoints.values():
            routes.extend(endpoint.routes())

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            try:
                yield
            finally:  # graceful shutdown: uvicorn has let the requests in flight finish
                await channels.aclose()

        self.starlette = Starlette(
            routes=routes,
            lifespan=lifespan,
            exception_handlers={404: _not_found, 405: _not_allowed},
        )
        self._asgi = AccessLog(self.starlette)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


async def _not_found(request: Request, exc: Exception) -> Response:
    return json_response({"error": "not_found", "message": "no channel at this path"}, 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    allow = exc.headers.get("Allow", "") if isinstance(exc, HTTPException) and exc.headers else ""
    return json_response(
        {"error": "method_not_allowed", "message": f"this path takes {allow or 'another method'}"},
        405,
        headers={"Allow": allow} if allow else None,
    )


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
    return create_app(os.environ.get(PROJECT_ENV, "."), os.environ, store=True if record else None)


__all__ = ["ChannelsApp", "create_app", "create_app_from_env"]
