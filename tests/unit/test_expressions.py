"""Expressions (§4): native types, strict undefined, the sandbox, its caps, and the filters."""

from __future__ import annotations

import datetime as dt
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from csflow import StepError
from csflow.engine.expressions import Expressions

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def x() -> Expressions:
    return Expressions()


@pytest.fixture
def scope(x: Expressions) -> dict[str, Any]:
    return {
        **x.globals(),
        "order": {"status": "shipped", "lines": [{"sku": "A"}, {"sku": "B"}], "total": 59.9},
        "count": 3,
        "name": "Jane",
        "flag": False,
        "nothing": None,
    }


def expression_error(compiled: Any, scope: dict[str, Any]) -> StepError:
    with pytest.raises(StepError) as info:
        compiled(scope)
    assert info.value.kind == "expression"
    return info.value


# -- types ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ order.lines }}", [{"sku": "A"}, {"sku": "B"}]),
        ("{{ count }}", 3),
        ("  {{ count + 1 }}  ", 4),
        ("{{ order.total }}", 59.9),
        ("{{ flag }}", False),
        ("{{ nothing }}", None),
        (
            "{{ order }}",
            {"status": "shipped", "lines": [{"sku": "A"}, {"sku": "B"}], "total": 59.9},
        ),
        ("{{ [count, name] }}", [3, "Jane"]),
    ],
)
def test_a_single_expression_keeps_its_type(
    x: Expressions, scope: dict[str, Any], source: str, expected: Any
) -> None:
    value = x.template(source)(scope)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Order is {{ order.status }}", "Order is shipped"),
        ("{{ count }} items", "3 items"),
        ("{{ name }} has {{ count }}", "Jane has 3"),
        ("{% if count > 2 %}many{% else %}few{% endif %}", "many"),
        ("no braces at all", "no braces at all"),
    ],
)
def test_templates_render_text(
    x: Expressions, scope: dict[str, Any], source: str, expected: str
) -> None:
    assert x.template(source)(scope) == expected


def test_values_render_templates_inside_lists_and_mappings(
    x: Expressions, scope: dict[str, Any]
) -> None:
    value = x.value({"who": "{{ name }}", "n": ["{{ count }}", 7], "fixed": True})(scope)
    assert value == {"who": "Jane", "n": [3, 7], "fixed": True}


def test_rendered_data_is_not_rendered_again(x: Expressions, scope: dict[str, Any]) -> None:
    scope["name"] = "{{ 7 * 7 }}"
    assert x.template("Hi {{ name }}")(scope) == "Hi {{ 7 * 7 }}"
    assert x.template("{{ name }}")(scope) == "{{ 7 * 7 }}"


# -- strict undefined ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "source"),
    [
        ("template", "{{ order.statsu }}"),
        ("template", "Status: {{ order.statsu }}"),
        ("expression", "order.statsu"),
        ("expression", "order['statsu'] == 'x'"),
        ("expression", "order.statsu or 'fallback'"),
        ("expression", "order.lines[5]"),
    ],
)
def test_a_missing_key_fails_with_expression(
    x: Expressions, scope: dict[str, Any], kind: str, source: str
) -> None:
    error = expression_error(getattr(x, kind)(source), scope)
    assert "statsu" in error.message or "5" in error.message


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("order.statsu is defined", False),
        ("order.status is defined", True),
        ("order.tracking is not defined", True),
        ("order.get('tracking')", None),
        ("order.get('tracking', 'none yet')", "none yet"),
        ("nothing is none", True),
    ],
)
def test_authors_can_test_for_a_missing_key(
    x: Expressions, scope: dict[str, Any], source: str, expected: Any
) -> None:
    assert x.expression(source)(scope) == expected


# -- the sandbox --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "''.__class__",
        "''.__class__.__mro__[1].__subclasses__()",
        "().__class__.__bases__[0].__subclasses__()",
        "name.__class__.__base__",
        "cycler.mro()",
        "joiner.__mro__",
        "namespace.__subclasses__()",
        "cycler.__init__.__globals__",
        "order.update({'status': 'hacked'})",
        "order.lines.append(1)",
        "range(10 ** 8) | list",
    ],
)
def test_the_sandbox_blocks_escapes(x: Expressions, scope: dict[str, Any], source: str) -> None:
    expression_error(x.expression(source), scope)
    assert scope["order"]["status"] == "shipped"


@pytest.mark.parametrize(
    "source",
    [
        "2 ** 100000",
        "2 ** -100000",
        "'a' * 1000000",
        "1000000 * 'a'",
        "[0] * 10000000",
        "[1, 2, 3] * 100000",
        "name * 100000",
    ],
)
def test_power_and_repetition_are_capped(
    x: Expressions, scope: dict[str, Any], source: str
) -> None:
    expression_error(x.expression(source), scope)


