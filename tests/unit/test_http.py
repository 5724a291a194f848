"""The ``http`` action (§6, §7) against respx: auth, encoding, status kinds, retries, redaction.

respx patches httpx's own (httpcore) transport, not the aiohttp-based one csflow uses by
default, so these tests select ``CSFLOW_TRANSPORT=httpcore`` before the first call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from csflow import Project, RunResult

TOKEN = "tok_live_9f8e7d6c5b4a"
PASSWORD = "pw-Secret-5678"
API_KEY = "key-0123456789abcdef"
SHOP = "https://shop.example.com/api"  # projects/http/connections.yaml
PROJECT = Path(__file__).parent / "projects" / "http"


@pytest.fixture
def project(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The project of ``projects/http``: a shop, an ERP and two keyed APIs, all under respx."""
    monkeypatch.setenv("CSFLOW_TRANSPORT", "httpcore")
    monkeypatch.setenv("SHOP_TOKEN", TOKEN)
    monkeypatch.setenv("ERP_PASSWORD", PASSWORD)
    monkeypatch.setenv("KEYED_KEY", API_KEY)
    return Project.load(PROJECT)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as mock:
        yield mock


def error_kind(result: RunResult) -> str:
    assert result.status == "failed", result.as_dict()
    return str(result.error["kind"])


# -- auth --------------------------------------------------------------------------------------


def test_bearer_auth_sends_the_token(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith=SHOP).mock(
        return_value=httpx.Response(200, json={"status": "SHP"})
    )
    result = project.run_sync("get", {"id": "1"})
    assert result.status == "completed", result.error
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_basic_auth_sends_user_and_password(project: Any, router: respx.MockRouter) -> None:
    route = router.get("https://erp.example.com/ping").mock(return_value=httpx.Response(204))
    assert project.run_sync("auth", {"conn": "erp"}).status == "completed"
    scheme, _, encoded = route.calls.last.request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == f"csflow:{PASSWORD}"


def test_api_key_auth_in_a_header(project: Any, router: respx.MockRouter) -> None:
    route = router.get("https://keyed.example.com/ping").mock(return_value=httpx.Response(204))
    assert project.run_sync("auth", {"conn": "keyed_header"}).status == "completed"
    request = route.calls.last.request
    assert request.headers["X-Api-Key"] == API_KEY
    assert "api_key" not in request.url.params


def test_api_key_auth_in_the_query(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith="https://keyed.example.com/ping").mock(
        return_value=httpx.Response(204)
    )
    assert project.run_sync("auth", {"conn": "keyed_query"}).status == "completed"
    params = route.calls.last.request.url.params
    assert (params["api_key"], params["x"]) == (API_KEY, "1")


def test_a_secret_given_to_project_load_is_the_one_sent(
    monkeypatch: pytest.MonkeyPatch, router: respx.MockRouter
) -> None:
    monkeypatch.setenv("CSFLOW_TRANSPORT", "httpcore")
    monkeypatch.delenv("SHOP_TOKEN", raising=False)
    secrets = {"SHOP_TOKEN": TOKEN, "ERP_PASSWORD": PASSWORD, "KEYED_KEY": API_KEY}
    project = Project.load(PROJECT, environ=secrets)
    route = router.get(url__startswith=SHOP).mock(return_value=httpx.Response(200, json={}))
    project.run_sync("get", {"id": "1"})
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


# -- building the request ----------------------------------------------------------------------


