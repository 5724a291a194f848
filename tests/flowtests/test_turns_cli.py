"""Conversation cases through `csflow test` and through pytest: the same verdicts, the same
turn named in each failure, and coverage of what every turn reached."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowtest_support import chat_project, cli_verdicts, pytest_verdicts, run_pytest
from support import csflow

FAILED_TURN = (
    'turn 2 (say: "it\'s ord 12"): expected status completed, got waiting;'
    " reply was 'I need the order number, like ORD-1004.'"
)
SHOP_DOWN = (
    "turn 1 (say: 'where is my order ORD-1004?'): the run failed:"
    " flow_failed: The shop did not answer (connect)."
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return chat_project(tmp_path, "conversation.yaml", "wismo.yaml", "failing.yaml")


def test_csflow_test_names_the_turn_and_covers_every_turn(root: Path) -> None:
    proc = csflow("test", "-p", str(root), cwd=root, columns=300)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert "11 passed, 2 failed" in out
    assert "✓ conversation · the hold is sent once, before the question, and never again" in out
    assert "✓ wismo · the shop down fails the turn with its error" in out
    assert "✗ conversation · an answer without the order number is asked again" in out
    assert f"    {FAILED_TURN}\n" in out
    assert f"    {SHOP_DOWN}\n" in out
    assert f"{Path('tests', 'flows', 'failing.yaml')}:3" in out
    coverage = [line for line in out.splitlines() if "branches" in line or "not reached" in line]
    assert coverage == [
        "ask_order: 6/6 branches",
        "cancel_order: 2/3 branches",
        "    not reached: line 14: no match → card",
        "talk_to_person: 1/1 branches",
        "wismo: 4/4 branches",
    ]


def test_k_selects_conversations_and_covers_the_flows_they_ran(root: Path) -> None:
    proc = csflow("test", "-p", str(root), "-k", "person takes over", cwd=root, columns=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed, 0 failed" in proc.stdout
    coverage = [line for line in proc.stdout.splitlines() if line.endswith("branches")]
    assert coverage == ["talk_to_person: 1/1 branches"]


def test_pytest_collects_one_item_per_case_with_the_same_verdicts(root: Path) -> None:
    cli = csflow("test", "-p", str(root), cwd=root, columns=300)
    py = run_pytest(root)
    assert len(cli_verdicts(cli.stdout)) == 13
    assert pytest_verdicts(py.stdout) == cli_verdicts(cli.stdout), py.stdout
    assert py.returncode == 1
    where = f"{root / 'tests' / 'flows' / 'failing.yaml'}:3: conversation · an answer"
    assert where in py.stdout
    assert FAILED_TURN in py.stdout and SHOP_DOWN in py.stdout
