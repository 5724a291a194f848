"""The run store: the SQLite store's contract, Project's recording, and ``csflow runs``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from support import within
from unit_support import ProjectFiles

from csflow.adapters.stores import open_store, store_path
from csflow.engine.errors import StoreError
from csflow.engine.store import IN_FLIGHT, RunRecord

TOKEN = "tok_store_secret_9876"

CONNECTIONS = """
shop:
  type: rest
  base_url: https://shop.example.com
  auth: {type: bearer, token: {env: SHOP_TOKEN}}
"""

FLOWS = {
    "lookup": """
    name: lookup
    inputs:
      email: string
    outputs:
      status: string
    steps:
      - id: orders
        call: http
        with: {connection: shop, path: /orders, query: {email: "{{ email }}"}}
        extract: {status: status, note: note}
      - reply: "Your order is {{ status }} ({{ note }})"
    """,
    "create": """
    name: create
    steps:
      - id: create
        call: http
        with: {connection: shop, method: POST, path: /orders, json: {sku: A}}
    """,
}


def record(
    rid: str, flow: str = "lookup", status: str = "completed", at: str = "", **kw: Any
) -> RunRecord:
    return RunRecord(
        id=rid, flow=flow, status=status, started_at=at or f"2026-11-20T10:00:{rid[-2:]}.000Z", **kw
    )


# -- the SQLite store -----------------------------------------------------------------------------


def test_a_store_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the run store"):
        open_store(tmp_path / "file" / "runs.sqlite3")
    with pytest.raises(StoreError, match="no runs recorded yet"):
        open_store(tmp_path / "none.sqlite3", create=False)


def test_the_store_path_is_the_project_default_unless_csflow_store_says(tmp_path: Path) -> None:
    assert store_path(tmp_path, {}) == tmp_path / ".csflow" / "runs.sqlite3"
    assert store_path(tmp_path, {"CSFLOW_STORE": "/x/y.db"}) == Path("/x/y.db")
    url = "postgresql://csflow@db.example.com/runs"  # kept as text: a Path folds its "//"
    assert store_path(tmp_path, {"CSFLOW_STORE": url}) == url


# -- Project records its runs ---------------------------------------------------------------------


def loaded(proj: ProjectFiles, store: Any, answer: Any) -> Any:
    proj.write(flows=FLOWS, connections=CONNECTIONS)
    project = proj.load(environ={"SHOP_TOKEN": TOKEN}) if store is None else None
    if project is None:
        from csflow import Project

        project = Project.load(proj.root, environ={"SHOP_TOKEN": TOKEN}, store=store)
    project.connections.use_transport(lambda n: httpx.MockTransport(answer))
    return project


def test_project_runs_are_not_recorded_unless_asked(proj: ProjectFiles) -> None:
    project = loaded(
        proj, None, lambda r: httpx.Response(200, json={"status": "SHP", "note": "on its way"})
    )
    assert project.store is None
    assert project.run_sync("lookup", {"email": "a@b.co"}).status == "completed"
    assert not (proj.root / ".csflow").exists()


def test_a_recorded_run_holds_its_whole_trace_with_secrets_redacted(proj: ProjectFiles) -> None:
    answer = httpx.Response(200, json={"status": "SHP", "note": f"token {TOKEN}"})
    project = loaded(proj, True, lambda r: answer)
    result = project.run_sync("lookup", {"email": f"jane@example.com {TOKEN}"})
    project.close_store()
    path = proj.root / ".csflow" / "runs.sqlite3"
    stored = open_store(path, create=False).get_run(result.run_id)
    assert stored is not None
    assert stored.status == "completed"
    assert stored.inputs == {"email": "jane@example.com ***"}
    assert stored.outputs == {"status": "SHP"}
    assert stored.reply == "Your order is SHP (token ***)"
    assert [(s["id"], s["status"], s["attempts"]) for s in stored.steps] == [
        ("orders", 200, 1),
        (None, None, 1),
    ]
    raw = b"".join(p.read_bytes() for p in path.parent.iterdir())
    assert TOKEN.encode() not in raw


def test_a_store_that_fails_before_a_write_stops_the_write(proj: ProjectFiles) -> None:
    class Broken:
        async def begin(self, record: RunRecord) -> None:
            raise StoreError("the disk is full")

        def finish(self, record: RunRecord) -> None:
            self.finished = record

        def flush(self, timeout: float | None = None) -> bool:
            return True

        def close(self) -> None: ...

    sent: list[httpx.Request] = []
    store = Broken()
    project = loaded(proj, store, lambda r: sent.append(r) or httpx.Response(201))
    result = project.run_sync("create")
    assert result.status == "failed"
    assert "the disk is full" in result.error["message"]
    assert result.steps[0].outcome == "not_sent"
    assert sent == []
    assert store.finished.status == "failed"


async def test_a_cancelled_run_is_still_recorded(proj: ProjectFiles, tmp_path: Path) -> None:
    sent = asyncio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        sent.set()
        await asyncio.sleep(10)  # the merchant never answers in time: the run is cancelled
        return httpx.Response(200)

    store = open_store(tmp_path / "runs.sqlite3")
    project = loaded(proj, store, slow)
    task = asyncio.ensure_future(project.run("lookup", {"email": "a@b.co"}))
    await within(sent.wait(), what="the run to send its request")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await project.aclose()
    store.flush()
    (run,) = store.list_runs()
    assert run.status == "failed"
    assert run.error is not None and run.error["kind"] == "deadline"
    assert "cancelled" in run.error["message"]
    store.close()


# -- csflow runs ------------------------------------------------------------------------------------


def test_csflow_runs_lists_and_shows_what_csflow_run_recorded(
    proj: ProjectFiles, cli: Any, tmp_path: Path
) -> None:
    store = tmp_path / "history.sqlite3"
    s = open_store(store)
    failure = {"kind": "connect", "message": "GET shop/orders: refused", "step": "orders"}
    s.finish(record("aaaa-01", duration_ms=3.2))
    s.finish(record("bbbb-02", status="failed", error=failure, duration_ms=1.5))
    s.finish(record("cccc-03", flow="create", status=IN_FLIGHT))
    s.close()
    runner = CliRunner()
    out = runner.invoke(cli, ["runs", "--store", str(store), "--json"])
    assert out.exit_code == 0, out.output
    listed = json.loads(out.output)
    assert [r["id"] for r in listed] == ["cccc-03", "bbbb-02", "aaaa-01"]
    assert set(listed[0]) == {"id", "flow", "status", "started_at", "duration_ms", "error"}
    out = runner.invoke(cli, ["runs", "--store", str(store), "--failed", "--json"])
    assert [r["id"] for r in json.loads(out.output)] == ["bbbb-02"]
    out = runner.invoke(cli, ["runs", "--store", str(store), "--flow", "create", "--json"])
    assert [r["status"] for r in json.loads(out.output)] == [IN_FLIGHT]
    human = runner.invoke(cli, ["runs", "--store", str(store)], env={"COLUMNS": "200"}).output
    assert "last failure of each flow" in human
    assert "lookup" in human.split("last failure of each flow")[1]
    assert "connect at orders: GET shop/orders: refused" in human
    shown = runner.invoke(cli, ["runs", "show", "bbbb", "--store", str(store), "--json"])
    assert json.loads(shown.output)["error"] == failure
    missing = runner.invoke(cli, ["runs", "show", "zzzz", "--store", str(store)])
    assert missing.exit_code == 2
    assert "no recorded run" in missing.output


def test_csflow_runs_with_no_store_yet_says_so(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(
        "CSFLOW_STORE", raising=False
    )  # the suite's scratch store is not this project's
    runner = CliRunner()
    out = runner.invoke(cli, ["runs", "--project", str(tmp_path)])
    assert out.exit_code == 0
    assert "no runs recorded" in out.output
    out = runner.invoke(cli, ["runs", "--project", str(tmp_path), "--json"])
    assert json.loads(out.output) == []


def test_csflow_run_records_into_the_store(
    proj: ProjectFiles, cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj.write(flows={"hello": "name: hello\nsteps:\n  - reply: hi\n"})
    store = tmp_path / "cli.sqlite3"
    monkeypatch.setenv("CSFLOW_STORE", str(store))
    runner = CliRunner()
    out = runner.invoke(cli, ["run", "hello", "--project", str(proj.root), "--json"])
    assert out.exit_code == 0, out.output
    (run,) = open_store(store, create=False).list_runs()
    assert (run.flow, run.status) == ("hello", "completed")
    shown = runner.invoke(cli, ["runs", "show", run.id], env={"COLUMNS": "200"})
    assert "hello" in shown.output and "completed" in shown.output
