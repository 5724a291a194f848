"""Tenants: several merchants on one server, picked by their key or their Coffield tenant id.

- the served project itself: the Demo Shop "main";
- ``acme``: a project folder of its own (its own flow, its own replies), same shop;
- ``globex``: the served project's flows with its own environment, whose DEMO_SHOP_URL points
  at a second Demo Shop. Taking that one offline shows which shop each tenant's runs call.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from channels_support import (
    KEYS,
    LOOKUP_FLOW,
    PATIENT_SHOP,
    ShopAdmin,
    coffield_request,
    serving,
    write,
)

from csflow.demo.server import DemoShop

TENANT_KEYS = {
    "ACME_ZIPCHAT_KEY": "acme-zipchat-key-0001",
    "GLOBEX_ZIPCHAT_KEY": "globex-zipchat-key-0001",
    "ACME_COFFIELD_SECRET": "acme-coffield-secret-0001",
    "ACME_API_KEY": "acme-generic-key-0001",
}

CHANNELS = """
    tenants:
      acme: {project: acme}
      globex: {env: {DEMO_SHOP_URL: {env: GLOBEX_SHOP_URL}}}
    api:
      type: generic
      path: /v1
      api_keys: [{env: CSFLOW_API_KEY}]
      tenants:
        acme: {api_keys: [{env: ACME_API_KEY}]}
    zipchat:
      type: zipchat
      path: /zipchat
      api_key: {env: ZIPCHAT_API_KEY}
      flow: lookup
      inputs: {order_number: "{{ request.order_id }}"}
      found: "{{ outputs.found }}"
      tenants:
        acme: {api_key: {env: ACME_ZIPCHAT_KEY}}
        globex: {api_key: {env: GLOBEX_ZIPCHAT_KEY}}
    coffield:
      type: coffield
      path: /coffield
      signing_secret: {env: COFFIELD_SECRET}
      tenant_id: 42
      kinds:
        order: {flow: lookup, inputs: {order_number: "{{ request.reference }}"}}
      found: "{{ outputs.found }}"
      status: "{{ outputs.order_status }}"
      tenants:
        acme: {tenant_id: 77, signing_secret: {env: ACME_COFFIELD_SECRET}}
"""


@pytest.fixture(scope="module")
def shops() -> Iterator[tuple[DemoShop, DemoShop]]:
    with DemoShop() as main, DemoShop() as globex:
        yield main, globex


@pytest.fixture(scope="module")
def server(
    shops: tuple[DemoShop, DemoShop], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[httpx.Client]:
    main, globex = shops
    root = tmp_path_factory.mktemp("tenants")
    write(
        root,
        {
            "channels.yaml": CHANNELS,
            "connections.yaml": PATIENT_SHOP,
            "flows/lookup.yaml": LOOKUP_FLOW,
            "flows/hello.yaml": "name: hello\nsteps:\n  - reply: hello\n",
            "acme/connections.yaml": PATIENT_SHOP,
            "acme/flows/lookup.yaml": LOOKUP_FLOW.replace('reply: "Order', 'reply: "Acme: order'),
        },
    )
    env = {**main.env(), **KEYS, **TENANT_KEYS, "GLOBEX_SHOP_URL": globex.rest_url}
    with serving(root, env) as client:
        yield client


def zipchat(client: httpx.Client, key: str) -> httpx.Response:
    params = {"order_id": "ORD-1003", "customer_email": "shipped@demo.shop"}
    return client.get("/zipchat", params=params, headers={"x-api-key": key})


def test_the_key_picks_the_tenant(server):
    assert (
        zipchat(server, KEYS["ZIPCHAT_API_KEY"]).json()["context"] == "Order ORD-1003 is shipped."
    )
    assert zipchat(server, TENANT_KEYS["ACME_ZIPCHAT_KEY"]).json()["context"] == (
        "Acme: order ORD-1003 is shipped."
    )
    assert zipchat(server, TENANT_KEYS["GLOBEX_ZIPCHAT_KEY"]).status_code == 200


def test_a_tenants_environment_points_its_connections_elsewhere(server, shops):
    _, globex = shops
    with ShopAdmin(globex).down():
        assert zipchat(server, TENANT_KEYS["GLOBEX_ZIPCHAT_KEY"]).status_code == 503
        assert zipchat(server, KEYS["ZIPCHAT_API_KEY"]).status_code == 200
        assert zipchat(server, TENANT_KEYS["ACME_ZIPCHAT_KEY"]).status_code == 200


def test_an_unknown_key_is_no_tenant(server):
    assert zipchat(server, "initech-zipchat-key-0001").status_code == 401


def test_the_coffield_tenant_id_picks_the_tenant_and_its_secret(server):
    body, headers = coffield_request("ORD-1003", tenant_id=42)
    assert server.post("/coffield", content=body, headers=headers).json()["summary"] == (
        "Order ORD-1003 is shipped."
    )
    secret = TENANT_KEYS["ACME_COFFIELD_SECRET"]
    body, headers = coffield_request("ORD-1003", tenant_id=77, secret=secret)
    assert server.post("/coffield", content=body, headers=headers).json()["summary"] == (
        "Acme: order ORD-1003 is shipped."
    )


@pytest.mark.parametrize(
    ("tenant_id", "secret"),
    [
        (99, KEYS["COFFIELD_SECRET"]),  # unknown tenant: the served project is pinned to 42
        (77, KEYS["COFFIELD_SECRET"]),  # acme's id, signed with another tenant's secret
        (42, TENANT_KEYS["ACME_COFFIELD_SECRET"]),
    ],
)
def test_an_unknown_tenant_or_another_tenants_secret_is_unauthorized(server, tenant_id, secret):
    body, headers = coffield_request("ORD-1003", tenant_id=tenant_id, secret=secret)
    r = server.post("/coffield", content=body, headers=headers)
    assert r.status_code == 401
    assert r.json() == {"ok": False, "error_code": "unauthorized"}


def test_a_tenant_runs_only_the_flows_of_its_project(server):
    r = server.post(
        "/v1/flows/lookup/runs",
        json={"inputs": {"order_number": "ORD-1003"}},
        headers={"x-api-key": TENANT_KEYS["ACME_API_KEY"]},
    )
    assert r.status_code == 200 and r.json()["reply"] == "Acme: order ORD-1003 is shipped."
    hello = {"json": {"inputs": {}}}
    r = server.post(
        "/v1/flows/hello/runs", headers={"x-api-key": TENANT_KEYS["ACME_API_KEY"]}, **hello
    )
    assert r.status_code == 404
    r = server.post("/v1/flows/hello/runs", headers={"x-api-key": KEYS["CSFLOW_API_KEY"]}, **hello)
    assert r.status_code == 200 and r.json()["reply"] == "hello"
