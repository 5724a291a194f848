"""No flow runs for a request that fails authentication, on any channel.

The flows here call a custom action that appends a line to a file for every run, so "no run"
is something the test sees, not something it infers. A good request per channel proves the
probe works; the bad ones must leave the file as it was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from channels_support import KEYS, coffield_request, serving, sign, write

PROBE_ACTION = """
    from pathlib import Path

    from csflow import action


    @action("probe.touch")
    def touch(path: str, channel: str) -> dict:
        with Path(path).open("a", encoding="utf-8") as f:
            f.write(channel + "\\n")
        return {"ok": True}
"""


def probe_flow(runs: Path) -> str:
    return f"""
        name: probe
        inputs:
          order_number: {{type: string, required: false}}
          email: {{type: string, required: false}}
          phone: {{type: string, required: false}}
          order_id: {{type: string, required: false}}
          ref_id: {{type: string, required: false}}
          channel: {{type: string, required: false}}
        outputs:
          found: boolean
          orders: list
        steps:
          - call: probe.touch
            with: {{path: "{runs}", channel: "{{{{ channel or 'generic' }}}}"}}
          - set: {{found: true, orders: []}}
          - reply: "probed"
    """


CHANNELS = """
    api:
      type: generic
      path: /v1
      api_keys: [{env: CSFLOW_API_KEY}]
    zipchat:
      type: zipchat
      path: /zipchat
      api_key: {env: ZIPCHAT_API_KEY}
      flow: probe
      inputs: {order_number: "{{ request.order_id }}", channel: zipchat}
    coffield:
      type: coffield
      path: /coffield
      signing_secret: {env: COFFIELD_SECRET}
      kinds:
        order: {flow: probe, inputs: {order_number: "{{ request.reference }}", channel: coffield}}
      status: probed
    orders:
      type: order_lookup
      path: /orders
      api_key: {env: ORDERS_API_KEY}
      flow: probe
      inputs: {email: "{{ request.email }}", channel: orders}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    root = tmp_path_factory.mktemp("probe")
    runs = root / "runs.log"
    write(
        root,
        {
            "flows/probe.yaml": probe_flow(runs),
            "actions/probe.py": PROBE_ACTION,
            "channels.yaml": CHANNELS,
        },
    )
    with serving(root, {**KEYS}) as client:
        yield client, runs


def runs_logged(runs: Path) -> list[str]:
    return runs.read_text().split() if runs.exists() else []


def bad_requests(client: httpx.Client) -> list[httpx.Response]:
    zipchat = {"order_id": "ORD-1", "customer_email": "a@b.co"}
    body, good = coffield_request("ORD-1")
    stale = {**good, "X-Coffield-Timestamp": str(int(time.time()) - 3600)}
    forged = {**good, "X-Coffield-Signature": sign("guessed-secret", body)}
    unsigned = {k: v for k, v in good.items() if k != "X-Coffield-Signature"}
    unknown_tenant_body = json.dumps({"kind": "order", "reference": "ORD-1", "tenant_id": 7})
    wrong_tenant = {**good, "X-Coffield-Tenant-Id": "7"}
    return [
        client.post("/v1/flows/probe/runs", json={"inputs": {}}),
        client.post("/v1/flows/probe/runs", json={"inputs": {}}, headers={"x-api-key": "x"}),
        client.post(
            "/v1/flows/probe/runs",
            json={"inputs": {}},
            headers={"x-api-key": KEYS["ZIPCHAT_API_KEY"]},
        ),
        client.get("/zipchat", params=zipchat),
        client.get("/zipchat", params=zipchat, headers={"x-api-key": KEYS["CSFLOW_API_KEY"]}),
        client.post("/coffield", content=body, headers=unsigned),
        client.post("/coffield", content=body, headers=forged),
        client.post("/coffield", content=body, headers=stale),
        client.post("/coffield", content=unknown_tenant_body, headers=wrong_tenant),
        client.get("/orders", params={"email": "a@b.co"}),
        client.get("/orders", params={"email": "a@b.co"}, headers={"Authorization": "Bearer x"}),
    ]


def test_no_flow_runs_for_a_request_that_fails_authentication(probe):
    client, runs = probe
    before = runs_logged(runs)
    answers = bad_requests(client)
    assert [r.status_code for r in answers] == [401] * len(answers)
    assert runs_logged(runs) == before


def test_the_probe_sees_every_authenticated_run(probe):
    client, runs = probe
    before = runs_logged(runs)
    body, headers = coffield_request("ORD-1")
    answers = [
        client.post(
            "/v1/flows/probe/runs",
            json={"inputs": {}},
            headers={"x-api-key": KEYS["CSFLOW_API_KEY"]},
        ),
        client.get(
            "/zipchat",
            params={"order_id": "ORD-1", "customer_email": "a@b.co"},
            headers={"x-api-key": KEYS["ZIPCHAT_API_KEY"]},
        ),
        client.post("/coffield", content=body, headers=headers),
        client.get(
            "/orders", params={"email": "a@b.co"}, headers={"x-api-key": KEYS["ORDERS_API_KEY"]}
        ),
    ]
    assert [r.status_code for r in answers] == [200] * 4
    assert runs_logged(runs)[len(before) :] == ["generic", "zipchat", "coffield", "orders"]


def test_an_oversized_body_is_refused_before_any_run(probe):
    client, runs = probe
    before = runs_logged(runs)
    big = {"inputs": {"pad": "x" * (64 * 1024)}}
    r = client.post("/v1/flows/probe/runs", json=big, headers={"x-api-key": KEYS["CSFLOW_API_KEY"]})
    assert r.status_code == 413
    assert runs_logged(runs) == before
