"""The csflow command line, run as a user runs it: a real process, real loopback HTTP."""

from __future__ import annotations

import json

from support import csflow


def test_run_json_is_the_run_result_of_the_spec(shop_env):
    proc = csflow(
        "run",
        "wismo",
        "--project",
        "flows",
        "--json",
        "--input",
        "email=shipped@demo.shop",
        env=shop_env,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert set(out) == {"flow", "status", "outputs", "reply", "error", "steps"}
    assert out["flow"] == "wismo" and out["status"] == "completed" and out["error"] is None
    assert out["outputs"]["order_status"] == "shipped"
    assert out["outputs"]["tracking_number"] in out["reply"]
    call = next(s for s in out["steps"] if s["verb"] == "call")
    assert call["id"] == "find.by_email" and call["action"] == "http"
    assert {"ok", "status", "duration_ms", "attempts", "error"} <= set(call)


def test_run_human_output_shows_reply_outputs_and_steps(shop_env):
    proc = csflow("run", "wismo", "-p", "flows", "-i", "order_number=ORD-1002", env=shop_env)
    assert proc.returncode == 0, proc.stderr
    assert "being prepared" in proc.stdout
    assert "order_status" in proc.stdout and "processing" in proc.stdout
    assert "find.by_number" in proc.stdout


def test_input_text_is_converted_to_the_declared_type(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "n.yaml").write_text(
        "name: n\ninputs: {n: integer}\noutputs: {double: integer}\nsteps:\n  - set: {double: '{{ n * 2 }}'}\n"
    )
    proc = csflow("run", "n", "-p", str(tmp_path), "--json", "-i", "n=9")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["outputs"] == {"double": 18}
    bad = csflow("run", "n", "-p", str(tmp_path), "-i", "n=nine")
    assert bad.returncode == 2
    assert "input 'n'" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_inputs_are_usage_errors_and_nothing_runs(shop_env):
    proc = csflow("run", "wismo", "-p", "flows", "-i", "emial=x@demo.shop", env=shop_env)
    assert proc.returncode == 2
    assert "unknown input 'emial' (did you mean 'email'?)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_unknown_flow_is_a_usage_error(shop_env):
    proc = csflow("run", "wsimo", "-p", "flows", env=shop_env)
    assert proc.returncode == 2
    assert "unknown flow 'wsimo' (did you mean 'wismo'?)" in proc.stderr


def test_failed_run_exits_1(shop_env, demo_shop):
    import httpx

    admin = {"Authorization": f"Bearer {demo_shop.token}"}
    httpx.post(
        f"{demo_shop.base_url}/_admin/outage", json={"on": True}, headers=admin
    ).raise_for_status()
    try:
        proc = csflow(
            "run", "wismo", "-p", "flows", "--json", "-i", "email=shipped@demo.shop", env=shop_env
        )
    finally:
        httpx.post(f"{demo_shop.base_url}/_admin/outage", json={"on": False}, headers=admin)
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["status"] == "failed" and out["error"]["kind"] == "flow_failed"
    assert "did not answer" in out["error"]["message"] and "503" in out["error"]["message"]
    assert "can't reach our order system" in out["reply"]


def test_validate_reports_every_problem_with_its_place(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "bad.yaml").write_text(
        "name: bad\nsteps:\n  - id: a\n    sett: {x: 1}\n  - set: {y: '{{ z }}'}\n    next: nowhere\n"
    )
    (tmp_path / "connections.yaml").write_text(
        "shop:\n  type: rest\n  base_url: {env: NO_SUCH_VAR_CSFLOW}\n"
    )
    proc = csflow("validate", "-p", str(tmp_path))
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert any(":4:5: unknown key 'sett' (did you mean 'set'?)" in line for line in lines)
    assert any(":5:18: undefined variable 'z'" in line for line in lines)
    assert any(":6:11: no step has the id 'nowhere'" in line for line in lines)
    assert any(
        "connections.yaml:3:13: environment variable 'NO_SUCH_VAR_CSFLOW' is not set" in line
        for line in lines
    )
    assert "Traceback" not in proc.stderr
    assert len(lines) == 5  # four problems and the count, no echoes of them


CHANNEL_KEYS = {
    "CSFLOW_API_KEY": "k-api-1",
    "ZIPCHAT_API_KEY": "k-zip-1",
    "COFFIELD_SECRET": "k-cof-1",
    "ORDERS_API_KEY": "k-ord-1",
    "CONSOLE_OPS_PASSWORD": "k-console-1",
}


def test_validate_the_shipped_project():
    proc = csflow("validate", "-p", "flows", env=CHANNEL_KEYS)
    assert proc.returncode == 0, proc.stderr
    assert "ok" in proc.stdout and "6 channels" in proc.stdout


def test_graph_is_a_mermaid_flowchart():
    proc = csflow("graph", "wismo", "-p", "flows")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("flowchart TD")
    assert '-. "error" .->' in proc.stdout  # find's on_error path
    assert "flow find_order" in proc.stdout


def test_demo_runs_every_case_and_exits_0():
    proc = csflow("demo", timeout=120)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    for case in (
        "pending",
        "processing",
        "shipped",
        "partly shipped",
        "delivered",
        "cancelled",
        "not found",
        "API down",
    ):
        assert f"wismo · {case}" in proc.stdout
    assert "Traceback" not in proc.stderr
