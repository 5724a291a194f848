"""Which connection a request belongs to: the mocks and ``--record`` name calls the same way.

A request belongs to the connection whose base URL has the same scheme, host and port and
whose path is a whole-segment prefix of the request's; the longest such path wins, so two
connections on one host (``/api`` and ``/api/v2``, or ports 8080 and 8081) stay apart.

The base URLs are read at each request, not once: a SOAP connection whose address comes
from its WSDL learns its ``base_url`` only on its first call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(scheme: str, host: str | None, port: int | None) -> tuple[str, str, int | None]:
    scheme = scheme.lower()
    return scheme, (host or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def _under(path: str, base: str) -> bool:
    return not base or path == base or path.startswith(base + "/")


def locate(connections: Iterable[Any], url: httpx.URL) -> tuple[str | None, str]:
    """(connection name, path under its base URL), or (None, the whole path)."""
    origin = _origin(url.scheme, url.host, url.port)
    best: tuple[str | None, str] = (None, url.path)
    longest = -1
    for conn in connections:
        if not conn.base_url:
            continue
        parts = urlsplit(conn.base_url)
        base = parts.path.rstrip("/")
        if _origin(parts.scheme, parts.hostname, parts.port) != origin:
            continue
        if _under(url.path, base) and len(base) > longest:
            best, longest = (conn.name, url.path[len(base) :] or "/"), len(base)
    return best
