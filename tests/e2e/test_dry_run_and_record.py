"""`csflow run --dry-run` sends no write, whatever the protocol; `--record` makes a test case."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from support import ROOT, csflow

from csflow import Project, RunResult
from csflow.demo.server import DemoShop
from csflow.engine.dry_run import PREVIEW


@pytest.fixture(scope="module")
def env(shop: DemoShop) -> dict[str, str]:
    return {**os.environ, **shop.env()}


def _order_status(shop: DemoShop, number: str) -> str:
    r = httpx.get(
        f"{shop.rest_url}/orders/{number}", headers={"Authorization": f"Bearer {shop.token}"}
    )
    return r.json()["status"]


def _subscription_status(shop: DemoShop, sub_id: str) -> str:
    r = httpx.post(
        shop.graphql_url,
        headers={"X-API-Key": shop.graphql_key},
        json={
            "query": "query($id: ID!) { subscription(id: $id) { status } }",
            "variables": {"id": sub_id},
        },
    )
    return r.json()["data"]["subscription"]["status"]


async def test_rest_writes_stay_home(shop: DemoShop, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "connections.yaml").write_text(
        f"admin:\n  type: rest\n  base_url: {shop.base_url}\n  auth: {{type: bearer, token: {{env: T}}}}\n"
    )
    (tmp_path / "flows" / "switch_off.yaml").write_text(
        "name: switch_off\noutputs: {healthy: boolean}\nsteps:\n"
        "  - id: outage\n    call: http\n    with: {connection: admin, method: POST, path: /_admin/outage, json: {'on': true}}\n"
        "  - id: remove\n    call: http\n    with: {connection: admin, method: DELETE, path: /_admin/outage}\n"
        "  - id: health\n    call: http\n    with: {connection: admin, path: /_admin/health}\n"
        "  - set: {healthy: '{{ steps.health.ok }}'}\n"
    )
    project = Project.load(tmp_path, environ={"T": shop.token})
    result = await project.run("switch_off", dry_run=True)
    await project.aclose()
    assert result.status == "completed", result.error
    records = {s.id: s for s in result.steps if s.id}
    assert records["outage"].dry_run == {
        "method": "POST",
        "url": f"{shop.base_url}/_admin/outage",
        "body": '{"on": true}',
    }
    assert (
        records["remove"].dry_run["method"] == "DELETE"
    )  # for REST every non-read method is a write here
    assert records["health"].dry_run is None and records["health"].status == 200  # reads are made
    r = httpx.get(
        f"{shop.rest_url}/orders",
        params={"email": "shipped@demo.shop"},
        headers={"Authorization": f"Bearer {shop.token}"},
    )
    assert r.status_code == 200  # the outage switch was never sent
    assert shop.token not in result.to_json()


async def test_soap_writes_stay_home(shop: DemoShop, env: dict[str, str]) -> None:
    project = Project.load(ROOT / "flows", environ=env)
    result = await project.run("cancel_order", {"order_number": "ORD-1001"}, dry_run=True)
    await project.aclose()
    cancel = next(s for s in result.steps if s.id == "cancel")
    assert cancel.dry_run is not None and "CancelOrder" in cancel.dry_run["body"]
    assert cancel.dry_run["url"].endswith("/erp")
    assert _order_status(shop, "ORD-1001") == "NEW"
    reads = [s for s in result.steps if s.action == "http"]
    assert reads and all(s.status == 200 for s in reads)  # the order lookup went out for real


async def test_graphql_mutations_stay_home_and_queries_are_made(
    shop: DemoShop, env: dict[str, str]
) -> None:
    project = Project.load(ROOT / "flows", environ=env)
    before = _subscription_status(shop, "SUB-2001")
    result = await project.run(
        "subscription_cancel",
        {"email": "active@demo.shop", "reason": "too much coffee"},
        dry_run=True,
    )
    await project.aclose()
    kept = [s for s in result.steps if s.dry_run is not None]
    assert len(kept) == 1 and "cancelSubscription" in kept[0].dry_run["body"]
    assert any(
        s.action == "graphql" and s.dry_run is None and s.ok for s in result.steps
    )  # the lookup query ran
    assert _subscription_status(shop, "SUB-2001") == before == "ACTIVE"


def test_cli_dry_run_shows_what_was_not_sent(shop: DemoShop, env: dict[str, str]) -> None:
    proc = csflow(
        "run",
        "cancel_order",
        "-p",
        "flows",
        "--dry-run",
        "--json",
        "-i",
        "order_number=ORD-1002",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [s["dry_run"]["method"] for s in out["steps"] if "dry_run" in s] == ["POST"]
    assert _order_status(shop, "ORD-1002") == "PRC"


def test_record_makes_a_case_that_replays(
    shop: DemoShop, env: dict[str, str], shipped_copy: Path
) -> None:
    project = shipped_copy
    case = project / "tests" / "flows" / "recorded.yaml"
    case.parent.mkdir(parents=True)
    rec = csflow(
        "run",
        "wismo",
        "-p",
        str(project),
        "--record",
        str(case),
        "-i",
        "email=shipped@demo.shop",
        env=env,
    )
    assert rec.returncode == 0, rec.stderr
    text = case.read_text()
    assert "shipped@demo.shop" not in text and shop.token not in text  # scrubbed
    assert "person1@example.com" in text and "/orders" in text
    replay = csflow("test", "-p", str(project), env=env, columns=200)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "1 passed, 0 failed" in replay.stdout


@pytest.mark.parametrize(
    ("flow", "inputs"),
    [
        ("cancel_order", ["order_number=ORD-1001"]),  # a SOAP write kept back
        # a GraphQL mutation kept back; the reply greets the customer by first name
        ("subscription_cancel", ["email=active@demo.shop", "reason=too much coffee"]),
    ],
)
def test_a_recorded_dry_run_replays_as_a_dry_run(
    shop: DemoShop, env: dict[str, str], shipped_copy: Path, flow: str, inputs: list[str]
) -> None:
    project = shipped_copy
    case = project / "tests" / "flows" / "recorded.yaml"
    case.parent.mkdir(parents=True)
    rec = csflow(
        "run",
        flow,
        "-p",
        str(project),
        "--dry-run",
        "--record",
        str(case),
        *[arg for pair in inputs for arg in ("-i", pair)],
        env=env,
    )
    assert rec.returncode == 0, rec.stderr
    recorded = case.read_text()
    assert "dry_run: true" in recorded
    assert "CancelOrder" not in recorded and "cancelSubscription" not in recorded  # kept back
    for personal in ("active@demo.shop", "Noah", "Fischer", "+49 160 9876 5432"):
        assert personal not in recorded
    replay = csflow("test", "-p", str(project), env=env, columns=200)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "1 passed, 0 failed" in replay.stdout
    assert _order_status(shop, "ORD-1001") == "NEW"
    assert _subscription_status(shop, "SUB-2001") == "ACTIVE"


# -- what a dry run says: a preview, with no blank and no claim of a write it kept back --------

DRY_RUN_PROJECT = Path(__file__).parent / "data" / "dry_run"
# A reply with a hole in it: a value rendered as nothing, or as Python's or JSON's none.
BLANK = re.compile(r"  | \.| ,|: \.|\bNone\b|\bnull\b")


def _assert_a_preview(result: RunResult) -> None:
    assert result.status == "completed", result.error
    assert result.dry_run
    assert result.reply is not None and result.reply.startswith(PREVIEW), result.reply
    assert not BLANK.search(result.reply), result.reply
    assert any(s.dry_run is not None for s in result.steps)


async def test_a_rest_write_kept_back_is_a_preview_and_not_an_output(shop: DemoShop) -> None:
    environ = {"DEMO_SHOP_BASE": shop.base_url, "DEMO_SHOP_TOKEN": shop.token}
    project = Project.load(DRY_RUN_PROJECT, environ=environ)
    result = await project.run("outage_on", dry_run=True)
    await project.aclose()
    _assert_a_preview(result)
    assert result.reply == PREVIEW + "The outage switch is on."
    assert result.outputs == {"switched": None, "down": None}  # nothing was switched
    assert result.preview_outputs == {"switched": True, "down": []}
    assert _order_status(shop, "ORD-1001") == "NEW"  # the REST API is not down


async def test_a_soap_write_kept_back_claims_no_cancellation(
    shop: DemoShop, env: dict[str, str]
) -> None:
    project = Project.load(ROOT / "flows", environ=env)
    result = await project.run("cancel_order", {"order_number": "ORD-1002"}, dry_run=True)
    await project.aclose()
    _assert_a_preview(result)
    assert "is cancelled" in result.reply and "refund" in result.reply
    assert result.outputs["cancelled"] is None and result.outputs["outcome"] is None
    assert result.outputs["order_status"] == "processing"  # what the order really is
    assert result.preview_outputs == {
        "cancelled": True,
        "order_status": "cancelled",
        "outcome": "cancelled",
    }
    assert _order_status(shop, "ORD-1002") == "PRC"


@pytest.mark.parametrize(
    ("flow", "inputs"),
    [
        ("subscription_pause", {"email": "active@demo.shop", "until": "+20d"}),
        ("subscription_refund", {"email": "active@demo.shop"}),
        ("subscription_change_plan", {"email": "active@demo.shop", "plan": "premium"}),
        ("subscription_cancel", {"email": "active@demo.shop", "reason": "too much coffee"}),
    ],
)
async def test_a_graphql_mutation_kept_back_leaves_no_blank_in_the_reply(
    shop: DemoShop, env: dict[str, str], flow: str, inputs: dict[str, str]
) -> None:
    if inputs.get("until") == "+20d":
        inputs = {**inputs, "until": (dt.date.today() + dt.timedelta(days=20)).isoformat()}
    project = Project.load(ROOT / "flows", environ=env)
    result = await project.run(flow, inputs, dry_run=True)
    await project.aclose()
    _assert_a_preview(result)
    assert result.outputs["outcome"] is None and result.preview_outputs["outcome"]
    assert _subscription_status(shop, "SUB-2001") == "ACTIVE"


def test_cli_dry_run_shows_the_preview_and_what_it_would_return(
    shop: DemoShop, env: dict[str, str]
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "csflow",
            "run",
            "cancel_order",
            "-p",
            "flows",
            "--dry-run",
            "-i",
            "order_number=ORD-1001",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**env, "COLUMNS": "200"},
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "reply  " + PREVIEW + "Your order ORD-1001 is cancelled." in proc.stdout
    would = proc.stdout.split("would return")[1]
    assert "cancelled     true" in would.replace("outcome", "")  # under the preview, not above
    assert "cancelled     true" not in proc.stdout.split("would return")[0]
    assert _order_status(shop, "ORD-1001") == "NEW"
