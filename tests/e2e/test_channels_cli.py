"""``csflow serve`` and ``csflow demo --serve`` as a user runs them: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_channels_support import KEYS, LOOKUP_FLOW, PATIENT_SHOP, ShopAdmin, write

from csflow.demo.server import DemoShop

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """A csflow process whose output lines are collected, as they come, by two threads."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "csflow", *args],
            cwd=ROOT,
            env={**os.environ, **env, "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
            for pipe, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: Any, lines: list[str]) -> None:
        for line in pipe:
            lines.append(line)

    def wait_for(self, pattern: str, stream: str = "err", within: float = 20) -> re.Match[str]:
        lines = self.err if stream == "err" else self.out
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for line in list(lines):
                m = re.search(pattern, line)
                if m:
                    return m
            if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} in:\n{''.join(lines)}")

    def stop(self, sig: int | None = signal.SIGTERM) -> tuple[int, str, str]:
        """Send ``sig`` (None: it was sent already) and wait for the process to end."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=20)
        for reader in self._readers:
            reader.join(5)
        return code, "".join(self.out), "".join(self.err)


@contextmanager
def csflow(*args: str, env: dict[str, str]) -> Iterator[Proc]:
    proc = Proc(list(args), env)
    try:
        yield proc
    finally:
        if proc.proc.poll() is None:
            proc.proc.kill()
            proc.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def shop() -> Iterator[DemoShop]:
    with DemoShop() as shop:
        yield shop


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(
        tmp_path,
        {
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "channels.yaml": """
                zipchat:
                  type: zipchat
                  path: /zipchat
                  api_key: {env: ZIPCHAT_API_KEY}
                  flow: lookup
                  inputs: {order_number: "{{ request.order_id }}"}
                  found: "{{ outputs.found }}"
            """,
        },
    )


def test_serve_answers_logs_json_and_stops_gracefully_with_a_request_in_flight(shop, project):
    env = {**shop.env(), **KEYS}
    with csflow("serve", "-p", str(project), "--port", "0", env=env) as proc:
        url = json.loads(proc.wait_for(r'\{.*"serving".*\}').group(0))["url"]
        client = httpx.Client(base_url=url, timeout=10)
        assert client.get("/healthz").json() == {"status": "ok"}
        key = {"x-api-key": KEYS["ZIPCHAT_API_KEY"]}
        query = {"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"}
        answers: list[httpx.Response] = []
        with ShopAdmin(shop).slow(1_000):
            slow = threading.Thread(
                target=lambda: answers.append(client.get("/zipchat", params=query, headers=key))
            )
            slow.start()
            time.sleep(0.3)  # the request is in flight, waiting on the merchant
            proc.proc.send_signal(signal.SIGTERM)
            slow.join(10)
        code, out, err = proc.stop(None)
    assert code == 0
    assert [r.status_code for r in answers] == [200]  # it finished: no cut connection
    assert answers[0].json()["context"] == "Order ORD-1003 is shipped."
    access = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert {a["path"] for a in access} == {"/healthz", "/zipchat"}
    assert all(set(a) >= {"ts", "level", "method", "path", "status", "duration_ms"} for a in access)
    for line in (out + err).splitlines():
        assert line.startswith("{"), f"not a JSON line: {line!r}"
        json.loads(line)
    assert KEYS["ZIPCHAT_API_KEY"] not in out + err and "customer_email" not in out + err
    assert "Traceback" not in err


def test_serve_with_a_broken_channels_yaml_lists_problems_and_exits_2(shop, project):
    (project / "channels.yaml").write_text(
        "zipchat:\n  type: zipchat\n  path: /z\n  api_key: {env: NOPE_KEY}\n  flow: lookpu\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "csflow", "serve", "-p", str(project), "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**{k: v for k, v in os.environ.items() if k != "NOPE_KEY"}, **shop.env()},
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert any(
        re.match(r".*channels\.yaml:4:\d+: environment variable 'NOPE_KEY' is not set", ln)
        for ln in lines
    )
    assert any("unknown flow 'lookpu' (did you mean 'lookup'?)" in ln for ln in lines)
    assert "Traceback" not in proc.stderr


def test_serve_on_a_taken_port_is_a_usage_error(shop, project):
    with DemoShop() as other:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "csflow",
                "serve",
                "-p",
                str(project),
                "--port",
                str(other.port),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **shop.env(), **KEYS},
        )
    assert proc.returncode == 2
    assert "cannot listen on" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed commands are curl commands")
def test_demo_serve_prints_a_curl_per_channel_that_works():
    with csflow("demo", "--serve", env={}) as proc:
        proc.wait_for("Serving until Ctrl", stream="out", within=30)
        text = "".join(proc.out)
        commands = [line.strip() for line in text.splitlines() if line.startswith("curl ")]
        assert len(commands) == 4
        answers = [
            subprocess.run(["bash", "-c", c], capture_output=True, text=True, timeout=20).stdout
            for c in commands
        ]
        code, _, err = proc.stop(signal.SIGINT)
    generic, zipchat, coffield, orders = answers
    assert json.loads(generic)["status"] == "completed"
    assert "HTTP/1.1 200" in zipchat and "1Z999AA10123456784" in zipchat
    assert json.loads(coffield)["ok"] is True
    assert json.loads(orders)[0]["id"] == "ORD-1001"
    assert code == 0 and "Traceback" not in err


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_serve_speaks_https_with_a_certificate(shop, project, tmp_path):
    cert, key = self_signed(tmp_path)
    args = ["serve", "-p", str(project), "--port", "0"]
    args += ["--ssl-certfile", str(cert), "--ssl-keyfile", str(key)]
    with csflow(*args, env={**shop.env(), **KEYS}) as proc:
        url = json.loads(proc.wait_for(r'\{.*"serving".*\}').group(0))["url"]
        assert url.startswith("https://127.0.0.1:")
        r = httpx.get(
            f"{url}/zipchat",
            params={"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"},
            headers={"x-api-key": KEYS["ZIPCHAT_API_KEY"]},
            verify=ssl.create_default_context(cafile=str(cert)),
        )
        code, _, _ = proc.stop()
    assert r.status_code == 200 and r.json()["context"] == "Order ORD-1003 is shipped."
    assert code == 0


def test_served_runs_are_recorded(tmp_path, shop_env) -> None:
    """`csflow serve` records the runs it serves, like `csflow run` (docs/decisions.md)."""
    import asyncio

    import httpx

    from csflow.adapters.stores import open_store
    from csflow.serve.app import create_app

    store = tmp_path / "runs.sqlite3"
    keys = {
        "ZIPCHAT_API_KEY": "zk-recorded",
        "CSFLOW_API_KEY": "ak-1",
        "COFFIELD_SECRET": "cs-1",
        "ORDERS_API_KEY": "ok-1",
    }
    app = create_app("flows", {**shop_env, **keys}, store=store)

    async def ask() -> int:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://csflow.test") as client:
            r = await client.get(
                "/zipchat/order",
                params={"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"},
                headers={"x-api-key": "zk-recorded"},
            )
        await app.channels.aclose()
        return r.status_code

    assert asyncio.run(ask()) == 200
    runs = open_store(store, create=False).list_runs(limit=10)
    assert [r.flow for r in runs] == ["wismo"]
    assert runs[0].status == "completed" and runs[0].inputs["order_number"] == "ORD-1003"
