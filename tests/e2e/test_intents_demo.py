"""``csflow demo`` runs one conversation per intent, as a user runs it: a real process."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from csflow.cli.demo import CHATS, INTENTS, WISMO

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


def test_demo_json_is_one_line_per_conversation_named_by_its_case():
    proc = demo("--json")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]  # JSON lines, nothing else
    runs = [line for line in lines if "turn" not in line]
    assert [r["case"] for r in runs] == [conv.case for conv in [*WISMO, *INTENTS]]
    turns = [line for line in lines if "turn" in line]
    assert [(t["case"], t["turn"]) for t in turns] == [
        (chat.case, n) for chat in CHATS for n in range(1, len(chat.messages) + 1)
    ]
    last = {t["case"]: t for t in turns}
    assert [last[chat.case]["status"] for chat in CHATS] == [chat.ends for chat in CHATS]
    assert all(t["conversation_id"].startswith("demo-chat-") for t in turns)
    by_flow = {}
    for run in runs:
        by_flow.setdefault(run["flow"], []).append(run)
    for conv in INTENTS:
        assert any(r["status"] == "completed" and r["reply"] for r in by_flow[conv.flow])
    failed = [r for r in runs if r["status"] == "failed"]
    assert [(r["case"], r["expected"]) for r in failed] == [("API down", "failed")]


def test_demo_ends_with_a_summary_and_marks_the_expected_failure():
    proc = demo()
    assert proc.returncode == 0, proc.stderr
    n = len(WISMO) + len(INTENTS) + len(CHATS)
    last = proc.stdout.splitlines()[-1]
    assert re.fullmatch(
        rf"{n} conversations: {n - 1} as they should, 1 failed as expected · \d+\.\d s", last
    ), last
    outage = proc.stdout.split("wismo · API down", 1)[1]
    assert outage.splitlines()[2].startswith("wismo  failed, as expected")


def test_demo_lines_are_not_wrapped_when_output_is_not_a_terminal():
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # rich's default: 80
    proc = subprocess.run(
        [sys.executable, "-m", "csflow", "demo"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    label = re.search(r"http://127\.0\.0\.1:\d+/labels/RL-1005-\d+\.pdf", proc.stdout)
    assert label is not None  # whole, on one line: a URL broken mid-token is no link
    assert any(len(line) > 80 for line in proc.stdout.splitlines())
    rules = [line for line in proc.stdout.splitlines() if line.startswith("─")]
    assert rules and all(len(line) == 80 for line in rules)  # layout keeps its width


def test_the_demo_chats_ask_and_hand_over():
    proc = demo()
    assert proc.returncode == 0, proc.stderr
    chats = proc.stdout.split("chat · the order number is asked for", 1)[1]
    assert "What's your order number?" in chats
    assert "on its way with UPS" in chats  # the answer, ORD-1003, was taken
    assert "handoff  refund_over_limit: Refund asked for SUB-2007's charge CH-5007" in chats
    assert "handoff  order_not_identified" in chats
    assert chats.count("intent   ") == len(CHATS)  # each chat's first message, classified
