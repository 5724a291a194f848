"""``csflow demo`` runs one conversation per intent, as a user runs it: a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from csflow.cli.demo import INTENTS

ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "csflow", "demo", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        timeout=120,
    )


def test_demo_prints_one_conversation_per_intent_and_exits_0():
    proc = demo()
    assert proc.returncode == 0, proc.stderr + proc.stdout
    flows = {conv.flow for conv in INTENTS}
    assert flows == {
        "cancel_order",
        "change_address",
        "return_label",
        "subscription_cancel",
        "subscription_pause",
        "subscription_change_plan",
        "subscription_refund",
    }
    for conv in INTENTS:
        assert f"{conv.flow} · {conv.case}" in proc.stdout
        assert conv.question in proc.stdout
    assert "wismo · status from the ERP (SOAP)" in proc.stdout
    assert "refunding $78.99" in proc.stdout  # the cancel states the refund
    assert "/labels/RL-1005-" in proc.stdout  # the return label's URL
    assert "Traceback" not in proc.stderr and "erp-secret" not in proc.stdout


def test_demo_json_prints_every_run_completed_but_the_outage():
    proc = demo("--json")
    assert proc.returncode == 0, proc.stderr
    decoder, text, runs = json.JSONDecoder(), proc.stdout, []
    index = text.find("{")
    while index != -1:
        run, end = decoder.raw_decode(text, index)
        runs.append(run)
        index = text.find("{", end)
    by_flow = {}
    for run in runs:
        by_flow.setdefault(run["flow"], []).append(run)
    for conv in INTENTS:
        assert any(r["status"] == "completed" and r["reply"] for r in by_flow[conv.flow])
    assert [r["status"] for r in by_flow["wismo"]].count("failed") == 1  # the API-down case
