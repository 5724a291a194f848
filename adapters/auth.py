"""Auth types of a connection, as httpx ``Auth`` objects, so every protocol shares them."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from adapters.secrets import Redactor, read_secret


class UnsupportedAuth(Exception):
    pass


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ApiKeyAuth(httpx.Auth):
    def __init__(self, key: str, header: str | None, query: str | None) -> None:
        self._key, self._header, self._query = key, header, query

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header:
            request.headers[self._header] = self._key
        else:
            assert self._query is not None
            request.url = request.url.copy_merge_params({self._query: self._key})
        yield request


def _text(value: Any, root: Path, redactor: Redactor, environ: Mapping[str, str]) -> str:
    if isinstance(value, str):
        return value
    secret = read_secret(value, root, environ).reveal()
    redactor.add(secret)
    return secret


def build_auth(
    spec: Any, root: Path, redactor: Redactor, environ: Mapping[str, str]
) -> httpx.Auth | None:
    """The httpx auth for a connection's ``auth`` model; every secret is added to ``redactor``."""
    kind = spec.type
    if kind == "none":
        return None
    if kind == "basic":
        return httpx.BasicAuth(
            _text(spec.username, root, redactor, environ),
            _text(spec.password, root, redactor, environ),
        )
    if kind == "bearer":
        return BearerAuth(_text(spec.token, root, redactor, environ))
    if kind == "api_key":
        return ApiKeyAuth(_text(spec.key, root, redactor, environ), spec.header, spec.query)
    raise UnsupportedAuth(f"auth type '{kind}' is not available in this version of csflow")
