"""URL rules: https except on loopback, and a flow never leaves its connection's host."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


@functools.lru_cache(maxsize=256)  # asked on every request: parse each host once
def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, *, allow_insecure_http: bool = False) -> str | None:
    """Why ``url`` may not be a connection's address, or None when it may."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"'{url}' is not an http(s) URL"
    if parts.username or parts.password:
        return "credentials do not belong in a URL: use 'auth'"
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        host = parts.hostname
        return f"plain http is refused for '{host}': use https (or allow_insecure_http: true)"
    return None


def path_problem(path: str) -> str | None:
    """Why a request path (its literal text) could leave the connection's host, or None."""
    head = path.split("{{", 1)[0]
    if head.startswith("//") or head.startswith("\\"):
        return f"path '{path}' names another host: a path is relative to the connection's base_url"
    scheme_end = head.find(":")
    if (
        scheme_end > 0
        and "/" not in head[:scheme_end]
        and head[:scheme_end].replace("+", "").replace(".", "").replace("-", "").isalnum()
    ):
        return f"path '{path}' names a scheme: a path is relative to the connection's base_url"
    if any(seg == ".." for seg in head.split("/")):
        return f"path '{path}' climbs out of the base_url with '..'"
    return None


def same_origin(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)
