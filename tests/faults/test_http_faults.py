"""Each fault a merchant's server can throw at an ``http`` step, on a real loopback server.

Every test runs the real client stack (httpx over aiohttp by default; the ``transport``
fixture adds httpx's own) against ``FaultServer`` and checks the error kind the flow sees,
how often the server was called, and how long it took.
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from server import (
    FaultServer,
    echo,
    gzip_bomb,
    gzipped,
    html,
    huge,
    json,
    redirect,
    reset,
    slow,
    status,
    trickle,
    truncated,
    xml,
)

TOKEN = "tok_live_4f3e2d1c0b9a"
PASSWORD = "pw-Sup3r-Secret-77"
API_KEY = "key-feedface0123"
SECRETS = {"SHOP_TOKEN": TOKEN, "ERP_PASSWORD": PASSWORD, "KEYED_KEY": API_KEY}

CONNECTIONS = """
shop:
  type: rest
  base_url: {env: FAULTS_URL}
  auth: {type: bearer, token: {env: SHOP_TOKEN}}
  timeout: 2s
  max_response_bytes: 1000000
  retry: {attempts: 3, backoff: 10ms, on: [connect, timeout, 429, 5xx]}
basic:
  type: rest
  base_url: {env: FAULTS_URL}
  auth: {type: basic, username: csflow, password: {env: ERP_PASSWORD}}
keyed:
  type: rest
  base_url: {env: FAULTS_URL}
  auth: {type: api_key, key: {env: KEYED_KEY}, query: api_key}
follows:
  type: rest
  base_url: {env: FAULTS_URL}
  auth: {type: bearer, token: {env: SHOP_TOKEN}}
  follow_redirects: true
