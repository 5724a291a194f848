"""Auth types of §6 over httpx's MockTransport: hmac, api_key, custom, and OAuth's token call
going through the same transport as every other call (so tests can answer it too)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
import pytest
from unit_support import ProjectFiles

from csflow import ProjectError

SECRET = "whsec-5ecret-signing-key"
API_KEY = "key-0123456789abcdef"

CONNECTIONS = """
signed:
  type: rest
  base_url: https://hooks.example.com
  auth: {type: hmac, secret: {env: SIGNING_SECRET}, header: X-Coffield-Signature, prefix: "sha256=", timestamp_header: X-Coffield-Timestamp}
bare_signed:
  type: rest
  base_url: https://hooks.example.com
  auth: {type: hmac, secret: {env: SIGNING_SECRET}, header: X-Signature}
keyed_header:
  type: rest
  base_url: https://keyed.example.com
  auth: {type: api_key, key: {env: KEYED_KEY}, header: X-Api-Key}
keyed_query:
  type: rest
  base_url: https://keyed.example.com
  auth: {type: api_key, key: {env: KEYED_KEY}, query: api_key}
"""

FLOWS = {
    "post": """
    name: post
    inputs:
      conn: string
    steps:
      - id: send
        call: http
        with: {connection: "{{ conn }}", method: POST, path: /lookup, json: {kind: order, reference: ORD-9842}}
      - reply: "{{ steps.send.data }}"
    """,
    "get": """
    name: get
    inputs:
      conn: string
    steps:
      - id: ping
        call: http
        with: {connection: "{{ conn }}", path: /ping, query: {x: "1"}}
      - reply: "{{ steps.ping.data }}"
    """,
}

ENV = {"SIGNING_SECRET": SECRET, "KEYED_KEY": API_KEY}


class RequestLog:
    def __init__(self, answer: Any = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if callable(self.answer):
            return self.answer(request)  # type: ignore[no-any-return]
        return httpx.Response(200, json=self.answer or {"ok": True})


def load(proj: ProjectFiles, handler: RequestLog, connections: str = CONNECTIONS) -> Any:
    proj.write(flows=FLOWS, connections=connections)
    project = proj.load(environ=ENV)
    project.connections.use_transport(lambda n: httpx.MockTransport(handler))
    return project


# -- hmac ---------------------------------------------------------------------------------------


def test_hmac_signs_the_raw_body_as_seed_003_says(proj: ProjectFiles) -> None:
    handler = RequestLog()
    project = load(proj, handler)
    result = project.run_sync("post", {"conn": "signed"})
    assert result.status == "completed", result.error
    request = handler.requests[0]
    expected = "sha256=" + hmac.new(SECRET.encode(), request.content, hashlib.sha256).hexdigest()
    assert request.headers["X-Coffield-Signature"] == expected
    assert abs(int(request.headers["X-Coffield-Timestamp"]) - time.time()) < 5
    assert json.loads(request.content) == {"kind": "order", "reference": "ORD-9842"}


def test_hmac_without_prefix_or_timestamp(proj: ProjectFiles) -> None:
    handler = RequestLog()
    project = load(proj, handler)
    project.run_sync("get", {"conn": "bare_signed"})
    request = handler.requests[0]
    assert request.headers["X-Signature"] == hmac.new(SECRET.encode(), b"", "sha256").hexdigest()
    assert "X-Coffield-Timestamp" not in request.headers


def test_a_body_echoing_the_hmac_secret_is_redacted(proj: ProjectFiles) -> None:
    project = load(proj, RequestLog({"echo": f"secret was {SECRET}"}))
    result = project.run_sync("post", {"conn": "signed"})
    assert SECRET not in result.to_json()
    assert "***" in (result.reply or "")


# -- api_key ----------------------------------------------------------------------------------


def test_api_key_in_a_header_stays_out_of_the_query(proj: ProjectFiles) -> None:
    handler = RequestLog()
    load(proj, handler).run_sync("get", {"conn": "keyed_header"})
    request = handler.requests[0]
    assert request.headers["X-Api-Key"] == API_KEY
    assert dict(request.url.params) == {"x": "1"}


def test_api_key_in_the_query_is_kept_out_of_logs(
    proj: ProjectFiles, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    handler = RequestLog({"echo": f"you sent {API_KEY}"})
    result = load(proj, handler).run_sync("get", {"conn": "keyed_query"})
    assert dict(handler.requests[0].url.params) == {"x": "1", "api_key": API_KEY}
    assert "X-Api-Key" not in handler.requests[0].headers
    assert "HTTP Request" in caplog.text  # httpx logged the URL...
    assert API_KEY not in caplog.text  # ...without the key
    assert API_KEY not in result.to_json()


# -- custom -----------------------------------------------------------------------------------

CUSTOM = """
per_request:
  type: rest
  base_url: https://custom.example.com
  auth: {type: custom, function: "signers:sign"}
