"""Running the Demo Shop: the DemoShop context manager, isolation, python -m demo."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from csflow.demo import DemoShop, create_app
from csflow.demo.server import banner
from csflow.demo.state import DemoConfig


def test_port_zero_binds_a_real_port_and_the_urls_follow(shop: DemoShop) -> None:
    assert shop.port > 0
    assert shop.base_url == f"http://127.0.0.1:{shop.port}"
    assert shop.rest_url == f"{shop.base_url}/api"
    assert shop.erp_url == f"{shop.base_url}/erp"
    assert shop.erp_wsdl_url == f"{shop.base_url}/erp?wsdl"
    assert shop.graphql_url == f"{shop.base_url}/graphql"
    assert httpx.get(f"{shop.base_url}/_admin/health").status_code == 200


def test_env_gives_a_project_everything_it_needs(shop: DemoShop) -> None:
    assert shop.env() == {
        "DEMO_SHOP_URL": shop.rest_url,
        "DEMO_SHOP_TOKEN": "demo-shop-token",
        "DEMO_ERP_URL": shop.erp_url,
        "DEMO_ERP_WSDL": shop.erp_wsdl_url,
        "DEMO_ERP_USER": "erp",
        "DEMO_ERP_PASSWORD": "erp-secret",
        "DEMO_SUBS_URL": shop.graphql_url,
        "DEMO_SUBS_KEY": "subs-key",
    }


def test_credentials_can_be_overridden() -> None:
    with DemoShop(token="t0k", erp_user="u", erp_password="p", graphql_key="k") as s:
        url = f"{s.rest_url}/orders/ORD-1001"
        assert httpx.get(url, headers={"Authorization": "Bearer t0k"}).status_code == 200
        assert (
            httpx.get(url, headers={"Authorization": "Bearer demo-shop-token"}).status_code == 401
        )
        assert httpx.get(s.erp_wsdl_url, auth=("u", "p")).status_code == 200
        assert httpx.get(s.erp_wsdl_url, auth=("erp", "erp-secret")).status_code == 401
        gql = httpx.post(
            s.graphql_url, json={"query": "{ plans { id } }"}, headers={"X-API-Key": "k"}
        )
        assert gql.json()["data"]["plans"][0]["id"] == "basic"
        assert s.env()["DEMO_SHOP_TOKEN"] == "t0k"


def test_instances_never_share_data() -> None:
    auth = {"Authorization": "Bearer demo-shop-token"}
    cancel = (
        '<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:e="http://erp.demo.shop/orders"><soap:Body><e:CancelOrder>'
        "<e:orderNumber>ORD-1001</e:orderNumber><e:reason>test</e:reason>"
        "</e:CancelOrder></soap:Body></soap:Envelope>"
    )
    with DemoShop() as one, DemoShop() as two:
        assert one.port != two.port
        r = httpx.post(one.erp_url, content=cancel, auth=("erp", "erp-secret"))
        assert r.status_code == 200
        assert httpx.get(f"{one.rest_url}/orders/ORD-1001", headers=auth).json()["status"] == "CNL"
        assert httpx.get(f"{two.rest_url}/orders/ORD-1001", headers=auth).json()["status"] == "NEW"
        # create_app builds its own data too.
        assert create_app().state.shop.store.orders["ORD-1001"].status == "pending"


def test_reset_restores_the_seed(fresh_shop: DemoShop, fresh_api: httpx.Client) -> None:
    auth = {"Authorization": f"Bearer {fresh_shop.token}"}
    fresh_shop.app.state.shop.store.cancel_order("ORD-1002", "poke")
    assert fresh_api.get("/orders/ORD-1002").json()["status"] == "CNL"
    r = httpx.post(f"{fresh_shop.base_url}/_admin/reset", headers=auth)
    assert r.json()["reset"] is True
    assert fresh_api.get("/orders/ORD-1002").json()["status"] == "PRC"


def test_stop_closes_the_port() -> None:
    s = DemoShop().start()
    url = f"{s.base_url}/_admin/health"
    assert httpx.get(url).status_code == 200
    s.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url, timeout=1)


def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="did not start"), DemoShop(port=port):
            pass


def test_a_fixed_now_anchors_every_seeded_date() -> None:
    now = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    with DemoShop(now=now) as s:
        order = httpx.get(
            f"{s.rest_url}/orders/ORD-1005", headers={"Authorization": f"Bearer {s.token}"}
        ).json()
        assert order["shipments"][0]["delivered_at"] == "2024-01-10T12:00:00Z"
        assert order["created_at"] == "2024-01-03T12:00:00Z"


async def test_async_with_does_not_block_the_loop() -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)  # one tick per turn of the loop: what the test counts

    task = asyncio.create_task(ticker())
    try:
        async with DemoShop() as s, httpx.AsyncClient() as client:
            r = await client.get(f"{s.base_url}/_admin/health")
            assert r.json()["status"] == "ok"
    finally:
        task.cancel()
    assert ticks > 1  # the loop kept running while the server started and stopped


def test_python_m_demo_prints_urls_and_credentials() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "demo", "--port", "0", "--token", "cli-token"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("Demo Shop running on http://127.0.0.1:")
            base = first.split()[-1]
            lines = [proc.stdout.readline() for _ in range(3)]
            assert "Bearer cli-token" in lines[0]
            assert f"{base}/erp?wsdl" in lines[1] and "erp:erp-secret" in lines[1]
            assert "X-API-Key: subs-key" in lines[2]
            headers = {"Authorization": "Bearer cli-token"}
            r = httpx.get(f"{base}/api/orders/ORD-1001", headers=headers)
            assert r.json()["status"] == "NEW"
        finally:
            proc.terminate()  # SIGTERM: uvicorn shuts down gracefully


def test_the_banner_names_every_backend() -> None:
    text = banner("http://h:1", DemoConfig())
    for part in ("http://h:1/api", "http://h:1/erp?wsdl", "http://h:1/graphql", "demo-shop-token"):
        assert part in text
