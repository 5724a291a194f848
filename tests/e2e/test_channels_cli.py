"""``csflow serve`` and ``csflow demo --serve`` as a user runs them: real processes, real HTTP."""

from __future__ import annotations

import json
import re
import shutil
import signal
import ssl
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from channels_support import KEYS, LOOKUP_FLOW, PATIENT_SHOP, ShopAdmin, write
from support import csflow, csflow_running, wait_until

from csflow.demo.server import DemoShop


def held(shop: DemoShop) -> int:
    """How many requests the shop holds in its injected delay now."""
    return shop.app.state.shop.held


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
    with csflow_running("serve", "-p", str(project), "--port", "0", env=env) as proc:
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
            wait_until(lambda: held(shop) == 1, what="the request to wait on the merchant")
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
    proc = csflow("serve", "-p", str(project), "--port", "0", env=shop.env(), unset=["NOPE_KEY"])
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
        args = ("serve", "-p", str(project), "--port", str(other.port))
        proc = csflow(*args, env={**shop.env(), **KEYS})
    assert proc.returncode == 2
    assert "cannot listen on" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="the printed commands are curl commands")
def test_demo_serve_prints_a_curl_per_channel_that_works():
    with csflow_running("demo", "--serve", env={}) as proc:
        proc.wait_for("Serving until Ctrl", stream="out", within=30)
        text = "".join(proc.out)
        commands = [line.strip() for line in text.splitlines() if line.startswith("curl ")]
        assert len(commands) == 5
        answers = [
            subprocess.run(["bash", "-c", c], capture_output=True, text=True, timeout=20).stdout
            for c in commands
        ]
        code, _, err = proc.stop(signal.SIGINT)
    generic, zipchat, coffield, orders, chat = answers
    assert json.loads(generic)["status"] == "completed"
    assert "HTTP/1.1 200" in zipchat and "1Z999AA10123456784" in zipchat
    assert json.loads(coffield)["ok"] is True
    assert json.loads(orders)[0]["id"] == "ORD-1001"
    assert json.loads(chat)["intent"]["name"] == "wismo"
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
    with csflow_running(*args, env={**shop.env(), **KEYS}) as proc:
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
