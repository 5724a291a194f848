"""Conversation cases checked at load: each problem placed `PATH:LINE:COL`, with near misses."""

from __future__ import annotations

from pathlib import Path

import pytest
from flowtest_support import CASES, DATA, chat_project
from support import csflow

from csflow import Project
from csflow.flowtest import load_test_files


def problems(project: Project, path: Path) -> dict[tuple[int, int], str]:
    _, found = load_test_files(project, [path])
    return {(p.line, p.column): p.message for p in found}


@pytest.fixture(scope="module")
def chat() -> Project:
    return Project.load(DATA / "chat")


def test_every_name_of_a_conversation_is_checked(chat: Project) -> None:
    assert problems(chat, CASES / "misspelt.yaml") == {
        (4, 14): "'emial' is not an input of any flow intents.yaml starts (did you mean 'email'?)",
        (5, 5): "a case with `turns` gives each turn its own `expect:`; move this one into"
        " the turn it is about",
        (8, 26): "intents.yaml has no intent 'wismoo' (did you mean 'wismo'?)",
        # Turn 1's intent is unknown, so its flow is: any of intents.yaml's.
        (10, 25): "no step 'find.whcih' in any flow intents.yaml starts"
        " (did you mean 'find.which'?)",
        (10, 55): "'carier' is not an output of any flow intents.yaml starts"
        " (did you mean 'carrier'?)",
        # wismo's handoffs include those of its sub-flow ask_order.
        (12, 51): "no handoff with reason 'no_order_numbr' in flow 'wismo'"
        " (did you mean 'no_order_number'?)",
        (
            14,
            47,
        ): "no step 'shipped' in flow 'cancel_order' (it has: card, credit, done, hold, how)",
        (15, 5): "a case of a `conversation: true` file gives its conversation as `turns`"
        " (each a `say:` and its `expect:`)",
    }


def test_an_unknown_key_in_a_turns_expect(chat: Project) -> None:
    assert problems(chat, CASES / "misspelt_key.yaml") == {
        (6, 33): "unknown key 'replly' (did you mean 'reply'?)"
    }


def test_a_file_is_one_flows_or_conversations(chat: Project, tmp_path: Path) -> None:
    assert problems(chat, CASES / "both.yaml") == {
        (2, 1): "give `flow:` (the cases run that flow) or `conversation: true` (each case"
        " starts from intents.yaml), not both"
    }
    neither = tmp_path / "neither.yaml"
    neither.write_text("cases:\n  - name: x\n    turns: [{say: hi}]\n")
    assert problems(chat, neither) == {
        (1, 1): "a test file names the flow its cases run (`flow: NAME`), or says"
        " `conversation: true` to start each case from intents.yaml"
    }


def test_a_conversation_needs_intents_yaml(tmp_path: Path) -> None:
    lookup = Project.load(DATA / "lookup")
    path = tmp_path / "c.yaml"
    path.write_text("conversation: true\ncases:\n  - name: x\n    turns: [{say: hi}]\n")
    assert problems(lookup, path) == {
        (1, 15): "`conversation: true` starts each case from intents.yaml, but the project has"
        " no intents.yaml: name the flow to talk to with `flow:` instead"
    }


def test_a_flow_file_compares_no_intent_and_checks_each_turns_path(chat: Project) -> None:
    assert problems(chat, CASES / "intent_in_flow_file.yaml") == {
        (6, 18): "`intent` is compared only in a `conversation: true` file: the cases of a"
        " `flow:` file start their flow without classifying the message",
        (6, 57): "no step 'find.wihch' in flow 'wismo' (did you mean 'find.which'?)",
    }


def test_a_turn_left_waiting_keeps_its_flow_for_the_next(chat: Project, tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "conversation: true\ncases:\n  - name: x\n    turns:\n"
        "      - {say: cancel order 1004, expect: {intent: cancel_order, status: waiting}}\n"
        "      - {say: card, expect: {path: [find]}}\n"
        "      - {say: where is my order, expect: {path: [find]}}\n"
    )
    # Turn 2 answers cancel_order's question; turn 3 starts anew, so any flow may run.
    assert problems(chat, path) == {
        (6, 37): "no step 'find' in flow 'cancel_order' (it has: card, credit, done, hold, how)"
    }


def test_a_message_yaml_reads_as_a_boolean_is_to_be_quoted(chat: Project, tmp_path: Path) -> None:
    path = tmp_path / "q.yaml"
    path.write_text("flow: wismo\ncases:\n  - name: x\n    turns: [{say: no}, {say: 1007}]\n")
    assert problems(chat, path) == {
        (4, 19): "say: a message is text, and YAML read this one as false: put it in quotes"
        ' (say: "no", say: "1007")',
        (4, 30): "say: a message is text, and YAML read this one as 1007: put it in quotes"
        ' (say: "no", say: "1007")',
    }


def test_validate_and_test_place_the_problems(tmp_path: Path) -> None:
    root = chat_project(tmp_path, "misspelt.yaml")
    for command in ("validate", "test"):
        proc = csflow(command, "-p", str(root), cwd=tmp_path, columns=200)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        place = Path("chat", "tests", "flows", "misspelt.yaml")
        assert f"{place}:8:26: intents.yaml has no intent 'wismoo'" in proc.stdout + proc.stderr
