"""What every channel shares: health, the OpenAPI document, JSON for unknown paths."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import httpx
import pytest
from channels_support import KEYS, serving
from support import SHIPPED


@pytest.fixture(scope="module")
def shipped_server(shop_env: dict[str, str]) -> Iterator[httpx.Client]:
    with serving(SHIPPED, {**shop_env, **KEYS}) as client:
        yield client


def test_healthz_answers_without_a_key(shipped_server: httpx.Client) -> None:
    r = shipped_server.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert shipped_server.head("/healthz").status_code == 200


def test_openapi_document_describes_every_channel(shipped_server: httpx.Client) -> None:
    doc = shipped_server.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["apiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    run = doc["paths"]["/v1/flows/wismo/runs"]["post"]
    inputs = run["requestBody"]["content"]["application/json"]["schema"]["properties"]["inputs"]
    email = inputs["properties"]["email"]  # optional: null is an absent input (issue 10, 39)
    assert email["type"] == ["string", "null"] and email["description"] == "an email address"
    assert re.search(email["pattern"], "shipped@demo.shop")
    assert not re.search(email["pattern"], "not an email")
    assert {"/zipchat/order", "/coffield/lookup", "/orders"} <= set(doc["paths"])
    assert "Order" in doc["components"]["schemas"]
    assert KEYS["ZIPCHAT_API_KEY"] not in json.dumps(doc)


def test_unknown_path_and_wrong_method_are_json(shipped_server: httpx.Client) -> None:
    r = shipped_server.get("/nowhere")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = shipped_server.post("/zipchat/order")
    assert r.status_code == 405 and "GET" in r.headers["allow"]
