"""``csflow chat`` (§12): the terminal test chat, fed one message per line, against Demo Shop."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from support import SHIPPED, csflow

from csflow.demo.server import DemoShop


@pytest.fixture(scope="module")
def shop() -> object:
    with DemoShop() as running:
        yield running


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The shipped project, copied, so that its run store is this test's own."""
    copy = tmp_path / "p"
    shutil.copytree(SHIPPED, copy, ignore=shutil.ignore_patterns(".csflow", "tests"))
    return copy


def chat(project: Path, shop: object, messages: str, *args: str) -> tuple[int, str, str]:
    proc = csflow("chat", "-p", str(project), *args, stdin=messages, env=shop.env(), columns=300)  # type: ignore[attr-defined]
    return proc.returncode, proc.stdout, proc.stderr


def test_a_conversation_asks_then_answers_with_intent_and_trace(
    project: Path, shop: object
) -> None:
    code, out, err = chat(project, shop, "hi, where's my stuff??\nit's ord 1003\n")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "you  > hi, where's my stuff??"
    assert re.fullmatch(r"\s+intent wismo 0\.\d\d, runner-up \w+ 0\.\d\d", lines[1]), lines[1]
    assert lines[2].startswith("bot  > I can help with that. What's your order number?")
    assert lines[3].strip() == "✓ find (find_order) → ✓ find.ask_order_number (ask)  · waiting"
    assert lines[4] == "you  > it's ord 1003"
    assert "on its way with UPS" in lines[5]
    assert "✓ find.by_number (http 200)" in lines[6] and lines[6].endswith("· completed")
    assert "conversation completed; the next message starts a new one" in lines[7]
    assert sum("intent " in line for line in lines) == 1  # the answer is not classified


def test_turns_are_recorded_with_their_conversation(
    project: Path, shop: object, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    code, _, err = chat(project, shop, "where is my order\nORD-1003\n", "--store", str(store))
    assert code == 0, err
    db = sqlite3.connect(store)
    rows = db.execute("SELECT status, conversation_id, turn FROM runs ORDER BY turn").fetchall()
    assert [(r[0], r[2]) for r in rows] == [("waiting", 1), ("completed", 2)]
    assert rows[0][1] == rows[1][1] and rows[0][1].startswith("chat-")


def test_a_handoff_says_why(project: Path, shop: object) -> None:
    code, out, _ = chat(project, shop, "can I talk to a real person please\n")
    assert code == 0
    assert "intent handoff" in out
    assert (
        "handed over to a person (customer_asked): The customer asked to talk to a person." in out
    )


def test_a_dry_run_sends_no_write_and_records_nothing(
    project: Path, shop: object, tmp_path: Path
) -> None:
    store = tmp_path / "runs.sqlite3"
    messages = "please cancel my order\nORD-1001\n"
    code, out, err = chat(
        project, shop, messages, "--dry-run", "-c", "reason=wrong size", "--store", str(store)
    )
    assert code == 0, err
    assert "Preview (dry run, nothing was changed)" in out
    assert "not sent" in out  # the cancel, kept back
    assert not store.exists()
    assert "Traceback" not in err
    order = json.loads(
        csflow(
            "run",
            "wismo",
            "-p",
            str(project),
            "-i",
            "order_number=ORD-1001",
            "--json",
            env=shop.env(),
        ).stdout
    )  # type: ignore[attr-defined]
    assert order["outputs"]["order_status"] == "pending"  # still: nothing was cancelled


def test_a_flow_can_be_named(project: Path, shop: object) -> None:
    code, out, _ = chat(project, shop, "hello\n", "--flow", "subscription_refund")
    assert code == 0
    assert "intent" not in out  # not classified
    assert "What's the email address you subscribed with?" in out


def test_mistakes_are_usage_errors(project: Path, shop: object, tmp_path: Path) -> None:
    code, _, err = chat(project, shop, "", "--flow", "wimso")
    assert code == 2 and "unknown flow 'wimso' (did you mean 'wismo'?)" in err
    bare = tmp_path / "bare"
    (bare / "flows").mkdir(parents=True)
    (bare / "flows" / "hello.yaml").write_text("name: hello\nsteps:\n  - reply: hi\n")
    code, _, err = chat(bare, shop, "hi\n")
    assert code == 2 and "no intents.yaml to pick a flow by: give --flow NAME" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------------ --record

SESSION = (
    "hi, where's my stuff??\nit's ord 1003\n"  # wismo: asks, then answers from the shop
    "can I talk to a real person\n"  # a handoff
    "I want to pause my subscription\nmy email is shipped@demo.shop\n2027-01-05\n"  # a reprompt
)


def test_a_recorded_chat_replays_as_flow_tests_with_no_secret_or_customer_in_it(
    project: Path, shop: object
) -> None:
    cases = project / "tests" / "flows"
    cases.mkdir(parents=True)
    recorded = cases / "recorded.yaml"
    code, _, err = chat(project, shop, SESSION, "--record", str(recorded))
    assert code == 0, err
    assert f"recorded 3 conversation(s) and 1 call(s) as test cases in {recorded}" in err
    text = recorded.read_text(encoding="utf-8")
    assert text.startswith("# Recorded by `csflow chat --record`")
    for secret in shop.env().values():  # type: ignore[attr-defined]
        if "token" in secret or "secret" in secret or "key" in secret:
            assert secret not in text
    assert "shipped@demo.shop" not in text  # typed by the customer, and in the shop's answer
    assert "say: my email is person1@example.com" in text
    assert "conversation: true" in text and "intent: handoff" in text
    # The file is a flow test like any other: csflow test replays it against its mocks.
    replay = csflow("test", "-p", str(project), "-k", "recorded")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "3 passed, 0 failed" in replay.stdout


def test_a_chat_with_one_flow_records_that_flows_file(
    project: Path, shop: object, tmp_path: Path
) -> None:
    recorded = tmp_path / "refund.yaml"
    code, _, err = chat(
        project, shop, "hello\n", "--flow", "subscription_refund", "--record", str(recorded)
    )
    assert code == 0, err
    text = recorded.read_text(encoding="utf-8")
    assert "\nflow: subscription_refund\n" in text and "intent:" not in text
    assert "What's the email address you subscribed with?" in text


def test_recording_nothing_or_into_no_folder(project: Path, shop: object, tmp_path: Path) -> None:
    recorded = tmp_path / "none.yaml"
    code, _, err = chat(project, shop, "", "--record", str(recorded))
    assert code == 0 and "nothing said, so nothing recorded" in err and not recorded.exists()
    code, _, err = chat(project, shop, "hi\n", "--record", str(tmp_path / "no" / "x.yaml"))
    assert code == 2 and "the folder" in err and "does not exist" in err