def test_chained_powers_are_capped_too() -> None:
    # Jinja's ** is left-associative: each exponent here is 1000, under the cap, but the
    # result is 10 ** (10 ** 9). Run in a child process so that a missing cap cannot hang the suite.
    code = (
        "from csflow import StepError\n"
        "from engine.expressions import Expressions\n"
        "try:\n"
        "    Expressions().expression('10 ** 1000 ** 1000 ** 1000')({})\n"
        "except StepError as exc:\n"
        "    print(exc.kind)\n"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=3,
            cwd=ROOT,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("'10 ** 1000 ** 1000 ** 1000' was still computing after 3s")
    assert done.stdout.strip() == "expression", done.stderr


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_small_power_and_repetition_still_work(x: Expressions, scope: dict[str, Any]) -> None:
    assert x.expression("2 ** 10")(scope) == 1024
    assert x.expression("'ab' * 3")(scope) == "ababab"
    assert x.expression("[0] * 3")(scope) == [0, 0, 0]
    assert x.expression("count * 2")(scope) == 6


def test_template_output_is_capped(x: Expressions, scope: dict[str, Any]) -> None:
    expression_error(x.template("{% for i in range(20) %}{{ 'x' * 99999 }}{% endfor %}"), scope)


# -- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "expected"),
    [
        ("+1 (415) 867-5309", "8675309"),
        ("+49 151 2345 6789", "3456789"),
        ("4151234567", "1234567"),
        ("867-5309", "8675309"),
    ],
)
def test_normalize_phone_keeps_the_last_seven_digits(
    x: Expressions, phone: str, expected: str
) -> None:
    assert x.expression("phone | normalize_phone")({"phone": phone}) == expected


def test_normalize_phone_compares_numbers_written_differently(x: Expressions) -> None:
    same = x.expression("a | normalize_phone == b | normalize_phone")
    assert same({"a": "+1 (415) 867-5309", "b": "415.867.5309"}) is True
    assert same({"a": "+1 (415) 867-5309", "b": "415.867.5300"}) is False
    assert x.expression("p | normalize_phone(10)")({"p": "+1 (415) 867-5309"}) == "4158675309"


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2024-10-03", "%d %b %Y", "03 Oct 2024"),
        ("20241003", "%Y/%m/%d", "2024/10/03"),
        ("2024-10-03T14:21:00Z", "%Y-%m-%d %H:%M", "2024-10-03 14:21"),
        (dt.date(2024, 1, 5), "%d.%m.%Y", "05.01.2024"),
        (dt.datetime(2024, 1, 5, 9, 30), "%H:%M", "09:30"),
    ],
)
def test_date_formats_dates_and_iso_text(
    x: Expressions, value: Any, fmt: str, expected: str
) -> None:
    assert x.expression("d | date(fmt)")({"d": value, "fmt": fmt}) == expected


def test_date_without_a_format_reads_as_a_date(x: Expressions) -> None:
    text = x.expression("d | date")({"d": "2024-10-03"})
    assert "2024" in text and "3" in text and "Oct" in text


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (59.9, "USD", "$59.90"),
        (1234.5, "EUR", "€1,234.50"),
        (-3, "usd", "-$3.00"),
        ("12.345", "GBP", "£12.35"),
        (3.005, "CHF", "3.01 CHF"),
    ],
)
def test_money_formats_amounts(x: Expressions, amount: Any, currency: str, expected: str) -> None:
    assert x.expression("a | money(c)")({"a": amount, "c": currency}) == expected


# -- paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "segment"),
    [
        ("a/../b", "a%2F..%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("ORD 1?x=1#y", "ORD%201%3Fx%3D1%23y"),
        ("%2e%2e", "%252e%252e"),
        (42, "42"),
    ],
)
def test_a_path_value_is_one_encoded_segment(x: Expressions, value: Any, segment: str) -> None:
    path = x.path("/orders/{{ id }}/items")({"id": value})
    assert path == f"/orders/{segment}/items"
    assert path.count("/") == 3


def test_a_path_without_values_is_left_as_written(x: Expressions) -> None:
    assert x.path("/orders/recent")({}) == "/orders/recent"


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        ({"kind": "timeout"}, True),
        ({"kind": "connect"}, True),
        ({"kind": "deadline"}, True),
        ({"kind": "http_status", "status": 503}, True),
        ({"kind": "http_status", "status": 429}, True),
        ({"kind": "http_status", "status": 404}, False),
        ({"kind": "auth", "status": 401}, False),
        ({"kind": "extract"}, False),
        ({"kind": "parse"}, False),
        ({"kind": "flow_failed", "cause": "timeout"}, True),
        ({"kind": "flow_failed", "cause": "http_status", "cause_status": 502}, True),
        ({"kind": "flow_failed", "cause": "extract"}, False),
        ({"kind": "flow_failed"}, False),  # a `fail:` step said why
        (None, False),
    ],
)
def test_outage_tells_an_api_that_did_not_answer_from_our_own_mistakes(
    x: Expressions, error: object, outage: bool
) -> None:
    assert x.expression("error is outage")({"error": error}) is outage
