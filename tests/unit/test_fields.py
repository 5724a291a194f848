"""Extraction (§5): JMESPath and XPath, then default, map, type; required and strict fail with ``extract``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jmespath
import pytest
from lxml import etree

from csflow import StepError
from csflow.engine.fields import compile_field, extract
from csflow.engine.model import FieldSpec

ORDER = {
    "id": "ORD-1",
    "status": "SHP",
    "created_at": "2024-10-10T14:21:00Z",
    "placed": "20241009",
    "count": "42",
    "gift": "yes",
    "paid": True,
    "note": None,
    "shipments": [{"tracking_number": "1Z999", "carrier": {"name": "UPS"}}],
    "customer": {"address": {"city": "Berlin", "zip": "10115"}, "tags": []},
}


def field(spec: str | dict[str, Any], namespaces: dict[str, str] | None = None) -> Any:
    model = spec if isinstance(spec, str) else FieldSpec.model_validate(spec)
    return compile_field("value", model, namespaces or {})


def get(
    spec: str | dict[str, Any],
    data: Any = ORDER,
    xml: Any = None,
    namespaces: dict[str, str] | None = None,
) -> Any:
    return extract((field(spec, namespaces),), data, xml)["value"]


def extract_error(spec: dict[str, Any], data: Any = ORDER) -> StepError:
    with pytest.raises(StepError) as info:
        get(spec, data)
    assert info.value.kind == "extract"
    return info.value


# -- paths and map ------------------------------------------------------------------------------


def test_a_string_is_a_jmespath_over_the_data() -> None:
    assert get("shipments[0].tracking_number") == "1Z999"
    assert (
        get("max_by(@, &n).id", [{"id": "a", "n": 1}, {"id": "b", "n": 3}, {"id": "c", "n": 2}])
        == "b"
    )
    assert get("length(shipments)") == 1


def test_map_translates_into_the_business_vocabulary() -> None:
    spec = {"path": "status", "map": {"SHP": "shipped", "DLV": "delivered"}}
    assert get(spec) == "shipped"
    assert get(spec, {"status": "DLV"}) == "delivered"
    assert get(spec, {"status": "NEW"}) == "NEW"  # unmapped values pass through


def test_map_reads_booleans_and_numbers_as_yaml_keys() -> None:
    assert get({"path": "paid", "map": {"true": "paid", "false": "unpaid"}}) == "paid"
    assert get({"path": "code", "map": {"1": "one"}}, {"code": 1}) == "one"


def test_a_strict_map_refuses_unmapped_values() -> None:
    spec = {"path": "status", "map": {"DLV": "delivered"}, "strict": True}
    error = extract_error(spec)
    assert "SHP" in error.message and "value" in error.message
    assert get(spec, {"status": "DLV"}) == "delivered"


# -- types --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"path": "created_at", "type": "date"}, dt.date(2024, 10, 10)),
        ({"path": "placed", "type": "date"}, dt.date(2024, 10, 9)),
        ({"path": "d", "type": "date"}, dt.date(2024, 2, 29)),
        ({"path": "count", "type": "integer"}, 42),
        ({"path": "gift", "type": "boolean"}, True),
        ({"path": "paid", "type": "string"}, "true"),
        ({"path": "count", "type": "number"}, 42),
        (
            {"path": "created_at", "type": "datetime"},
            dt.datetime(2024, 10, 10, 14, 21, tzinfo=dt.UTC),
        ),
        ({"path": "status", "map": {"SHP": "1"}, "type": "integer"}, 1),
    ],
)
def test_type_coerces_the_value(spec: dict[str, Any], expected: Any) -> None:
    value = get(spec, {**ORDER, "d": "2024-02-29"})
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    "spec",
    [
        {"path": "status", "type": "integer"},
        {"path": "status", "type": "date"},
        {"path": "placed", "type": "boolean"},
        {"path": "shipments", "type": "object"},
    ],
)
def test_a_value_that_is_not_its_type_is_an_extract_error(spec: dict[str, Any]) -> None:
    error = extract_error(spec)
    assert "value" in error.message


def test_a_type_error_reads_as_english() -> None:
    error = extract_error({"path": "status", "type": "integer"})
    assert "is not an integer" in error.message
    assert "a an" not in error.message


# -- default and required -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["missing", "note", "customer.missing.deep", "shipments[5].carrier"]
)
def test_default_stands_in_for_nothing_or_null(path: str) -> None:
    assert get({"path": path, "default": "unknown"}) == "unknown"
    assert get({"path": path}) is None


def test_default_does_not_replace_false_or_zero() -> None:
    assert get({"path": "paid", "default": "x"}, {"paid": False}) is False
    assert get({"path": "n", "default": 5}, {"n": 0}) == 0


@pytest.mark.parametrize("path", ["missing", "note", "shipments[3].tracking_number"])
def test_required_fails_when_nothing_is_found(path: str) -> None:
    error = extract_error({"path": path, "required": True})
    assert path in error.message


def test_required_is_met_by_a_value() -> None:
    assert get({"path": "status", "required": True}) == "SHP"


def test_a_field_without_path_reads_its_own_name() -> None:
    compiled = compile_field("status", FieldSpec(), {})
    assert extract((compiled,), ORDER) == {"status": "SHP"}


# -- the dotted fast path agrees with JMESPath ---------------------------------------------------

SAMPLES: list[Any] = [
    ORDER,
    {"a": {"b": {"c": 0}}},
    {"a": {"b": [1, 2]}},
    {"a": [{"b": 1}]},
    {"a": "text"},
    {"a": None},
    {"a": {"b": False}},
    {"a": {"b": {}}},
    [{"a": 1}],
    "plain",
    None,
    {"_x": {"y_2": 3}},
]
DOTTED = [
    "status",
    "a",
    "a.b",
    "a.b.c",
    "customer.address.city",
    "customer.tags",
    "_x.y_2",
    "missing.x",
]


@pytest.mark.parametrize("path", DOTTED)
@pytest.mark.parametrize("data", SAMPLES, ids=range(len(SAMPLES)))
def test_dotted_paths_give_what_jmespath_gives(path: str, data: Any) -> None:
    got = field(path).get(data, None)
    want = jmespath.search(path, data)
    assert got == want and type(got) is type(want)
    # The same path through the JMESPath engine itself (a pipe forces the general case).
    assert field(f"{path} | @").get(data, None) == want


# -- XPath --------------------------------------------------------------------------------------

ENVELOPE = b"""<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:o="http://erp.example.com/orders">
  <s:Body>
    <o:GetOrderResponse>
      <o:Order>
        <o:Status>IN_TRANSIT</o:Status>
        <o:Placed>20241009</o:Placed>
        <o:Line sku="A">1</o:Line>
        <o:Line sku="B">2</o:Line>
        <o:Line sku="C">4</o:Line>
      </o:Order>
    </o:GetOrderResponse>
  </s:Body>
