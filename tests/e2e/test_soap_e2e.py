"""The ``soap`` action against Demo Shop's ERP over loopback: a WSDL fetched from a URL at load.

The WSDL sits behind the ERP's Basic auth, like the endpoint: the connection's own auth
fetches it, once per URL, and nothing else is fetched. With no ``url:``, calls go to the
address the WSDL gives (Demo Shop serves its own).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from csflow import Project, ProjectError

FLOW = """
name: erp_status
inputs: {number: string}
outputs: {status: string, carrier: string}
steps:
  - id: status
    call: soap
    with: {connection: erp, operation: GetOrderStatus, args: {orderNumber: "{{ number }}"}}
    extract:
      status: status
      carrier: {xpath: "string(//erp:shipment[last()]/erp:carrier)"}
"""


def write(root: Path, wsdl_url: str, password: str) -> Path:
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "erp_status.yaml").write_text(textwrap.dedent(FLOW).lstrip())
    (root / "secrets").mkdir()
    (root / "secrets" / "erp.password").write_text(password)
    (root / "connections.yaml").write_text(
        textwrap.dedent(
            f"""
            erp:
              type: soap
              wsdl: "{wsdl_url}"
              namespaces: {{erp: "http://erp.demo.shop/orders"}}
              auth: {{type: basic, username: erp, password: {{file: secrets/erp.password}}}}
              timeout: 2s
            """
        )
    )
    return root


async def test_a_wsdl_url_is_fetched_once_with_the_connections_auth(shop, tmp_path):
    url = f"{shop.erp_wsdl_url}&case=once"  # a URL of its own: the cache is per URL
    project = Project.load(write(tmp_path / "a", url, shop.erp_password))
    try:
        result = await project.run("erp_status", {"number": "ORD-1004"})
    finally:
        await project.aclose()
    assert result.status == "completed", result.error
    assert result.outputs == {"status": "IN_TRANSIT", "carrier": "DHL"}
    # No `url:` on the connection: the call went to the address the served WSDL gives.
    assert result.steps[0].status == 200
    state = shop.app.state.shop
    state.down.add("erp")  # the ERP (and its WSDL) now answer 503...
    try:
        again = Project.load(write(tmp_path / "b", url, shop.erp_password))  # ...and it loads
    finally:
        state.down.discard("erp")
    assert "erp_status" in again.flows


def test_a_wsdl_url_that_refuses_the_credentials_is_a_load_problem(shop, tmp_path):
    root = write(tmp_path / "p", f"{shop.erp_wsdl_url}&case=denied", "not-the-password")
    with pytest.raises(ProjectError) as info:
        Project.load(root)
    (problem,) = info.value.problems
    assert (problem.line, problem.column) == (7, 24)  # the step's `connection: erp`
    assert problem.path.endswith("erp_status.yaml")
    assert "the server answered 401" in problem.message
    assert "not-the-password" not in str(info.value)


async def test_an_erp_that_is_down_fails_the_step_with_its_status(shop, tmp_path):
    root = write(tmp_path / "p", f"{shop.erp_wsdl_url}&case=down", shop.erp_password)
    project = Project.load(root)
    state = shop.app.state.shop
    state.down.add("erp")
    try:
        result = await project.run("erp_status", {"number": "ORD-1004"})
    finally:
        state.down.discard("erp")
        await project.aclose()
    assert result.error["kind"] == "http_status" and result.error["status"] == 503
    assert "SOAP erp.GetOrderStatus answered 503" in result.error["message"]
