"""What every channel shares: request fields, key rings, the deadline backstop, the log line."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

import pytest

from csflow import UsageError
from csflow.engine.expressions import Expressions
from csflow.serve.logs import REDACTOR, AccessEntry, JsonFormatter
from csflow.serve.runtime import BACKSTOP_MARGIN, KeyRing, run_within, truthy
from csflow.serve.templates import Fields, scope, unwrap

E = Expressions()


def render(template: str, request: dict[str, Any], **run: Any) -> Any:
    return E.template(template)(scope(request, **run))


def test_an_absent_request_field_is_none_not_an_error():
    assert render("{{ request.order_id }}", {}) is None
    assert render("{{ request.context.email }}", {"context": {}}) is None
    assert render("{{ request.order_id is none }}", {}) is True


def test_request_fields_keep_their_types_and_nest():
    assert render("{{ request.tenant_id }}", {"tenant_id": 42}) == 42
    assert render("{{ request.context.email }}", {"context": {"email": "a@b.co"}}) == "a@b.co"
    assert render("{{ request['x-y'] }}", {"x-y": "z"}) == "z"


def test_a_field_named_like_a_dict_method_is_the_field():
    assert render("{{ request.items }}", {"items": "3"}) == "3"
    assert render("{{ request.get }}", {}) is None


def test_nothing_private_is_reachable():
    with pytest.raises(Exception, match=r"unsafe|attribute|undefined"):
        render("{{ request._data }}", {"a": 1})


def test_a_mapping_given_to_a_flow_is_plain_data():
    value = render("{{ request.context }}", {"context": {"email": "a@b.co", "n": [{"k": 1}]}})
    assert isinstance(value, Fields)
    assert unwrap(value) == {"email": "a@b.co", "n": [{"k": 1}]}


def test_outputs_reply_and_status_are_there_after_the_run():
    text = "{{ status }}: {{ reply }} ({{ outputs.found }})"
    assert render(text, {}, outputs={"found": True}, reply="hi", status="completed") == (
        "completed: hi (True)"
    )


@pytest.mark.parametrize(
    ("value", "found"),
    [(True, True), (False, False), (None, False), ("false", False), ("False", False),
     ("no", False), ("", False), ("0", False), ("yes", True), (1, True), ([], False)],
)  # fmt: skip
def test_found_reads_as_an_author_means_it(value, found):
    assert truthy(value) is found


def test_a_key_ring_picks_the_tenant_of_the_key():
    ring = KeyRing()
    assert ring.add(b"key-one-123", "default") and ring.add(b"key-two-456", "acme")
    assert ring.match("key-one-123") == "default"
    assert ring.match("key-two-456") == "acme"
    for wrong in (None, "", "key-one-12", "key-one-1234", "KEY-ONE-123"):
        assert ring.match(wrong) is None
    assert ring.add(b"key-one-123", "globex") is False  # one key, one tenant


class Sleeper:
    """A project whose run ignores its deadline: what the backstop is for."""

    def __init__(self, seconds: float, fail: Exception | None = None) -> None:
        self.seconds = seconds
        self.fail = fail
        self.deadline: float | None = None

    async def run(self, flow: str, inputs: Any, *, deadline: float) -> Any:
        self.deadline = deadline
        if self.fail is not None:
            raise self.fail
        await asyncio.sleep(self.seconds)  # a run that overruns: the behaviour under test
        raise AssertionError("the backstop should have cut this run")


async def test_the_backstop_answers_in_time_when_a_run_ignores_its_deadline():
    project = Sleeper(10)
    entry = AccessEntry("GET", "/zipchat", None, flow="wismo")
    started = time.perf_counter()
    outcome = await run_within(project, "wismo", {}, 1.0)
    elapsed = time.perf_counter() - started
    assert outcome.overran and outcome.result is None
    assert elapsed < 1.0 - BACKSTOP_MARGIN + 0.1
    assert project.deadline is not None and project.deadline < 1.0 - BACKSTOP_MARGIN
    entry.ran(outcome)
    assert entry.fields()["run_status"] == "overran" and "run_id" not in entry.fields()


async def test_no_time_left_means_no_run():
    project = Sleeper(0)
    outcome = await run_within(project, "wismo", {}, 0.3)
    assert outcome.overran and outcome.no_time and project.deadline is None


async def test_a_usage_error_is_the_flows_refusal():
    outcome = await run_within(
        Sleeper(0, UsageError("flow 'x': missing input 'a'")),
        "x",
        {},
        5,
    )
    assert outcome.usage_error == "flow 'x': missing input 'a'"


def test_a_log_line_is_json_and_redacts_configured_secrets():
    REDACTOR.add("super-secret-key-42")
    record = logging.LogRecord("csflow.access", logging.INFO, __file__, 1, "request", None, None)
    record.fields = {"path": "/zipchat", "note": "got super-secret-key-42 somehow"}
    line = JsonFormatter().format(record)
    data = json.loads(line)
    assert data["path"] == "/zipchat" and data["level"] == "info"
    assert "super-secret-key-42" not in line and "***" in data["note"]