</s:Envelope>"""
NS = {"o": "http://erp.example.com/orders", "soap": "http://schemas.xmlsoap.org/soap/envelope/"}


@pytest.fixture(scope="module")
def tree() -> Any:
    return etree.fromstring(ENVELOPE)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"xpath": "string(//o:Status)"}, "IN_TRANSIT"),
        ({"xpath": "//o:Order/o:Status"}, "IN_TRANSIT"),
        ({"xpath": "count(//o:Line)"}, 3),
        ({"xpath": "count(//o:Line)", "type": "string"}, "3"),
        ({"xpath": "sum(//o:Line)", "type": "integer"}, 7),
        ({"xpath": "string(//o:Line[@sku='B'])", "type": "integer"}, 2),
        ({"xpath": "//o:Line/@sku"}, ["A", "B", "C"]),
        ({"xpath": "string(//o:Placed)", "type": "date"}, dt.date(2024, 10, 9)),
        (
            {
                "xpath": "string(/soap:Envelope/soap:Body//o:Status)",
                "map": {"IN_TRANSIT": "shipped"},
            },
            "shipped",
        ),
        ({"xpath": "string(//o:Missing)", "default": "unknown"}, "unknown"),
        ({"xpath": "count(//o:Missing)"}, 0),
    ],
)
def test_xpath_reads_an_xml_tree_with_the_connection_namespaces(
    tree: Any, spec: dict[str, Any], expected: Any
) -> None:
    value = get(spec, data={"plain": "dict"}, xml=tree, namespaces=NS)
    assert value == expected
    assert isinstance(value, type(expected))


def test_xpath_required_fails_when_nothing_is_found(tree: Any) -> None:
    with pytest.raises(StepError) as info:
        get({"xpath": "//o:Missing", "required": True}, data=None, xml=tree, namespaces=NS)
    assert info.value.kind == "extract"


def test_xpath_over_json_data_is_an_extract_error() -> None:
    with pytest.raises(StepError) as info:
        get({"xpath": "//o:Status"}, data={"status": "x"}, namespaces=NS)
    assert info.value.kind == "extract"


def test_jmespath_over_an_xml_tree_is_an_extract_error(tree: Any) -> None:
    with pytest.raises(StepError) as info:
        get("a.b[0]", data=tree)
    assert info.value.kind == "extract"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("length(lines[?shipped_quantity != null && shipped_quantity < quantity])", 0),
        ("max_by(shipments, &shipped_at)", None),
        ("sort_by(shipments, &shipped_at)", None),  # an empty list is "nothing found"
        ("sum(lines[].price)", 0),
        ("join(', ', lines[].name)", ""),
        ("keys(address)", None),
    ],
)
def test_a_missing_list_counts_as_empty_in_functions(path: str, expected: object) -> None:
    # An order with no `lines`, `shipments` or `address`: APIs leave empty lists out.
    field = compile_field("x", path, {})
    assert field.apply({"number": "ORD-1"}, None) == expected


def test_a_present_list_is_still_counted() -> None:
    field = compile_field("x", "length(lines[?shipped])", {})
    assert field.apply({"lines": [{"shipped": True}, {"shipped": False}]}, None) == 1
