"""The httpx client a connection shares across runs, and the URL of one request.

Both exist for the per-call path's sake (bench/experiments/per-call-path.md):

- ``httpx.AsyncClient.build_request`` joins ``base_url``, the path and the query by parsing
  the URL two or three times (about 27 µs for a path, 53 µs with a query, on the bench
  machine). ``RequestUrls`` joins the text first and parses it once (17 and 24 µs), and
  gives exactly the URL httpx would have built.
- httpx turns every answer into ``urllib`` request and response objects for its cookie jar,
  even for a jar that keeps nothing. ``SharedClient`` has no cookies at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx


def clean_params(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A step's query as httpx takes it: unset values left out, objects sent as JSON."""
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue  # an unset variable leaves its parameter out, rather than send "None"
        out[key] = json.dumps(value) if isinstance(value, dict) else value
    return out or None


class RequestUrls:
    """The URLs of one connection's requests: its ``base_url`` joined with a path and query.

    A path that starts with one ``/`` and holds no ``?`` or ``#`` (every ``http`` step's
    path; load checks and percent-encoded values keep it so) is joined as text and parsed
    once. Anything else (SOAP's and GraphQL's absolute addresses, ``//host``, a path with
    its own query) goes to httpx to merge as it always has, so the host check sees it.
    """

    __slots__ = ("_prefix",)

    def __init__(self, base_url: str) -> None:
        self._prefix: str | None = None
        if base_url:
            base = httpx.URL(base_url.rstrip("/") + "/")
            if base.is_absolute_url and base.query == b"" and not base.fragment:
                self._prefix = str(base)

    def target(
        self, path: str, params: Mapping[str, Any] | None
    ) -> tuple[httpx.URL | str, dict[str, Any] | None]:
        """``(url, params)`` for ``build_request``: a parsed URL, or what httpx must merge."""
        query = clean_params(params)
        prefix = self._prefix
        if (
            prefix is None
            or path[:1] != "/"
            or path[1:2] == "/"
            or "?" in path
            or "#" in path
            or "\\" in path
        ):
            return path, query
        text = prefix + path[1:]
        if query:
            text += "?" + str(httpx.QueryParams(query))
        return httpx.URL(text), None


class _NoCookies(httpx.Cookies):
    """Cookies that are never read from an answer nor sent.

    One client serves every run of a connection, so a cookie one customer's call got back
    would go out on the next customer's call. A merchant's API is called with its ``auth``,
    never a session.
    """

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


_NONE = _NoCookies()


class SharedClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` with no cookie jar: see ``_NoCookies``."""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NONE

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        pass  # httpx's own __init__ sets an empty jar; there is none to keep
