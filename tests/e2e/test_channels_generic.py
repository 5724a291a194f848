"""The generic run API: ``POST /v1/flows/{name}/runs {"inputs": {...}}`` -> the RunResult of §8."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from channels_support import (
    KEYS,
    LOOKUP_FLOW,
    PATIENT_SHOP,
    ShopAdmin,
    serving,
    write,
)

from csflow.demo.server import DemoShop

KEY = KEYS["CSFLOW_API_KEY"]
RUN_RESULT_KEYS = {"flow", "status", "outputs", "reply", "error", "steps"}


def run(client: httpx.Client, flow: str, body: object, key: str | None = KEY) -> httpx.Response:
    headers = {"x-api-key": key} if key is not None else {}
    return client.post(f"/v1/flows/{flow}/runs", json=body, headers=headers)


def test_a_run_answers_the_run_result_of_the_spec(server):
    r = run(server, "wismo", {"inputs": {"email": "shipped@demo.shop"}})
    assert r.status_code == 200
    result = r.json()
    assert set(result) == RUN_RESULT_KEYS
    assert result["flow"] == "wismo" and result["status"] == "completed" and result["error"] is None
    assert result["outputs"]["tracking_number"] in result["reply"]
    assert result["steps"] and {"id", "verb", "ok", "duration_ms", "attempts"} <= set(
        result["steps"][0]
    )
    assert len(r.headers["x-csflow-run-id"]) == 32


def test_a_failed_run_is_still_a_run_result(server, shop):
    with ShopAdmin(shop).down():
        r = run(server, "wismo", {"inputs": {"email": "shipped@demo.shop"}})
    assert r.status_code == 200
    result = r.json()
    assert result["status"] == "failed" and result["error"]["kind"] == "flow_failed"
    assert "can't reach our order system" in result["reply"]


@pytest.mark.parametrize("key", [None, "", "nope", KEY[:-1] + "X"])
def test_a_missing_or_wrong_key_is_401(server, key):
    r = run(server, "wismo", {"inputs": {"email": "shipped@demo.shop"}}, key=key)
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"


def test_an_unknown_flow_is_404_with_a_near_miss(server):
    r = run(server, "wismoo", {"inputs": {}})
    assert r.status_code == 404
    assert r.json() == {
        "error": "not_found",
        "message": "unknown flow 'wismoo' (did you mean 'wismo'?)",
    }


def test_an_unknown_flow_needs_a_key_first(server):
    assert run(server, "wismoo", {"inputs": {}}, key=None).status_code == 401


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"emial": "shipped@demo.shop"}, "unknown input 'emial' (did you mean 'email'?)"),
        ({"email": "not-an-email"}, "input 'email'"),
    ],
)
def test_bad_inputs_are_400_naming_them(server, inputs, named):
    r = run(server, "wismo", {"inputs": inputs})
    assert r.status_code == 400
    assert r.json()["error"] == "bad_inputs" and named in r.json()["message"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"{oops", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"inputs": [1]}', "'inputs' must be an object"),
        (b'{"inputs": {}, "deadline": "1s"}', "unknown key 'deadline'"),
        (b"[" * 50_000 + b"]" * 10_000, "not valid JSON"),
    ],
)
def test_a_bad_body_is_400(server, content, words):
    r = server.post(
        "/v1/flows/wismo/runs",
        content=content,
        headers={"x-api-key": KEY, "content-type": "application/json"},
    )
    assert r.status_code == 400 and words in r.json()["message"]


def test_a_body_over_64_kib_is_413(server):
    r = run(server, "wismo", {"inputs": {"email": "a@b.co", "pad": "x" * 70_000}})
    assert r.status_code == 413 and r.json()["error"] == "too_large"


@pytest.fixture(scope="module")
def patient(shop: DemoShop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A project whose connection would wait 30 s: only the channel's timeout cuts a run."""
    project = write(
        tmp_path_factory.mktemp("patient"),
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "channels.yaml": """
                api:
                  type: generic
                  path: /v1
                  api_keys: [{env: CSFLOW_API_KEY}]
                  flows: [lookup]
                  timeout: 1s
            """,
        },
    )
    with serving(project, {**shop.env(), **KEYS}) as client:
        yield client


def test_a_missing_required_input_is_named(patient):
    r = run(patient, "lookup", {"inputs": {}})
    assert r.status_code == 400
    assert r.json()["message"] == "flow 'lookup': missing input 'order_number' (string)"


def test_a_run_past_the_channel_timeout_is_a_failed_run_with_deadline(patient, shop):
    with ShopAdmin(shop).slow(1_200):
        started = time.perf_counter()
        r = run(patient, "lookup", {"inputs": {"order_number": "ORD-1003"}})
        elapsed = time.perf_counter() - started
    assert r.status_code == 200
    result = r.json()
    assert result["status"] == "failed" and result["error"]["kind"] == "deadline"
    assert 0.4 < elapsed < 1.0
