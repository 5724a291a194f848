"""intents.yaml (§12): entities, the classifier, the shipped intents, the action and the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

import csflow
import csflow.cli.commands.intent
from csflow import StepError
from csflow.actions.intent import intent as intent_action
from csflow.cli.main import cli
from csflow.engine.intents import EntitySpec, Intents, normalize
from csflow.engine.intents.classifier import IntentClassifier
from csflow.engine.intents.entities import compile_entity
from csflow.engine.loader import load_project
from csflow.engine.registry import builtin_registry

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
HELDOUT = ROOT / "bench" / "data" / "intents_heldout.yaml"


@pytest.fixture(scope="module")
def shipped() -> Intents:
    intents = load_project(FLOWS, environ={}).intents
    assert intents is not None
    return intents


def find(spec: dict[str, str], text: str) -> str | None:
    finder, problems = compile_entity(EntitySpec.model_validate(spec))
    assert problems == [] and finder is not None
    return finder.find(text)


# ---------------------------------------------------------------------------------- entities


@pytest.mark.parametrize(
    ("spec", "text", "found"),
    [
        (
            {"type": "email"},
            "I'm Jane.Doe+shop@Example.co.uk, thanks",
            "jane.doe+shop@example.co.uk",
        ),
        ({"type": "email"}, "jane at example dot com", None),
        ({"type": "phone"}, "call me on +1 (415) 555-0142 please", "14155550142"),
        ({"type": "phone", "region": "IE"}, "my number is 086 555 0123", "0865550123"),
        ({"type": "phone"}, "no number here", None),
        ({"type": "phone"}, "tracking 1Z999AA10123456784", None),
        (
            {"pattern": r"(?i)\b(?:ord-?)?(\d{4,6})\b", "format": "ORD-{1}"},
            "it's ord 1004",
            "ORD-1004",
        ),
        ({"pattern": r"(?i)\b(?:ord-?)?(\d{4,6})\b", "format": "ORD-{1}"}, "ORD-1001", "ORD-1001"),
        ({"pattern": r"T-(\d+)", "format": "{0}/{1}"}, "ticket T-77 open", "T-77/77"),
        ({"pattern": r"N-(?P<num>\d+)", "format": "N{num}"}, "see N-42", "N42"),
        ({"pattern": r"\b\d{5}\b"}, "zip 10115 Berlin", "10115"),
        ({"pattern": r"\b\d{5}\b"}, "zip 101", None),
    ],
)
def test_entities_are_found_by_type_or_pattern(spec, text, found):
    assert find(spec, text) == found


def test_a_missing_optional_group_formats_as_empty():
    assert find({"pattern": r"A(\d)?B", "format": "<{1}>"}, "xAB") == "<>"


def test_the_shipped_order_number_takes_demo_shops_format_not_a_phones_digits(shipped):
    assert shipped.entities("it's ord 1004") == {"order_number": "ORD-1004"}
    assert shipped.entities("order #1005")["order_number"] == "ORD-1005"
    found = shipped.entities("call 086 555 0123, jane@example.com")
    assert "order_number" not in found
    assert found["email"] == "jane@example.com"
    assert found["phone"] == "0865550123"


# -------------------------------------------------------------------------------- classifier

EXAMPLES = {
    "wismo": ["where is my order", "has my parcel shipped", "tracking please", "nothing came",
              "when will it arrive", "my package is late"],
    "cancel_order": ["cancel my order", "please cancel it", "I don't want it anymore",
                     "stop the order", "cancel order 1001", "call off my purchase"],
    "refund": ["I want my money back", "refund please", "give me a refund", "refund my charge",
               "reimburse me", "money back now"],
}  # fmt: skip


def test_the_same_examples_always_train_the_same_answers():
    one = IntentClassifier.train(EXAMPLES, threshold=0.5)
    shuffled = {k: list(reversed(v)) for k, v in reversed(list(EXAMPLES.items()))}
    two = IntentClassifier.train(shuffled, threshold=0.5)
    for text in ["where's my parcel", "cancel it", "refund", "what's the weather"]:
        assert one.probabilities(text) == two.probabilities(text)


def test_every_intent_gets_a_confidence_and_the_best_comes_first():
    c = IntentClassifier.train(EXAMPLES, threshold=0.5).classify("wheres my parcel?")
    assert c.name == "wismo" and c.understood
    assert c.scores[0].name == "wismo" and len(c.scores) == 3
    assert all(0.0 <= s.confidence <= 1.0 for s in c.scores)
    assert sum(s.confidence for s in c.scores) == pytest.approx(1.0, abs=1e-3)
    assert c.runner_up is not None and c.runner_up.confidence <= c.confidence


def test_a_best_intent_under_the_threshold_is_not_understood():
    c = IntentClassifier.train(EXAMPLES, threshold=0.99).classify("wheres my parcel?")
    assert c.name is None and not c.understood
    assert c.best.name == "wismo"  # still said, for the bench and the CLI
    assert IntentClassifier.train(EXAMPLES, threshold=0.1).classify("   ").name is None


def test_the_fast_path_computes_what_sklearn_computes(shipped):
    texts = ["where is my order 1004", "cancle my subscribtion", "tell me a joke", "", "zzzz"]
    two = IntentClassifier.train({k: EXAMPLES[k] for k in ("wismo", "refund")}, threshold=0.5)
    for classifier in (shipped.classifier, two):
        for text in texts:
            assert classifier.probabilities(text) == pytest.approx(
                classifier.sklearn_probabilities(text), abs=1e-9
            )


# --------------------------------------------------------------------------- shipped intents


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("where's my stuff?", "wismo"),
        ("I want to cancel ORD-1001", "cancel_order"),
        ("I moved, please ship to my new address", "change_address"),
        ("how do I send the headphones back", "return_label"),
        ("please cancel my coffee subscription", "subscription_cancel"),
        ("pause my subscription until next month", "subscription_pause"),
        ("upgrade me to the premium box", "subscription_change_plan"),
        ("refund my subscription charge", "subscription_refund"),
        ("let me talk to a human", "handoff"),
        ("what is the capital of France", None),
    ],
)
def test_the_shipped_intents_understand_customers(shipped, text, name):
    assert shipped.classify(text).name == name


def test_every_shipped_intent_has_30_examples_and_a_flow():
    spec = yaml.safe_load((FLOWS / "intents.yaml").read_text(encoding="utf-8"))
    flows = {p.stem for p in (FLOWS / "flows").glob("*.yaml")}
    for name, intent in spec["intents"].items():
        assert intent["flow"] in flows
        if name != "handoff":
            assert len(intent["examples"]) >= 30, name
    assert spec["fallback"]["flow"] in flows


def test_a_message_not_understood_starts_the_fallback_flow(shipped):
    assert shipped.flow_for(shipped.classify("asdf qwer")) == "not_understood"
    assert shipped.flow_for(shipped.classify("where is my parcel")) == "wismo"


def test_no_held_out_message_is_a_training_example():
    spec = yaml.safe_load((FLOWS / "intents.yaml").read_text(encoding="utf-8"))
    held = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    training = {normalize(e) for i in spec["intents"].values() for e in i["examples"]}
    messages = [m for ms in held["in_scope"].values() for m in ms] + held["off_topic"]
    assert len(messages) - len(held["off_topic"]) >= 150 and len(held["off_topic"]) >= 30
    assert [m for m in messages if normalize(m) in training] == []
    assert set(held["in_scope"]) == set(spec["intents"])


# ---------------------------------------------------------------------- the action, the CLI


def test_the_intent_action_enters_through_the_entry_points():
    spec = builtin_registry().get("intent")
    assert spec is not None and spec.takes_ctx and spec.required == {"text"}


async def test_the_intent_action_answers_from_the_projects_model(shipped):
    data = await intent_action("where is ord 1004", ctx=SimpleNamespace(intents=shipped))
    assert data["name"] == "wismo" and data["entities"] == {"order_number": "ORD-1004"}
    assert set(data["runner_up"]) == {"name", "confidence"}
    nothing = await intent_action("tell me a joke", ctx=SimpleNamespace(intents=shipped))
    assert nothing["name"] is None


async def test_a_router_flow_calls_the_intent_action_on_the_projects_model(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "router.yaml").write_text(
        "name: router\n"
        "inputs: {text: string}\n"
        "outputs: {intent: string, order: string}\n"
        "steps:\n"
        "  - call: intent\n"
        "    with: {text: '{{ text }}'}\n"
        "    extract: {intent: name, order: entities.order_number}\n"
    )
    wismo = [
        "where is my order",
        "has it shipped yet",
        "tracking please",
        "my parcel is late",
        "when will it arrive",
    ]
    cancel = [
        "cancel my order",
        "I want to cancel",
        "please cancel it",
        "stop my order",
        "cancel the purchase",
    ]
    (tmp_path / "intents.yaml").write_text(
        yaml.safe_dump(
            {
                "threshold": 0.3,
                "entities": {"order_number": {"pattern": r"\bORD-(\d{4})\b", "format": "ORD-{1}"}},
                "intents": {
                    "wismo": {"flow": "router", "examples": wismo},
                    "cancel_order": {"flow": "router", "examples": cancel},
                },
            }
        )
    )
    result = await csflow.Project.load(tmp_path, environ={}).run(
        "router", {"text": "please cancel ORD-1001"}
    )
    assert result.status == "completed", result.error
    assert result.outputs == {"intent": "cancel_order", "order": "ORD-1001"}


def test_one_intent_loads_with_a_warning(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text("name: a\nsteps:\n  - reply: hi\n")
    examples = ["where is my order", "has it shipped", "tracking please", "late parcel", "eta?"]
    (tmp_path / "intents.yaml").write_text(
        yaml.safe_dump({"intents": {"wismo": {"flow": "a", "examples": examples}}})
    )
    loaded = load_project(tmp_path, environ={})
    assert loaded.intents is not None and loaded.intents.classify("hello").name == "wismo"
    assert [w.message.split(":")[0] for w in loaded.warnings] == [
        "with one intent every message is 'wismo' (confidence 1)"
    ]


async def test_the_intent_action_without_a_model_fails_as_an_action():
    with pytest.raises(StepError) as info:
        await intent_action("hi", ctx=SimpleNamespace(intents=None))
    assert info.value.kind == "action"


def test_csflow_intent_json_is_the_specs_shape():
    out = CliRunner().invoke(cli, ["intent", "where is ord 1004", "-p", str(FLOWS), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert list(data) == ["intent", "confidence", "runner_up", "entities"]
    assert data["intent"] == "wismo" and data["entities"] == {"order_number": "ORD-1004"}
    out = CliRunner().invoke(cli, ["intent", "tell me a joke", "-p", str(FLOWS), "--json"])
    assert json.loads(out.output)["intent"] is None


def test_csflow_intent_prints_a_table():
    out = CliRunner().invoke(cli, ["intent", "cancel order 1001", "-p", str(FLOWS)])
    assert out.exit_code == 0
    assert re.search(r"cancel_order\s+│\s+0\.\d\d", out.output)
    assert "order_number=ORD-1001" in out.output


def test_csflow_intent_without_intents_yaml_is_a_usage_error(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text("name: a\nsteps:\n  - reply: hi\n")
    out = CliRunner().invoke(cli, ["intent", "hi", "-p", str(tmp_path)])
    assert out.exit_code == 2
    assert "intents.yaml not found" in out.output


def test_a_router_flow_calling_intent_loads_beside_intents_yaml(tmp_path):
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "router.yaml").write_text(
        "name: router\ninputs:\n  text: string\nsteps:\n"
        "  - id: understand\n    call: intent\n    with: {text: '{{ text }}'}\n"
        "    extract: {intent: name}\n"
    )
    examples = {
        "a": ["where is my order", "has it shipped", "tracking please", "late parcel", "eta?"],
        "b": ["cancel it", "cancel my order", "stop the order", "don't send it", "void it"],
    }
    (tmp_path / "intents.yaml").write_text(
        yaml.safe_dump(
            {"intents": {k: {"flow": "router", "examples": v} for k, v in examples.items()}}
        )
    )
    loaded = load_project(tmp_path, environ={})
    assert loaded.warnings == [] and loaded.intents is not None
    assert loaded.intents.flows == {"a": "router", "b": "router"}