def test_path_values_are_one_segment_and_query_values_are_encoded(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.get(url__startswith="https://shop.example.com/").mock(
        return_value=httpx.Response(200, json={"status": "SHP"})
    )
    result = project.run_sync("get", {"id": "a/../b?x=1#frag", "email": "jane+1@example.com"})
    assert result.status == "completed", result.error
    url = route.calls.last.request.url
    assert url.host == "shop.example.com"
    assert url.raw_path.split(b"?")[0] == b"/api/orders/a%2F..%2Fb%3Fx%3D1%23frag"
    assert dict(url.params) == {"email": "jane+1@example.com", "q": "a b&c", "page": "2"}
    assert b"jane%2B1%40example.com" in url.query


def test_a_path_value_cannot_change_the_host(project: Any, router: respx.MockRouter) -> None:
    route = router.route().mock(return_value=httpx.Response(200, json={}))
    project.run_sync("get", {"id": "//evil.example/x"})
    assert route.calls.last.request.url.host == "shop.example.com"


def test_an_unset_query_value_is_left_out(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith=SHOP).mock(return_value=httpx.Response(200, json={}))
    project.run_sync("get", {"id": "1"})
    assert "email" not in route.calls.last.request.url.params


def test_json_body_is_sent_as_json(project: Any, router: respx.MockRouter) -> None:
    route = router.post(f"{SHOP}/orders").mock(
        return_value=httpx.Response(201, json={"id": "ORD-9"})
    )
    result = project.run_sync("create")
    assert result.status == "completed", result.error
    request = route.calls.last.request
    assert json.loads(request.content) == {"sku": "A", "qty": 1}
    assert request.headers["Content-Type"].startswith("application/json")
    assert result.steps[0].status == 201


# -- answers -------------------------------------------------------------------------------------


def test_the_data_and_status_of_an_answer(project: Any, router: respx.MockRouter) -> None:
    router.get(url__startswith=SHOP).mock(return_value=httpx.Response(200, json={"status": "SHP"}))
    result = project.run_sync("get", {"id": "1"})
    assert result.outputs == {"status": "SHP"}
    assert result.reply == "200 SHP"


@pytest.mark.parametrize(("status", "found"), [(404, False), (200, True)])
def test_ok_status_lets_a_flow_branch_on_the_status(
    project: Any, router: respx.MockRouter, status: int, found: bool
) -> None:
    router.get(f"{SHOP}/orders/1").mock(return_value=httpx.Response(status, json={}))
    result = project.run_sync("maybe")
    assert result.status == "completed", result.error
    assert result.outputs == {"found": found}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, "auth"),
        (403, "auth"),
        (404, "http_status"),
        (500, "http_status"),
        (422, "http_status"),
    ],
)
def test_an_error_status_fails_the_step(
    project: Any, router: respx.MockRouter, status: int, kind: str
) -> None:
    router.get(url__startswith=SHOP).mock(return_value=httpx.Response(status, json={"error": "no"}))
    result = project.run_sync("get", {"id": "1"})
    assert error_kind(result) == kind
    assert result.error["status"] == status
    assert result.error["step"] == "order"
    assert result.steps[0].status == status
    assert str(status) in result.error["message"]


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, html="<!doctype html><html><body>Login</body></html>"),
        httpx.Response(
            200, content=b'{"status": "SHP"', headers={"Content-Type": "application/json"}
        ),
        httpx.Response(
            200, content=b"<order><status>x</order>", headers={"Content-Type": "application/xml"}
        ),
    ],
    ids=["html", "invalid json", "invalid xml"],
)
def test_a_body_that_is_not_data_is_a_parse_error(
    project: Any, router: respx.MockRouter, response: httpx.Response
) -> None:
    router.get(url__startswith=SHOP).mock(return_value=response)
    assert error_kind(project.run_sync("get", {"id": "1"})) == "parse"


def test_a_connect_error_is_connect_and_is_retried(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith=SHOP).mock(
        side_effect=httpx.ConnectError("connection refused")
    )
    result = project.run_sync("get", {"id": "1"})
    assert error_kind(result) == "connect"
    assert route.call_count == 3
    assert result.steps[0].attempts == 3


def test_a_read_timeout_is_timeout(project: Any, router: respx.MockRouter) -> None:
    router.get(url__startswith=SHOP).mock(side_effect=httpx.ReadTimeout("no answer"))
    assert error_kind(project.run_sync("get", {"id": "1"})) == "timeout"


def test_a_server_that_does_not_answer_is_a_timeout_at_the_step_timeout(
    project: Any, router: respx.MockRouter
) -> None:
    async def hang(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)  # a merchant that does not answer: the fault under test
        return httpx.Response(200, json={})

    router.get(url__startswith=SHOP).mock(side_effect=hang)
    started = time.monotonic()
    result = project.run_sync("quick")
    assert error_kind(result) == "timeout"
    assert time.monotonic() - started < 1.5


# -- retries and side effects -------------------------------------------------------------------


def test_a_get_is_retried_on_503(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith=SHOP).mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(503),
            httpx.Response(200, json={"status": "DLV"}),
        ]
    )
    result = project.run_sync("get", {"id": "1"})
    assert result.status == "completed", result.error
    assert result.outputs == {"status": "DLV"}
    assert route.call_count == 3
    assert result.steps[0].attempts == 3


