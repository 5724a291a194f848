"""/openapi.json and the server are one (issue 10, item 39): what the document requires, the
server requires; what it allows, the server takes; JSON inputs arrive with their own types."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from channels_support import KEYS, serving
from support import SHIPPED

KEY = {"x-api-key": KEYS["CSFLOW_API_KEY"]}


@pytest.fixture(scope="module")
def server(shop_env: dict[str, str]) -> Iterator[httpx.Client]:
    with serving(SHIPPED, {**shop_env, **KEYS}) as client:
        yield client


@pytest.fixture(scope="module")
def doc(server: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = server.get("/openapi.json").json()
    return document


def body_schema(doc: dict[str, Any], flow: str) -> dict[str, Any]:
    request: dict[str, Any] = doc["paths"][f"/v1/flows/{flow}/runs"]["post"]["requestBody"]
    return request


def test_a_flow_with_required_inputs_requires_a_body_and_gets_400_without(
    server: httpx.Client, doc: dict[str, Any]
) -> None:
    request = body_schema(doc, "customer_summary")
    schema = request["content"]["application/json"]["schema"]
    assert request["required"] is True and schema["required"] == ["inputs"]
    assert "email" in schema["properties"]["inputs"]["required"]
    r = server.post("/v1/flows/customer_summary/runs", headers=KEY)  # no body at all
    assert r.status_code == 400 and r.json()["error"] == "bad_inputs"
    assert "email" in r.json()["message"]


def test_a_flow_without_required_inputs_takes_an_empty_body(doc: dict[str, Any]) -> None:
    request = body_schema(doc, "wismo")
    assert request["required"] is False
    assert "required" not in request["content"]["application/json"]["schema"]


def test_formats_and_non_empty_parameters_are_in_the_document(doc: dict[str, Any]) -> None:
    inputs = body_schema(doc, "wismo")["content"]["application/json"]["schema"]
    phone = inputs["properties"]["inputs"]["properties"]["phone"]
    assert phone["description"].startswith("a phone number")
    assert re.search(phone["pattern"], "+1 (415) 867-5309")
    assert not re.search(phone["pattern"], "555-12") and re.search(phone["pattern"], "")
    for parameter in doc["paths"]["/zipchat/order"]["get"]["parameters"]:
        assert parameter["required"] is True and parameter["schema"]["minLength"] == 1


@pytest.mark.parametrize("value", [{}, [], True, 1003])
def test_a_string_input_of_another_json_type_is_a_usage_error(
    server: httpx.Client, value: object
) -> None:
    r = server.post("/v1/flows/wismo/runs", json={"inputs": {"order_number": value}}, headers=KEY)
    assert r.status_code == 400 and r.json()["error"] == "bad_inputs"
    assert "input 'order_number': expected string" in r.json()["message"]
