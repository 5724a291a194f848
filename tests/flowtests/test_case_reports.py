"""What flow tests say: misspelt names at load, a failed run's error, -k, retried calls, SOAP.

The projects and cases are files under ``data/``; a test copies what it needs into its own
folder, so that pytest's flow-test plugin never collects them from here.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from support import csflow

from csflow import Project
from csflow.engine.model import TestCase
from csflow.flowtest import load_test_files, run_case

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


def _project(tmp_path: Path, *cases: str) -> Path:
    shutil.copytree(DATA / "lookup", tmp_path, dirs_exist_ok=True)
    (tmp_path / "tests" / "flows").mkdir(parents=True)
    for name in cases:
        shutil.copy(DATA / "cases" / name, tmp_path / "tests" / "flows" / name)
    return tmp_path


def _case(**fields: Any) -> TestCase:
    return TestCase.model_validate({"name": "a case", **fields})


def test_unknown_inputs_outputs_and_path_steps_are_placed_with_did_you_mean(
    tmp_path: Path,
) -> None:
    project = Project.load(_project(tmp_path))
    _, problems = load_test_files(project, [DATA / "cases" / "misspelt.yaml"])
    found = {(p.line, p.column): p.message for p in problems}
    assert found == {
        (5, 14): "'emial' is not an input of flow 'customer' (did you mean 'email'?)",
        (9, 17): "'knwon' is not an output of flow 'customer' (did you mean 'known'?)",
        (10, 14): "no step 'find.ordrs' in flow 'customer' (did you mean 'find.orders'?)",
        (14, 17): "'colour' is not an output of flow 'customer' (it has: known)",
        (15, 14): "no step 'zzz' in flow 'customer' (it has: find, find.answer, find.none,"
        " find.orders, known)",
        (16, 21): "unknown error kind 'http_stauts' (did you mean 'http_status'?)",
    }


def test_validate_checks_the_test_files(tmp_path: Path) -> None:
    root = _project(tmp_path, "misspelt.yaml")
    proc = csflow("validate", "-p", str(root), cwd=tmp_path, columns=200)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    place = f"{Path('tests', 'flows', 'misspelt.yaml')}:5:14:"
    assert f"{place} 'emial' is not an input" in proc.stdout + proc.stderr


async def test_a_failed_case_shows_the_runs_error_whatever_it_expected(tmp_path: Path) -> None:
    project = Project.load(_project(tmp_path))
    case = _case(
        inputs={"email": "a@b.co"},
        mocks=[{"connection": "shop", "method": "GET", "path": "/orders", "status": 500}],
        expect={"outputs": {"status": "shipped"}},
    )
    outcome = await run_case(project, "lookup", case)
    await project.aclose()
    assert outcome.failures[0] == (
        'outputs.status: expected "shipped", but the run failed before returning'
    )
    assert outcome.failures[-1].startswith("the run failed: http_status: GET shop/orders")


async def test_the_error_is_not_repeated_when_the_status_line_gives_it(tmp_path: Path) -> None:
    project = Project.load(_project(tmp_path))
    case = _case(
        inputs={"email": "a@b.co"},
        mocks=[{"connection": "shop", "method": "GET", "path": "/orders", "status": 500}],
        expect={"status": "completed"},
    )
    outcome = await run_case(project, "lookup", case)
    await project.aclose()
    assert len(outcome.failures) == 1
    assert outcome.failures[0].startswith("status: expected completed, got failed (http_status")


async def test_an_unmatched_retry_names_its_attempt_and_repeat(tmp_path: Path) -> None:
    project = Project.load(_project(tmp_path))
    case = _case(
        inputs={"email": "a@b.co"},
        mocks=[{"connection": "shop", "method": "GET", "path": "/orders", "status": 503}],
        expect={"status": "failed"},
    )
    outcome = await run_case(project, "lookup", case)
    await project.aclose()
    unmatched = [f for f in outcome.failures if f.startswith("unmatched call")]
    # The 503 is retried; the second attempt finds no mock, fails to connect, and the
    # third (connect is retried too) finds none either.
    assert [f.split(": ", 2)[2][:33] for f in unmatched] == [
        "attempt 2 of 3 of step 'orders', ",
        "attempt 3 of 3 of step 'orders', ",
    ]
    assert "`repeat: true`" in unmatched[0]


async def test_repeat_answers_every_attempt(tmp_path: Path) -> None:
    root = _project(tmp_path)
    project = Project.load(root)
    files, problems = load_test_files(project, [DATA / "cases" / "lookup.yaml"])
    assert not problems
    outcomes = [await run_case(project, "lookup", c) for c in files[0].model.cases]
    await project.aclose()
    assert [o.failures for o in outcomes] == [[], []]
    assert outcomes[1].result is not None and outcomes[1].result.steps[0].attempts == 3


def test_k_with_no_match_says_so_and_exits_5(tmp_path: Path) -> None:
    root = _project(tmp_path, "lookup.yaml", "customer.yaml")
    proc = csflow("test", "-p", str(root), "-k", "nomatch", cwd=tmp_path, columns=200)
    assert proc.returncode == 5
    assert "no case matches -k 'nomatch'" in proc.stderr
    assert "no cases" not in proc.stdout


def test_k_gives_coverage_for_the_selected_flows_only(tmp_path: Path) -> None:
    root = _project(tmp_path, "lookup.yaml", "customer.yaml")
    proc = csflow("test", "-p", str(root), "-k", "customer", cwd=tmp_path, columns=200)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    coverage = [line for line in proc.stdout.splitlines() if line.endswith("branches")]
    assert coverage == ["customer: 1/2 branches"]
    assert "1 passed, 0 failed" in proc.stdout


def _soap_project(tmp_path: Path) -> Any:
    (tmp_path / "flows").mkdir()
    (tmp_path / "wsdl").mkdir()
    shutil.copy(ROOT / "flows" / "flows" / "erp_order_status.yaml", tmp_path / "flows")
    shutil.copy(ROOT / "flows" / "wsdl" / "erp.wsdl", tmp_path / "wsdl")
    shutil.copy(DATA / "soap" / "connections.yaml", tmp_path)
    return Project.load(tmp_path)


def test_an_operation_mock_names_an_operation_of_the_wsdl(tmp_path: Path) -> None:
    project = _soap_project(tmp_path)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "flow: erp_order_status\ncases:\n  - name: x\n    inputs: {order_number: A}\n"
        "    mocks: [{connection: erp, operation: GetOrderStats, data: {}}]\n"
    )
    _, problems = load_test_files(project, [cases])
    assert [(p.line, p.column, p.message) for p in problems] == [
        (
            5,
            42,
            "the WSDL of 'erp' has no operation 'GetOrderStats' (did you mean 'GetOrderStatus'?)",
        )
    ]


async def test_an_envelope_mock_answers_the_first_call_to_a_wsdl_address(tmp_path: Path) -> None:
    project = _soap_project(tmp_path)
    files, problems = load_test_files(project, [DATA / "cases" / "erp_envelope.yaml"])
    assert not problems
    outcome = await run_case(project, "erp_order_status", files[0].model.cases[0])
    await project.aclose()
    assert outcome.failures == []


@pytest.mark.parametrize(
    ("base", "url", "expected"),
    [
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8081/api/orders", "b"),
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/api/orders", "a"),
        ("http://127.0.0.1:8080/api", "http://127.0.0.1:8080/apiv2/orders", None),
        ("http://127.0.0.1:8080/api", "https://127.0.0.1:8080/api/orders", None),
    ],
)
def test_a_call_belongs_to_the_connection_with_its_scheme_host_port_and_path(
    base: str, url: str, expected: str | None
) -> None:
    import httpx

    from csflow.flowtest.routes import locate

    class Conn:
        def __init__(self, name: str, base_url: str) -> None:
            self.name, self.base_url = name, base_url

    connections = [Conn("a", base), Conn("b", "http://127.0.0.1:8081/api")]
    assert locate(connections, httpx.URL(url))[0] == expected