factory:
  type: rest
  base_url: https://custom.example.com
  auth: {type: custom, function: "signers:make_auth"}
auth_class:
  type: rest
  base_url: https://custom.example.com
  auth: {type: custom, function: "signers:TokenAuth"}
"""

SIGNERS = """
import httpx


def sign(request):
    request.headers["X-Custom"] = "signed-by-custom-1234"


class TokenAuth(httpx.Auth):
    def auth_flow(self, request):
        request.headers["Authorization"] = "Token custom-token-5678"
        yield request


def make_auth():
    return TokenAuth()


NOT_CALLABLE = 42


def broken():
    raise RuntimeError("no vault today")
"""


@pytest.mark.parametrize(
    ("conn", "header", "value"),
    [
        ("per_request", "X-Custom", "signed-by-custom-1234"),
        ("factory", "Authorization", "Token custom-token-5678"),
        ("auth_class", "Authorization", "Token custom-token-5678"),
    ],
)
def test_custom_auth_from_the_project(
    proj: ProjectFiles, conn: str, header: str, value: str
) -> None:
    proj.write(files={"signers.py": SIGNERS})
    handler = RequestLog(lambda r: httpx.Response(200, json={"saw": r.headers.get(header)}))
    project = load(proj, handler, CUSTOM)
    result = project.run_sync("get", {"conn": conn})
    assert result.status == "completed", result.error
    assert handler.requests[0].headers[header] == value
    assert value.split()[-1] not in result.to_json()  # what the auth set is a secret too


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("nowhere:sign", "cannot import 'nowhere'"),
        ("signers:missing", "'signers' has no 'missing'"),
        ("signers:NOT_CALLABLE", "is not callable"),
        ("signers:broken", "RuntimeError: no vault today"),
    ],
)
def test_a_custom_auth_that_cannot_be_used_is_a_load_error_at_its_line(
    proj: ProjectFiles, function: str, message: str
) -> None:
    connections = (
        "custom:\n  type: rest\n  base_url: https://custom.example.com\n"
        f'  auth:\n    type: custom\n    function: "{function}"\n'
    )
    proj.write(flows=FLOWS, connections=connections, files={"signers.py": SIGNERS})
    with pytest.raises(ProjectError) as info:
        proj.load(environ=ENV)
    (problem,) = info.value.problems
    assert message in problem.message
    assert problem.path.endswith("connections.yaml")
    assert (problem.line, problem.column) == (6, 15)


# -- OAuth over the test transport ------------------------------------------------------------------

OAUTH = """
subs:
  type: rest
  base_url: https://subs.example.com
  auth:
    type: oauth2_client_credentials
    token_url: https://subs.example.com/oauth/token
    client_id: csflow
    client_secret: {env: SUBS_SECRET}
    audience: https://api.subs.example.com
"""


def test_oauth_token_requests_go_through_the_connection_transport(proj: ProjectFiles) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(
                200, json={"access_token": "at-from-mock-0001", "token_type": "bearer"}
            )
        return httpx.Response(200, json={"auth": request.headers["Authorization"]})

    handler = RequestLog(answer)
    proj.write(flows=FLOWS, connections=OAUTH)
    project = proj.load(environ={"SUBS_SECRET": "subs-secret-value"})
    project.connections.use_transport(lambda n: httpx.MockTransport(handler))
    result = project.run_sync("get", {"conn": "subs"})
    assert result.status == "completed", result.error
    token_call, call = handler.requests
    form = dict(httpx.QueryParams(token_call.content.decode()))
    assert form == {"grant_type": "client_credentials", "audience": "https://api.subs.example.com"}
    basic = base64.b64encode(b"csflow:subs-secret-value").decode()
    assert token_call.headers["Authorization"] == f"Basic {basic}"
    assert call.headers["Authorization"] == "Bearer at-from-mock-0001"
    assert "at-from-mock-0001" not in result.to_json()


def test_a_token_that_is_not_bearer_is_refused(proj: ProjectFiles) -> None:
    handler = RequestLog(
        lambda r: httpx.Response(200, json={"access_token": "mac-token-123", "token_type": "mac"})
    )
    proj.write(flows=FLOWS, connections=OAUTH)
    project = proj.load(environ={"SUBS_SECRET": "subs-secret-value"})
    project.connections.use_transport(lambda n: httpx.MockTransport(handler))
    result = project.run_sync("get", {"conn": "subs"})
    assert result.error["kind"] == "auth"
    assert "not bearer" in result.error["message"]
    assert len(handler.requests) == 1  # the call itself never left
