"""The serve layer's own pieces: the platform table, the access log entry and its writer,
the one-look-up templates (issue 9, part 6; bench/README.md, "Serve")."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from csflow.engine.expressions import Expressions
from csflow.serve.config import platforms
from csflow.serve.endpoint import Endpoint, unencodable
from csflow.serve.logs import AccessEntry, JsonFormatter, LoopFlushedStreamHandler
from csflow.serve.models import CHANNEL_TYPES
from csflow.serve.mount import Mount
from csflow.serve.runtime import ChannelRun
from csflow.serve.templates import _lookup, scope


def test_every_channel_type_has_its_endpoint_class_in_the_one_table() -> None:
    table = platforms()
    assert set(table) == set(CHANNEL_TYPES.values())
    for model, endpoint in table.items():
        assert issubclass(endpoint, Endpoint | Mount)  # a platform's endpoint, or the console
        assert CHANNEL_TYPES[endpoint.platform] is model  # the name shown is the file's


def test_an_access_entry_has_only_what_is_known_and_never_a_query() -> None:
    entry = AccessEntry("GET", "/zipchat/order", "127.0.0.1", status=401, outcome="unauthorized")
    assert entry.fields() == {
        "method": "GET",
        "path": "/zipchat/order",
        "status": 401,
        "duration_ms": 0.0,
        "client": "127.0.0.1",
        "outcome": "unauthorized",
    }


def test_an_entry_records_why_there_was_no_run() -> None:
    entry = AccessEntry("POST", "/v1/flows/x/runs", None)
    entry.ran(ChannelRun(overran=True, no_time=True))
    assert entry.run_status == "no_time" and entry.run_id is None
    entry.ran(ChannelRun(usage_error="flow 'x': missing input 'a'"))
    assert entry.run_status == "bad_inputs"


class CountingStream(io.StringIO):
    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_the_access_log_writes_once_per_turn_of_the_loop() -> None:
    stream = CountingStream()
    handler = LoopFlushedStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("csflow.test_pipeline")
    logger.addHandler(handler)
    logger.propagate = False

    async def answer_ten() -> int:
        for i in range(10):
            logger.warning("request", extra={"fields": {"n": i}})
        written_before_the_turn_ends = stream.writes
        await asyncio.sleep(0)  # the loop's next turn: the flush under test comes then
        return written_before_the_turn_ends

    try:
        assert asyncio.run(answer_ten()) == 0
        assert stream.writes == 1
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["n"] for line in lines] == list(range(10))
        logger.warning("outside any loop", extra={"fields": {}})
        assert stream.writes == 2  # no loop: written at once
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    ["{{ request.order_id }}", "{{request.absent}}", "{{ outputs.found }}", "{{ reply }}",
     "{{ status }}", "{{ request.nested }}"],
)  # fmt: skip
def test_a_one_look_up_template_gives_what_jinja_gives(text: str) -> None:
    s = scope({"order_id": "ORD-1", "nested": {"a": 1}}, {"found": False}, "Hi.", "completed")
    fast = _lookup(text)
    assert fast is not None
    slow = Expressions().template(text)(s)
    assert repr(fast(s)) == repr(slow)


def test_templates_that_are_more_than_a_look_up_go_to_jinja() -> None:
    assert _lookup("{{ reply }}!") is None and _lookup("{{ request._x }}") is None
    assert _lookup("{{ request.a | upper }}") is None


def test_text_that_is_not_unicode_is_found_where_it_is() -> None:
    assert unencodable({"a": ["ok", {"b": "x\ud800"}]}, "inputs") == "inputs.a[1].b"
    assert unencodable({"a": "fine", "n": 3}, "inputs") is None
