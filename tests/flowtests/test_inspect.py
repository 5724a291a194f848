"""`csflow inspect`: REST fields with their JMESPath, SOAP operations, GraphQL fields."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import jmespath
import support
from support import free_port

ROOT = Path(__file__).resolve().parents[2]


def csflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return support.csflow(*args, env=env, columns=200)


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


def test_soap_inspect_reads_a_wsdl_url_as_run_and_validate_do(
    tmp_path: Path, demo_shop: Any
) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "noop.yaml").write_text("name: noop\nsteps:\n  - return: {}\n")
    (tmp_path / "connections.yaml").write_text(
        "erp:\n  type: soap\n  wsdl: {env: DEMO_ERP_WSDL}\n"
        "  auth: {type: basic, username: {env: DEMO_ERP_USER}, password: {env: DEMO_ERP_PASSWORD}}\n"
    )
    proc = csflow("inspect", "erp", "-p", str(tmp_path), env=demo_shop.env())
    assert proc.returncode == 0, proc.stderr
    assert "CancelOrder" in proc.stdout and "orderNumber: xsd:string" in proc.stdout
    assert demo_shop.erp_password not in proc.stdout + proc.stderr


def test_a_wsdl_url_that_cannot_be_read_exits_1_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "noop.yaml").write_text("name: noop\nsteps:\n  - return: {}\n")
    (tmp_path / "connections.yaml").write_text(
        f"erp: {{type: soap, wsdl: 'http://127.0.0.1:{free_port()}/erp?wsdl'}}\n"
    )
    proc = csflow("inspect", "erp", "-p", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert (
        proc.stderr.startswith("Error: WSDL 'http://127.0.0.1:") and "Traceback" not in proc.stderr
    )


def test_inspect_exit_codes_follow_the_readme(shop_env: dict[str, str]) -> None:
    missing = csflow("inspect", "shop", "--get", "/orders/ORD-0000", "-p", "flows", env=shop_env)
    assert missing.returncode == 1, missing.stderr  # the API answered an error
    assert "→ 404" in missing.stdout
    down = {**shop_env, "DEMO_SHOP_URL": f"http://127.0.0.1:{free_port()}/api"}
    unreachable = csflow("inspect", "shop", "--get", "/orders", "-p", "flows", env=down)
    assert unreachable.returncode == 1, unreachable.stderr
    assert unreachable.stderr.startswith("Error: connect") and "Traceback" not in unreachable.stderr
    no_get = csflow("inspect", "shop", "-p", "flows", env=shop_env)
    assert no_get.returncode == 2 and "--get PATH" in no_get.stderr


def test_get_is_refused_for_soap_and_graphql_not_ignored() -> None:
    for name in ("erp", "subs"):
        proc = csflow("inspect", name, "--get", "/orders", "-p", "flows")
        assert proc.returncode == 2, proc.stderr
        assert f"--get is for REST connections; '{name}' is" in proc.stderr
        assert proc.stdout == ""
