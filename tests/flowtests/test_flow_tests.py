"""Flow tests (§11): `csflow test` and pytest give the same verdicts on the same files."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowtest_support import cli_verdicts, pytest_verdicts, run_pytest
from support import csflow

FLOW = """\
name: lookup
inputs: {email: string}
outputs: {status: string, found: boolean}
steps:
  - id: orders
    call: http
    with: {connection: shop, path: /orders, query: {email: "{{ email }}"}}
    extract: {latest: "max_by(@, &created_at)"}
    on_error: down
  - switch:
      - {if: latest is none, next: none}
  - set: {found: true, status: "{{ latest.status }}"}
  - id: done
    reply: "Your order is {{ status }}."
  - return: {}
  - id: none
    set: {found: false}
  - return: {}
  - id: down
    fail: "shop down"
"""

CASES = """\
flow: lookup
cases:
  - name: found
    inputs: {email: a@b.co}
    mocks:
      - {connection: shop, method: GET, path: /orders, json: [{status: shipped, created_at: "2024-01-02"}]}
    expect: {status: completed, outputs: {status: shipped, found: true}, reply: "Your order is shipped.", path: [orders, done]}
  - name: wrong expectation
    inputs: {email: a@b.co}
    mocks:
      - {connection: shop, method: GET, path: /orders, json: [{status: pending, created_at: "2024-01-02"}]}
    expect: {outputs: {status: shipped}}
  - name: unmatched call
    inputs: {email: a@b.co}
    mocks:
      - {connection: shop, method: GET, path: /customers, json: []}
    expect: {status: failed}
  - name: timeout goes to on_error
    inputs: {email: a@b.co}
    mocks:
      - {connection: shop, method: GET, path: /orders, error: timeout}
    expect: {status: failed, error: {kind: flow_failed, message: shop down}, path: [orders, down]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "lookup.yaml").write_text(FLOW)
    (tmp_path / "connections.yaml").write_text(
        "shop:\n  type: rest\n  base_url: https://shop.example.com/api\n  auth: {type: bearer, token: {env: FT_TOKEN}}\n"
    )
    (tmp_path / "tests" / "flows").mkdir(parents=True)
    (tmp_path / "tests" / "flows" / "lookup.yaml").write_text(CASES)
    return tmp_path


TOKEN = {"FT_TOKEN": "ft-secret-token"}


def test_csflow_test_names_each_failure_with_a_readable_diff(project: Path) -> None:
    proc = csflow("test", "-p", str(project), env=TOKEN, columns=200)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "2 passed, 2 failed" in out
    assert "✗ lookup · wrong expectation" in out
    assert 'outputs.status: expected "shipped", got "pending"' in out
    assert "unmatched call: GET shop /orders?email=a%40b.co" in out
    assert "✓ lookup · timeout goes to on_error" in out
    assert (
        "lookup: 2/3 branches" in out
    )  # the no-match default of the switch is not reached... see below
    assert "ft-secret-token" not in out


def test_pytest_gives_the_same_verdicts(project: Path) -> None:
    cli = csflow("test", "-p", str(project), env=TOKEN, columns=200)
    py = run_pytest(project, TOKEN)
    assert len(cli_verdicts(cli.stdout)) == 4
    assert cli_verdicts(cli.stdout) == pytest_verdicts(py.stdout), py.stdout
    assert py.returncode == 1


async def test_flow_mock_fixture_serves_engineers_tests(project: Path) -> None:
    from csflow import Project
    from csflow.flowtest import MockRouter

    p = Project.load(project, environ={"FT_TOKEN": "ft-secret-token"})
    router = MockRouter.install(p)
    router.add(
        connection="shop",
        method="GET",
        path="/orders",
        json=[{"status": "delivered", "created_at": "x"}],
    )
    result = await p.run("lookup", {"email": "a@b.co"})
    assert result.outputs == {"status": "delivered", "found": True}
    assert router.calls == ["GET shop /orders?email=a%40b.co"]
    await p.aclose()


async def test_a_case_can_pin_the_clock(tmp_path: Path) -> None:
    from csflow import Project
    from csflow.engine.model import TestCase
    from csflow.flowtest import run_case

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "clock.yaml").write_text(
        "name: clock\ninputs: {due: date}\noutputs: {late: boolean, year: integer}\nsteps:\n"
        "  - set: {late: '{{ (now.date() - due).days > 30 }}', year: '{{ now.year }}'}\n"
    )
    project = Project.load(tmp_path)
    case = TestCase.model_validate(
        {
            "name": "pinned",
            "now": "2030-03-01T12:00:00",
            "inputs": {"due": "2030-01-01"},
            "expect": {"outputs": {"late": True, "year": 2030}},
        }
    )
    outcome = await run_case(project, "clock", case)
    assert outcome.ok, outcome.failures
    early = case.model_copy(update={"now": case.now.replace(month=1, day=20)})
    outcome = await run_case(project, "clock", early)
    assert outcome.failures == ["outputs.late: expected true, got false"]