def test_a_status_not_listed_in_retry_on_is_not_retried(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.get(url__startswith=SHOP).mock(return_value=httpx.Response(500))
    assert error_kind(project.run_sync("get", {"id": "1"})) == "http_status"
    assert route.call_count == 1


def test_a_retry_wait_never_passes_the_deadline(project: Any, router: respx.MockRouter) -> None:
    route = router.get(url__startswith=SHOP).mock(
        return_value=httpx.Response(503, headers={"Retry-After": "30"})
    )
    started = time.monotonic()
    result = project.run_sync("get", {"id": "1"}, deadline=1.0)
    assert time.monotonic() - started < 2.0
    assert result.status == "failed"
    assert route.call_count == 1


def test_a_post_without_idempotency_key_is_not_retried(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.post(f"{SHOP}/orders").mock(return_value=httpx.Response(503))
    result = project.run_sync("create")
    assert error_kind(result) == "http_status"
    assert route.call_count == 1
    assert "Idempotency-Key" not in route.calls.last.request.headers


def test_a_post_with_idempotency_key_is_retried_with_the_same_key(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.post(f"{SHOP}/orders").mock(
        side_effect=[
            httpx.Response(503),
            httpx.Response(502),
            httpx.Response(201, json={"id": "ORD-9"}),
        ]
    )
    result = project.run_sync("create_keyed", {"cart": "c-77"})
    assert result.status == "completed", result.error
    keys = [call.request.headers.get("Idempotency-Key") for call in route.calls]
    assert keys == ["order-c-77"] * 3


def test_a_post_whose_answer_timed_out_is_unknown_and_not_retried(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.post(f"{SHOP}/orders").mock(side_effect=httpx.ReadTimeout("no answer"))
    result = project.run_sync("create_quick")
    assert error_kind(result) == "timeout"
    assert route.call_count == 1
    assert result.error.get("outcome") == "unknown"


def test_a_post_to_a_server_that_hangs_is_unknown_and_not_retried(
    project: Any, router: respx.MockRouter
) -> None:
    received = []

    async def hang(request: httpx.Request) -> httpx.Response:
        received.append(request)
        await asyncio.sleep(5)  # a merchant that does not answer: the fault under test
        return httpx.Response(201, json={})

    router.post(f"{SHOP}/orders").mock(side_effect=hang)
    result = project.run_sync("create_quick")
    assert error_kind(result) == "timeout"
    assert len(received) == 1, f"the POST reached the server {len(received)} times"
    assert result.steps[0].attempts == 1
    assert result.error.get("outcome") == "unknown"


# -- the token stays secret -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(401, json={"error": f"bad token {TOKEN}"}),
        httpx.Response(500, text=f"Authorization: Bearer {TOKEN}"),
        httpx.Response(200, json={"note": f"you sent {TOKEN}"}),
        httpx.Response(200, html=f"<p>{TOKEN}</p>"),
        httpx.ConnectError(f"refused for Bearer {TOKEN}"),
        httpx.ReadTimeout(f"timed out, Authorization: Bearer {TOKEN}"),
    ],
    ids=["401 echo", "500 echo", "200 echo", "html echo", "connect error", "timeout"],
)
def test_the_token_never_appears_in_a_result(
    project: Any, router: respx.MockRouter, answer: Any
) -> None:
    if isinstance(answer, Exception):
        router.get(url__startswith=SHOP).mock(side_effect=answer)
    else:
        router.get(url__startswith=SHOP).mock(return_value=answer)
    for flow, inputs in (("get", {"id": "1"}), ("echo", {})):
        result = project.run_sync(flow, inputs)
        text = result.to_json()
        assert TOKEN not in text
        assert TOKEN not in str(result.error)
        assert TOKEN not in (result.reply or "")


async def test_runs_on_one_loop_share_the_connection_client(
    project: Any, router: respx.MockRouter
) -> None:
    route = router.get(url__startswith=SHOP).mock(
        return_value=httpx.Response(200, json={"status": "SHP"})
    )
    try:
        first = await project.run("get", {"id": "1"})
        second = await project.run("get", {"id": "2"})
    finally:
        await project.aclose()
    assert (first.outputs, second.outputs) == ({"status": "SHP"}, {"status": "SHP"})
    assert [call.request.url.path for call in route.calls] == ["/api/orders/1", "/api/orders/2"]
    assert all(call.request.headers["Authorization"] == f"Bearer {TOKEN}" for call in route.calls)
