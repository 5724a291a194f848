"""A JSON field or step id that shares a dict method's name reads as data (decisions.md)."""

from __future__ import annotations

import pytest

from csflow.engine.errors import StepError
from csflow.engine.expressions import Expressions


@pytest.fixture(scope="module")
def x() -> Expressions:
    return Expressions()


def test_a_field_named_items_is_the_data(x: Expressions) -> None:
    order = {"items": [{"sku": "A"}], "keys": 3, "get": "g"}
    assert x.expression("order.items[0].sku")({"order": order}) == "A"
    assert x.expression("order.keys + 1")({"order": order}) == 4
    assert x.template("{{ order.get }}")({"order": order}) == "g"


def test_a_step_called_update_is_the_step(x: Expressions) -> None:
    steps = {"update": {"ok": True, "status": 200}}
    assert x.expression("steps.update.ok and steps.update.status == 200")({"steps": steps}) is True


def test_methods_still_work_when_no_key_shadows_them(x: Expressions) -> None:
    assert x.expression("order.get('missing', 'none here')")({"order": {"a": 1}}) == "none here"
    assert sorted(x.expression("order.keys() | list")({"order": {"b": 1, "a": 2}})) == ["a", "b"]


def test_missing_keys_stay_strict(x: Expressions) -> None:
    with pytest.raises(StepError) as info:
        x.expression("order.statsu")({"order": {"status": "x"}})
    assert info.value.kind == "expression"
