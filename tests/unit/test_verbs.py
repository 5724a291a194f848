"""One type per verb: the model's verb fields, the compiler's table and the plan's types agree."""

from __future__ import annotations

import typing

from csflow.engine import plan
from csflow.engine.compiled import Compiled, Constant, Expression, Template
from csflow.engine.expressions import Expressions
from csflow.engine.model import VERB_FIELDS
from csflow.engine.model import StepSpec as StepModel
from csflow.engine.verbs import JUMP, VERBS


def test_every_verb_field_of_the_model_has_one_row_in_the_table() -> None:
    assert list(VERBS) == list(VERB_FIELDS)


def test_every_step_type_is_a_verb_of_the_table_and_has_its_verb_name() -> None:
    types = set(typing.get_args(plan.Step))
    assert types == {v.step for v in VERBS.values()} | {JUMP.step}
    for key, verb in VERBS.items():
        assert verb.step.verb == key


def test_extract_is_a_modifier_on_a_call_and_a_verb_alone() -> None:
    assert StepModel(call="http", extract={"a": "b"}).verbs() == ["call"]
    assert StepModel(extract={"from": "{{ x }}", "fields": {"a": "b"}}).verbs() == ["extract"]
    assert StepModel(set={"a": 1}, reply="hi").verbs() == ["set", "reply"]


def test_steps_are_frozen() -> None:
    step = plan.Jump(index=0, id=None, line=1, next=1)
    try:
        step.next = 5  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("a compiled step could be changed")


def test_on_error_is_a_type_not_a_sentinel() -> None:
    assert plan.GoTo(3) == plan.GoTo(3)
    assert isinstance(plan.END_RUN, plan.EndRun)
    assert plan.Jump(index=0, id=None, line=1, next=1).on_error is plan.END_RUN


def test_compiled_values_keep_their_source_and_say_if_they_are_constant() -> None:
    x = Expressions()
    text = x.template("Order {{ n }} shipped")
    assert isinstance(text, Template)
    assert (text.source, text.constant, text({"n": 7})) == (
        "Order {{ n }} shipped",
        False,
        "Order 7 shipped",
    )
    single = x.template("{{ items }}")
    assert isinstance(single, Expression)
    assert single({"items": [1, 2]}) == [1, 2]  # one expression keeps its type
    plain = x.template("no braces")
    assert isinstance(plain, Constant) and plain.constant and plain({}) == "no braces"
    mapping = x.value({"a": "{{ n }}", "b": 2})
    assert isinstance(mapping, Compiled) and not mapping.constant
    assert mapping({"n": 1}) == {"a": 1, "b": 2}
    assert x.value({"a": 1, "b": [2, "c"]}).constant
    path = x.path("/orders/{{ id }}")
    assert path.source == "/orders/{{ id }}" and path({"id": "a/.."}) == "/orders/a%2F.."
