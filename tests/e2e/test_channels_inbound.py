"""What a hostile or broken client can do to `csflow serve` (issue 10: items 32, 33, 38, 40).

Real sockets on 127.0.0.1: a client that sends nothing, a head that never ends, a body
trickled a byte at a time, one that leaves mid-body, a Host header that asks for a redirect,
text that is not Unicode. Every wait is bounded; nothing here sleeps to synchronise.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from channels_support import (
    KEYS,
    LOOKUP_FLOW,
    PATIENT_SHOP,
    coffield_request,
    wait_for_access_lines,
    write,
)
from support import SHIPPED

from csflow.serve.app import create_app
from csflow.serve.http_limits import Limits
from csflow.serve.server import ChannelServer

QUICK = Limits(head_timeout=0.5, max_head_bytes=4096, keep_alive=1, concurrency=1000)
BOUND = 5.0  # no answer here may take longer: the server's own limits are all under it


@contextmanager
def raw_server(project: Path, env: dict[str, str], limits: Limits = QUICK) -> Iterator[str]:
    with ChannelServer(create_app(project, env), limits=limits) as server:
        yield server.url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=BOUND)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (within BOUND)."""
    sock.settimeout(BOUND)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture(scope="module")
def slow_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generic and a Coffield channel with a 1 s deadline, so that a trickled body ends soon."""
    return write(
        tmp_path_factory.mktemp("inbound"),
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "channels.yaml": """
                api:
                  type: generic
                  path: /v1
                  api_keys: [{env: CSFLOW_API_KEY}]
                  timeout: 1s
                coffield:
                  type: coffield
                  path: /coffield/lookup
                  signing_secret: {env: COFFIELD_SECRET}
                  timeout: 1s
                  kinds:
                    order: {flow: lookup, inputs: {order_number: "{{ request.reference }}"}}
                  found: "{{ outputs.found }}"
            """,
        },
    )


@pytest.fixture(scope="module")
def slow_url(slow_project: Path, shop_env: dict[str, str]) -> Iterator[str]:
    with raw_server(slow_project, {**shop_env, **KEYS}) as url:
        yield url


# ----------------------------------------------------------------- 32: inbound timeouts


def test_a_connection_that_sends_nothing_is_closed(slow_url: str) -> None:
    started = time.monotonic()
    with connect(slow_url) as sock:
        answer = read_until_closed(sock)
    assert time.monotonic() - started < QUICK.head_timeout + 1.0
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_head_that_never_ends_is_cut_off_while_it_still_trickles(slow_url: str) -> None:
    started = time.monotonic()
    answer = b""
    with connect(slow_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.05)  # the pace of the trickle, not a wait for the server
        while time.monotonic() - started < BOUND:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:  # the server closed it
                break
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                continue
            answer += chunk
            if not chunk:
                break
    assert time.monotonic() - started < QUICK.head_timeout + 1.5
    assert answer.startswith(b"HTTP/1.1 408")


def test_a_head_over_the_limit_is_refused(slow_url: str) -> None:
    with connect(slow_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 8192 + b"\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431")


def test_a_trickled_body_gets_the_channels_answer_within_its_deadline(slow_url: str) -> None:
    started = time.monotonic()
    with connect(slow_url) as sock:
        sock.sendall(
            b"POST /v1/flows/lookup/runs HTTP/1.1\r\nHost: x\r\n"
            b"x-api-key: " + KEYS["CSFLOW_API_KEY"].encode() + b"\r\n"
            b"content-type: application/json\r\ncontent-length: 100\r\n\r\n{"
        )
        sock.settimeout(0.1)  # one byte per 0.1 s: the trickle's pace
        answer = b""
        while time.monotonic() - started < BOUND and not answer:
            try:
                sock.sendall(b" ")
                answer = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
    assert time.monotonic() - started < 1.0 + 1.0  # the channel's 1 s, and a margin
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    assert json.loads(body)["error"] == "timeout"


def test_a_trickled_coffield_body_is_a_receiver_error_in_time(slow_url: str) -> None:
    body, headers = coffield_request("ORD-1003")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    started = time.monotonic()
    with connect(slow_url) as sock:
        sock.sendall(
            f"POST /coffield/lookup HTTP/1.1\r\nHost: x\r\n{head}"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        sock.settimeout(BOUND)
        answer = sock.recv(65536)
    assert time.monotonic() - started < 1.0 + 1.0
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 503")
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error_code"] == "receiver_error"


def test_connections_over_the_limit_are_refused_at_once(
    slow_project: Path, shop_env: dict[str, str]
) -> None:
    limits = Limits(head_timeout=BOUND, keep_alive=1, concurrency=2)
    with raw_server(slow_project, {**shop_env, **KEYS}, limits) as url:
        idle = [connect(url), connect(url)]
        try:
            r = httpx.get(f"{url}/healthz", timeout=BOUND)
        finally:
            for sock in idle:
                sock.close()
    assert r.status_code == 503


# ------------------------------------------------------- 38: no redirect to the Host header


def test_a_trailing_slash_is_a_404_never_a_redirect(shop_env: dict[str, str]) -> None:
    with raw_server(SHIPPED, {**shop_env, **KEYS}) as url:
        r = httpx.get(
            f"{url}/zipchat/order/",
            params={"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"},
            headers={"Host": "evil.com", "x-api-key": KEYS["ZIPCHAT_API_KEY"]},
            follow_redirects=False,
        )
    assert r.status_code == 404 and "location" not in r.headers
    assert r.json()["error"] == "not_found"
    assert "shipped@demo.shop" not in r.text and "evil.com" not in r.text


# ------------------------------------------------------ 40: a client that leaves is not a bug


def test_a_client_that_leaves_mid_body_is_logged_as_gone(
    slow_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="csflow")
    caplog.clear()
    with connect(slow_url) as sock:
        sock.sendall(
            b"POST /v1/flows/lookup/runs HTTP/1.1\r\nHost: x\r\n"
            b"x-api-key: " + KEYS["CSFLOW_API_KEY"].encode() + b"\r\n"
            b"content-length: 100\r\n\r\n{"
        )
    lines = [line for line in wait_for_access_lines(caplog, 1) if line["logger"] == "csflow.access"]
    assert lines and lines[-1]["outcome"] == "client_gone"
    assert lines[-1]["level"] == "info" and "internal_error" not in lines[-1]


# ---------------------------------------------- 33: text that is not Unicode is the caller's


def test_a_lone_surrogate_is_a_400_naming_the_input(slow_url: str) -> None:
    body = b'{"inputs": {"order_number": "ORD-1003\\ud800"}}'
    r = httpx.post(
        f"{slow_url}/v1/flows/lookup/runs",
        content=body,
        headers={"x-api-key": KEYS["CSFLOW_API_KEY"], "content-type": "application/json"},
        timeout=BOUND,
    )
    assert r.status_code == 400
    assert r.json()["error"] == "bad_inputs" and "inputs.order_number" in r.json()["message"]


def test_a_lone_surrogate_is_coffields_invalid_reference(slow_url: str) -> None:
    body, headers = coffield_request("ORD-1003\ud800")  # json.dumps writes it as \\ud800
    from channels_support import sign

    headers["X-Coffield-Signature"] = sign(KEYS["COFFIELD_SECRET"], body)
    r = httpx.post(f"{slow_url}/coffield/lookup", content=body, headers=headers, timeout=BOUND)
    assert r.status_code == 200
    assert r.json()["ok"] is False and r.json()["error_code"] == "invalid_reference"
    assert "reference" in r.json()["message"]