"""

FLOWS = {
    "get": """
    name: get
    outputs:
      status: string
    steps:
      - id: order
        call: http
        with: {connection: shop, path: /orders/1}
        extract: {status: status}
    """,
    "quick": """
    name: quick
    steps:
      - id: order
        call: http
        timeout: 300ms
        retry: {attempts: 1}
        with: {connection: shop, path: /orders/1}
    """,
    "moved": """
    name: moved
    inputs:
      conn: string
    outputs:
      status: string
    steps:
      - id: order
        call: http
        with: {connection: "{{ conn }}", path: /old}
        extract: {status: status}
    """,
    "header": """
    name: header
    inputs:
      ref: string
    steps:
      - id: order
        call: http
        with: {connection: shop, path: /orders/1, headers: {X-Ref: "{{ ref }}"}}
    """,
    "echo": """
    name: echo
    inputs:
      conn: string
    outputs:
      seen: any
    steps:
      - id: echo
        call: http
        with: {connection: "{{ conn }}", method: POST, path: /echo, json: {note: hello}}
        extract: {seen: "@"}
      - reply: "the server saw {{ seen }}"
      - id: fails
        call: http
        with: {connection: "{{ conn }}", path: /refuse}
        on_error: continue
      - reply: "{{ steps.echo.data }} / {{ steps.fails.error.message }}"
    """,
}


@pytest.fixture
def project(projects: Any) -> Any:
    return projects.make(CONNECTIONS, FLOWS, env=SECRETS)


def kind(result: Any) -> str:
    assert result.status == "failed", result.as_dict()
    return str(result.error["kind"])


# -- slow, trickling, and no answer -------------------------------------------------------------


def test_a_slow_answer_is_a_timeout_at_the_step_timeout(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", slow(3))
    started = time.monotonic()
    result = project.run_sync("quick")
    assert kind(result) == "timeout"
    assert time.monotonic() - started < 0.3 + 0.5
    assert len(server.hits("/orders/1")) == 1


def test_a_trickling_body_is_cut_at_the_step_timeout(
    project: Any, server: FaultServer, transport: str
) -> None:
    # A byte every 50 ms keeps httpx's read timeout (2 s) from ever firing.
    server.script("/orders/1", trickle(0.05))
    started = time.monotonic()
    result = project.run_sync("quick")
    elapsed = time.monotonic() - started
    assert kind(result) == "timeout"
    assert elapsed < 0.3 + 0.5, f"{transport}: the trickle held the run {elapsed:.2f}s"


# -- statuses -------------------------------------------------------------------------------------


def test_5xx_is_retried_until_an_answer(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", status(503), status(502), json({"status": "SHP"}))
    result = project.run_sync("get")
    assert result.status == "completed", result.error
    assert result.outputs == {"status": "SHP"}
    assert result.steps[0].attempts == 3
    assert len(server.hits("/orders/1")) == 3


def test_5xx_that_persists_fails_after_the_attempts(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", status(500))
    result = project.run_sync("get")
    assert kind(result) == "http_status"
    assert result.error["status"] == 500
    assert len(server.hits("/orders/1")) == 3


def test_429_waits_as_long_as_retry_after_says(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", status(429, {"Retry-After": "1"}), json({"status": "DLV"}))
    result = project.run_sync("get")
    assert result.status == "completed", result.error
    first, second = server.hits("/orders/1")
    assert second.at - first.at >= 0.95  # the backoff alone would be ~10 ms


def test_429_whose_retry_after_passes_the_deadline_fails_at_once(
    project: Any, server: FaultServer
) -> None:
    server.script("/orders/1", status(429, {"Retry-After": "30"}), json({"status": "DLV"}))
    started = time.monotonic()
    result = project.run_sync("get", deadline=2.0)
    assert kind(result) == "http_status"
    assert result.error["status"] == 429
    assert time.monotonic() - started < 1.0
    assert len(server.hits("/orders/1")) == 1


# -- broken connections and bodies ------------------------------------------------------------------


def test_a_reset_after_the_request_is_connect_and_a_get_is_retried(
    project: Any, server: FaultServer, transport: str
) -> None:
    server.script("/orders/1", reset(), reset(), json({"status": "SHP"}))
    result = project.run_sync("get")
    assert result.status == "completed", result.error
    assert len(server.hits("/orders/1")) == 3
    # aiohttp itself resends an idempotent request once when a pooled connection drops.
    assert 2 <= result.steps[0].attempts <= 3


def test_a_connection_that_keeps_resetting_fails_with_connect(
    project: Any, server: FaultServer, transport: str
) -> None:
    server.script("/orders/1", reset())
    result = project.run_sync("get")
    assert kind(result) == "connect"
    assert "broke after the request was sent" in result.error["message"]


def test_a_truncated_body_is_connect_never_half_data(
    project: Any, server: FaultServer, transport: str
) -> None:
    server.script("/orders/1", truncated())
    result = project.run_sync("get")
    assert kind(result) == "connect"
    assert result.outputs == {}
    assert len(server.hits("/orders/1")) == 3  # a GET: retried


def test_html_instead_of_json_is_parse(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", html())
    result = project.run_sync("get")
    assert kind(result) == "parse"
    assert "HTML" in result.error["message"]


def test_a_huge_body_stops_at_the_cap_without_being_held(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", huge(50_000_000))
    tracemalloc.start()
    try:
        result = project.run_sync("get")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kind(result) == "parse"
    assert "over 1000000 bytes" in result.error["message"]
    assert peak < 20_000_000, f"{peak / 1e6:.0f} MB held for a 1 MB cap"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compression_bomb_is_not_inflated_past_the_cap(
    project: Any, server: FaultServer, transport: str, encoding: str
) -> None:
    server.script("/orders/1", gzip_bomb(256 << 20, encoding))  # 256 KB that inflate to 256 MB
    tracemalloc.start()
    try:
        result = project.run_sync("get")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kind(result) == "parse"
    assert "over 1000000 bytes" in result.error["message"]
    assert peak < 30_000_000, f"{peak / 1e6:.0f} MB inflated for a 1 MB cap"


def test_a_gzipped_answer_is_read(project: Any, server: FaultServer, transport: str) -> None:
    server.script("/orders/1", gzipped({"status": "SHP"}))
    result = project.run_sync("get")
    assert result.outputs == {"status": "SHP"}


def test_an_unknown_content_encoding_is_parse(project: Any, server: FaultServer) -> None:
    server.script("/orders/1", status(200, {"Content-Encoding": "br"}, b"\x1b\x00"))
    assert kind(project.run_sync("get")) == "parse"


@pytest.mark.parametrize("ref", ["a\r\nX-Admin: 1", "a\nb", "a\rb"])
def test_a_line_break_in_a_header_value_is_refused_before_sending(
    project: Any, server: FaultServer, ref: str
) -> None:
    server.script("/orders/1", json({"status": "SHP"}))
    result = project.run_sync("header", {"ref": ref})
    assert kind(result) == "validation"
    assert "line break" in result.error["message"]
    assert server.hits("/orders/1") == []


# -- redirects ----------------------------------------------------------------------------------


def test_a_redirect_is_not_followed_unless_the_connection_allows_it(
    project: Any, server: FaultServer
) -> None:
    server.script("/old", redirect("/new"))
    server.script("/new", json({"status": "SHP"}))
    result = project.run_sync("moved", {"conn": "shop"})
    assert kind(result) == "http_status"
    assert result.error["status"] == 302
    assert "follow_redirects" in result.error["message"]
    assert server.hits("/new") == []


def test_a_same_host_redirect_is_followed_when_allowed(project: Any, server: FaultServer) -> None:
    server.script("/old", redirect("/new", 301))
    server.script("/new", json({"status": "SHP"}))
    result = project.run_sync("moved", {"conn": "follows"})
    assert result.status == "completed", result.error
    assert result.outputs == {"status": "SHP"}
    assert server.hits("/new")[0].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("conn", ["follows", "shop"])
def test_a_redirect_to_another_host_never_reaches_it(
    project: Any, server: FaultServer, other: FaultServer, conn: str
) -> None:
    server.script("/old", redirect(f"{other.url}/steal", 307))
    other.script("/steal", echo())
    result = project.run_sync("moved", {"conn": conn})
    assert result.status == "failed"
    assert other.requests == [], "the credentials went to another host"
    assert TOKEN not in result.to_json()


# -- XML ------------------------------------------------------------------------------------------

XXE = """<?xml version="1.0"?>
<!DOCTYPE order [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<order><status>&xxe;</status></order>"""

LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
        for i in range(1, 10)
    )
    + "]><lolz>&lol9;</lolz>"
)


@pytest.mark.parametrize("body", [XXE, LAUGHS], ids=["xxe", "billion laughs"])
def test_hostile_xml_answers_are_parse_errors(project: Any, server: FaultServer, body: str) -> None:
    server.script("/orders/1", xml(body))
    started = time.monotonic()
    result = project.run_sync("get")
    assert kind(result) == "parse"
    assert "root:" not in result.to_json()
    assert time.monotonic() - started < 1.0


# -- secrets echoed back ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conn", "secret"), [("shop", TOKEN), ("basic", PASSWORD), ("keyed", API_KEY)]
)
def test_a_body_echoing_the_credentials_is_redacted_everywhere(
    projects: Any,
    server: FaultServer,
    tmp_path: Any,
    caplog: pytest.LogCaptureFixture,
    conn: str,
    secret: str,
) -> None:
    import base64
    import logging

    store = tmp_path / "runs.sqlite3"
    project = projects.make(CONNECTIONS, FLOWS, env=SECRETS, store=store)
    server.script("/echo", echo())
    server.script("/refuse", status(500, body=f"refused: {secret}".encode()))
    caplog.set_level(logging.DEBUG)
    result = project.run_sync("echo", {"conn": conn})
    project.close_store()
    assert result.status == "completed", result.error
    sent = server.hits("/echo")[0]
    on_the_wire = str(sent.headers) + str(sent.query)
    forms = {secret, base64.b64encode(f"csflow:{secret}".encode()).decode()}
    assert any(form in on_the_wire for form in forms)  # it was sent, and echoed
    texts = {
        "result": result.to_json(),
        "reply": result.reply or "",
        "logs": caplog.text,
        "store": store.read_bytes().decode("latin-1")
        + (store.with_name(store.name + "-wal").read_bytes().decode("latin-1")
           if store.with_name(store.name + "-wal").exists() else ""),
    }  # fmt: skip
    for where, text in texts.items():
        for form in forms:
            assert form not in text, f"the secret is in the {where}"
    assert "***" in result.reply
