"""``csflow runs`` and ``csflow runs show``, read from a project's own store (issue 10, 30 and 40)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import support

MESSAGE = (
    "This flow fails on purpose, with a message long enough to need more than eighty "
    "columns to be read whole: https://support.example.com/orders/ORD-1003/why"
)


def csflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # No CSFLOW_STORE and no COLUMNS: the store is PROJECT/.csflow, and rich's width is 80.
    return support.csflow(*args, cwd=cwd, unset=["CSFLOW_STORE"], columns=None)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A project with one failed run in its store, and that run's id."""
    root = tmp_path_factory.mktemp("runs")
    (root / "p" / "flows").mkdir(parents=True)
    (root / "p" / "flows" / "fails.yaml").write_text(
        f'name: fails\nsteps:\n  - fail: "{MESSAGE}"\n'
    )
    ran = csflow("run", "fails", "-p", "p", cwd=root)
    assert ran.returncode == 1, ran.stderr
    listed = csflow("runs", "-p", "p", "--json", cwd=root)
    assert listed.returncode == 0, listed.stderr
    return root, json.loads(listed.stdout)[0]["id"]


def test_runs_show_reads_a_project_given_before_show(project: tuple[Path, str]) -> None:
    root, run_id = project
    for args in (("runs", "-p", "p", "show", run_id), ("runs", "show", run_id, "-p", "p")):
        proc = csflow(*args, "--json", cwd=root)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["id"] == run_id
    unknown = csflow("runs", "-p", "p", "show", "nope", cwd=root)
    assert unknown.returncode == 2 and "no recorded run has the id 'nope'" in unknown.stderr


def test_runs_keeps_each_row_on_one_line_off_a_terminal(project: tuple[Path, str]) -> None:
    root, run_id = project
    proc = csflow("runs", "-p", "p", cwd=root)
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith(run_id[:12]))
    assert "fails" in row and "failed" in row
    assert row.rstrip().endswith(MESSAGE)  # the error column whole, not folded to 7 characters
    shown = csflow("runs", "-p", "p", "show", run_id, cwd=root)
    assert any(line.rstrip().endswith(MESSAGE) for line in shown.stdout.splitlines())
