"""`csflow inspect`: REST fields with their JMESPath, SOAP operations, GraphQL fields."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jmespath

ROOT = Path(__file__).resolve().parents[2]


def csflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csflow", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        timeout=60,
    )


def test_every_leaf_path_reaches_its_value() -> None:
    from csflow.cli.commands.inspect import leaves

    doc = {"a": {"b": [1, {"c": "x"}]}, "odd key": True, "empty": [], "n": None}
    rows = list(leaves(doc))
    assert [p for p, _ in rows] == ["a.b[0]", "a.b[1].c", '"odd key"', "empty", "n"]
    for path, value in rows:
        assert jmespath.search(path, doc) == value


def test_rest_inspect_lists_fields_of_a_live_answer(shop_env: dict[str, str]) -> None:
    proc = csflow("inspect", "shop", "--get", "/orders/ORD-1003", "-p", "flows", env=shop_env)
    assert proc.returncode == 0, proc.stderr
    assert "→ 200" in proc.stdout
    line = next(row for row in proc.stdout.splitlines() if row.startswith("customer.email"))
    assert line.split()[-1] == '"shipped@demo.shop"'
    assert any(row.startswith("shipments[0].tracking_number") for row in proc.stdout.splitlines())


def test_soap_and_graphql_inspect_read_the_project_files(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "noop.yaml").write_text("name: noop\nsteps:\n  - return: {}\n")
    shutil.copy(ROOT / "demo" / "erp.wsdl", tmp_path / "erp.wsdl")
    shutil.copy(ROOT / "demo" / "subscriptions.graphql", tmp_path / "subs.graphql")
    (tmp_path / "connections.yaml").write_text(
        "erp: {type: soap, wsdl: erp.wsdl}\nsubs: {type: graphql, url: 'https://subs.example.com/graphql', schema: subs.graphql}\n"
    )
    soap = csflow("inspect", "erp", "-p", str(tmp_path))
    assert soap.returncode == 0, soap.stderr
    assert "CancelOrder" in soap.stdout and "orderNumber: xsd:string" in soap.stdout
    gql = csflow("inspect", "subs", "-p", str(tmp_path))
    assert gql.returncode == 0, gql.stderr
    assert (
        "mutations" in gql.stdout
        and "cancelSubscription(id: ID!, reason: String): Subscription" in gql.stdout
    )
    missing = csflow("inspect", "ERP", "-p", str(tmp_path))
    assert missing.returncode == 2 and "did you mean 'erp'" in missing.stderr
