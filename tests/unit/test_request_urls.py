"""The connection joins a request's URL itself; it must be the URL httpx would have built."""

from __future__ import annotations

import functools
from typing import Any

import httpx
import pytest

from csflow.adapters.http_client import RequestUrls, clean_params

BASES = [
    "https://shop.example/api/v2",
    "https://shop.example/api/v2/",
    "http://127.0.0.1:8080",
    "http://[::1]:9/x/",
    "https://Shop.Example:443/Ä-api",
]
PATHS = [
    "/orders",
    "/orders/ORD-1003",
    "/customers/%2E%2E/orders",
    "/a%2Fb/c",
    "/a b/ü/€",
    "/a;b=c/d:e@f/!$&'()*+,",
    "/x/",
    "/",
    "/./x/../y",
    "/%zz/%41",
]
PARAMS: list[dict[str, Any] | None] = [
    None,
    {},
    {"email": "a+b@x.example"},
    {"q": "ä ö&=?#/", "page": 2, "open": True, "ids": [1, 2], "gone": None},
    {"filter": {"status": "shipped"}},
    {"only": None},
]


@functools.cache  # a client loads its TLS context: one per base is enough
def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base)


def httpx_merged(base: str, path: str, params: dict[str, Any] | None) -> str:
    return str(client(base.rstrip("/")).build_request("GET", path, params=clean_params(params)).url)


@pytest.mark.parametrize("base", BASES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("params", PARAMS)
def test_a_joined_url_is_the_one_httpx_merges(
    base: str, path: str, params: dict[str, Any] | None
) -> None:
    url, query = RequestUrls(base.rstrip("/")).target(path, params)
    assert isinstance(url, httpx.URL) and query is None  # the fast way was taken
    assert str(url) == httpx_merged(base, path, params)


@pytest.mark.parametrize(
    "path",
    ["orders", "//evil.example/x", "/a?b=1", "/a#top", "/a\\b", "https://evil.example/", ""],
)
def test_anything_else_is_left_to_httpx_to_merge(path: str) -> None:
    url, query = RequestUrls("https://shop.example/api").target(path, {"a": 1, "b": None})
    assert url == path and query == {"a": 1}


def test_a_connection_without_a_base_url_leaves_every_path_to_httpx() -> None:
    assert RequestUrls("").target("/orders", None) == ("/orders", None)
