"""``CSFLOW_STORE`` and ``--store`` take a ``postgresql://`` URL: ``csflow run`` records there
and ``csflow runs`` reads it back, with the URL's ``//`` intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

ECHO = Path(__file__).resolve().parents[1] / "unit" / "projects" / "echo"


def test_csflow_run_and_runs_use_a_postgresql_store(postgres: Any) -> None:
    from csflow.cli.main import _load_command_modules, cli

    _load_command_modules()
    url = postgres.database()
    runner = CliRunner()
    ran = runner.invoke(
        cli, ["run", "echo", "-p", str(ECHO), "-i", "order=ORD-1"], env={"CSFLOW_STORE": url}
    )
    assert ran.exit_code == 0, ran.output
    listed = runner.invoke(cli, ["runs", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    (run,) = json.loads(listed.output)
    assert (run["flow"], run["status"]) == ("echo", "completed")
    shown = runner.invoke(cli, ["runs", "show", run["id"][:8], "--store", url, "--json"])
    assert json.loads(shown.output)["inputs"] == {"order": "ORD-1"}
    postgres.drop_all()
