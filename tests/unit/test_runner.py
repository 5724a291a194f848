"""Running flows (§3, §7, §8) through ``Project.run`` and ``run_sync``, with custom actions only."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import pytest
from unit_support import ProjectFiles

import csflow
from csflow import RunResult, UsageError

RUNNER = Path(__file__).parent / "projects" / "runner"
FLOWS = RUNNER / "flows"  # the flows that several tests share


@pytest.fixture
def make(proj: ProjectFiles) -> Any:
    """Write flows (texts, or paths of files) with the shared actions, and load the project."""

    def make(**flows: str | Path) -> Any:
        proj.write(flows=flows, actions={"sim": RUNNER / "actions" / "sim.py"})
        return proj.load(environ={})

    return make


def ids(result: RunResult) -> list[str | None]:
    return [s.id for s in result.steps]


# -- switch, next, if ---------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "size"), [(500, "big"), (9, "medium"), (3, "big"), (0, "small")])
def test_switch_takes_the_first_match_or_the_default(make: Any, n: int, size: str) -> None:
    result = make(size=FLOWS / "size.yaml").run_sync("size", {"n": n})
    assert result.status == "completed", result.error
    assert result.outputs == {"size": size}
    assert "unreachable" not in ids(result)
    assert ids(result)[-2:] == [size, "done"]


def test_a_switch_without_match_or_default_goes_on_below(make: Any) -> None:
    project = make(
        s="""
    name: s
    inputs:
      n: integer
    outputs:
      path: string
    steps:
      - switch:
          - if: "n == 1"
            next: one
      - set: {path: below}
        next: end
      - id: one
        set: {path: one}
      - id: end
        return: {}
    """
    )
    assert project.run_sync("s", {"n": 2}).outputs == {"path": "below"}
    assert project.run_sync("s", {"n": 1}).outputs == {"path": "one"}


def test_next_jumps_and_a_plain_jump_needs_no_verb(make: Any) -> None:
    project = make(
        j="""
    name: j
    outputs:
      trail: list
    steps:
      - set: {trail: [start]}
        next: third
      - id: second
        set: {trail: "{{ trail + ['second'] }}"}
        next: end
      - id: third
        set: {trail: "{{ trail + ['third'] }}"}
      - next: second
      - id: end
        return: {}
    """
    )
    result = project.run_sync("j")
    assert result.outputs == {"trail": ["start", "third", "second"]}


def test_if_skips_a_step_which_leaves_no_record(make: Any) -> None:
    project = make(
        i="""
    name: i
    inputs:
      vip: boolean
    outputs:
      greeting: string
      discount: integer
    steps:
      - id: vip_discount
        if: vip
        set: {discount: 20}
      - id: hello
        set: {greeting: "{{ 'Hi' if discount is none else 'Welcome back' }}"}
    """
    )
    plain = project.run_sync("i", {"vip": False})
    assert plain.outputs == {"greeting": "Hi", "discount": None}
    assert ids(plain) == ["hello"]
    vip = project.run_sync("i", {"vip": True})
    assert vip.outputs == {"greeting": "Welcome back", "discount": 20}
    assert ids(vip) == ["vip_discount", "hello"]


# -- on_error -------------------------------------------------------------------------------------

ON_ERROR = """
name: e
inputs:
  mode: string
outputs:
  handled: string
  kind: string
  ok: boolean
steps:
  - id: call
    call: boom
    with: {reason: "{{ mode }}"}
    on_error: {target}
  - set: {handled: continued, kind: "{{ steps.call.error.kind }}", ok: "{{ steps.call.ok }}"}
    next: end
  - id: handler
    set: {handled: handler, kind: "{{ steps.call.error.kind }}", ok: "{{ steps.call.ok }}"}
  - id: end
    return: {}
"""


@pytest.mark.parametrize(("target", "handled"), [("handler", "handler"), ("continue", "continued")])
def test_on_error_goes_to_a_step_or_continues(make: Any, target: str, handled: str) -> None:
    result = make(e=ON_ERROR.replace("{target}", target)).run_sync("e", {"mode": "x"})
    assert result.status == "completed", result.error
    assert result.outputs == {"handled": handled, "kind": "action", "ok": False}
    failed = result.steps[0]
    assert (failed.id, failed.ok, failed.error["kind"]) == ("call", False, "action")
    assert "boom: x" in failed.error["message"]


@pytest.mark.parametrize(
    "flow", [ON_ERROR.replace("{target}", "fail"), ON_ERROR.replace("    on_error: {target}\n", "")]
)
def test_on_error_fail_and_the_default_end_the_run(make: Any, flow: str) -> None:
    result = make(e=flow).run_sync("e", {"mode": "why"})
    assert result.status == "failed"
    assert result.error["kind"] == "action"
    assert result.error["step"] == "call"
    assert "boom: why" in result.error["message"]
    assert ids(result) == ["call"]


def test_a_missing_key_at_run_time_fails_the_step_with_expression(make: Any) -> None:
    project = make(
        x="""
    name: x
    outputs:
      kind: string
    steps:
      - id: read
        set: {order: {status: shipped}}
      - id: typo
        set: {s: "{{ order.statsu }}"}
        on_error: handler
      - return: {kind: unreachable}
      - id: handler
        return: {kind: "{{ steps.typo.error.kind }}"}
    """
    )
    result = project.run_sync("x")
    assert result.outputs == {"kind": "expression"}
    assert "statsu" in result.steps[1].error["message"]


# -- return, fail, reply ----------------------------------------------------------------------------


def test_return_takes_given_values_then_variables_then_none(make: Any) -> None:
    project = make(
        r="""
    name: r
    inputs:
      n: integer
    outputs:
      given: string
      from_var: integer
      unset: string
      when: date
    steps:
      - set: {from_var: "{{ n * 2 }}", given: ignored, when: "2024-10-10T08:00:00Z"}
      - return: {given: "{{ 'n is ' ~ n }}"}
      - set: {from_var: 0}
    """
    )
    result = project.run_sync("r", {"n": 21})
    assert result.outputs == {
        "given": "n is 21",
        "from_var": 42,
        "unset": None,
        "when": dt.date(2024, 10, 10),
    }
    assert result.steps[-1].verb == "return"


def test_reaching_the_end_is_a_return(make: Any) -> None:
    result = make(
        r="""
    name: r
    outputs:
      x: integer
    steps:
      - set: {x: 1}
    """
    ).run_sync("r")
    assert (result.status, result.outputs) == ("completed", {"x": 1})


def test_a_required_output_that_was_not_set_fails_the_run(make: Any) -> None:
    result = make(
        r="""
    name: r
    outputs:
      x: {type: integer, required: true}
    steps:
      - set: {y: 1}
    """
    ).run_sync("r")
    assert result.status == "failed"
    assert result.error["kind"] == "validation"
    assert "'x'" in result.error["message"]


def test_fail_ends_the_run_with_its_message(make: Any) -> None:
    project = make(
        f="""
    name: f
    inputs:
      who: string
    steps:
      - reply: "Checking for {{ who }}"
      - id: stop
        fail: "No order for {{ who }}"
      - reply: never
    """
    )
    result = project.run_sync("f", {"who": "Jane"})
    assert result.status == "failed"
    assert result.error == {"kind": "flow_failed", "message": "No order for Jane", "step": "stop"}
    assert result.reply == "Checking for Jane"
    assert ids(result) == [None, "stop"]


def test_the_last_reply_wins_and_customer_text_is_not_rendered_twice(make: Any) -> None:
    project = make(
        t="""
    name: t
    inputs:
      name: string
    steps:
      - reply: first
      - reply: "Hello {{ name }}"
    """
    )
    result = project.run_sync("t", {"name": "{{ 7 * 7 }}{% raw %}"})
    assert result.reply == "Hello {{ 7 * 7 }}{% raw %}"


def test_a_variable_not_set_on_this_path_is_none(make: Any) -> None:
    project = make(
        v="""
    name: v
    inputs:
      early: boolean
    outputs:
      seen: boolean
    steps:
      - if: early
        set: {later: 1}
      - return: {seen: "{{ later is none }}"}
    """
    )
    assert project.run_sync("v", {"early": False}).outputs == {"seen": True}
    assert project.run_sync("v", {"early": True}).outputs == {"seen": False}


# -- the step limit and the deadline ------------------------------------------------------------


def test_a_run_may_take_exactly_a_thousand_steps(make: Any) -> None:
    result = make(loop=FLOWS / "loop.yaml").run_sync(
        "loop", {"rounds": 499}
    )  # 1 + 2 * 499 + 1 steps
    assert result.status == "completed", result.error
    assert result.outputs == {"i": 499}
    assert len(result.steps) == 1000


def test_the_thousand_and_first_step_fails_with_step_limit(make: Any) -> None:
    result = make(loop=FLOWS / "loop.yaml").run_sync("loop", {"rounds": 500})
    assert result.status == "failed"
    assert result.error["kind"] == "step_limit"
    assert len(result.steps) == 1000


def test_on_error_cannot_catch_the_step_limit(make: Any) -> None:
    project = make(
        loop="""
    name: loop
    steps:
      - id: sub
        flow: spin
        on_error: continue
      - reply: escaped
    """,
        spin="""
    name: spin
    steps:
      - id: again
        next: again
    """,
    )
    result = project.run_sync("loop")
    assert result.status == "failed"
    assert result.error["kind"] == "step_limit"
    assert result.reply is None


async def test_the_deadline_ends_a_run_that_waits(make: Any) -> None:
    project = make(
        slow="""
    name: slow
    steps:
      - id: wait
        call: nap
        with: {seconds: 30}
        on_error: continue
      - reply: went on
    """
    )
    started = time.monotonic()
    result = await project.run("slow", deadline=0.3)
    assert time.monotonic() - started < 1.3
    assert result.status == "failed"
    assert result.error["kind"] == "deadline"
    assert result.reply is None


def test_the_deadline_holds_inside_a_sub_flow(make: Any) -> None:
    project = make(
        outer="""
    name: outer
    steps:
      - id: inner
        flow: inner
        on_error: continue
    """,
        inner="""
    name: inner
    steps:
      - call: nap
        with: {seconds: 30}
    """,
    )
    started = time.monotonic()
    result = project.run_sync("outer", deadline=0.3)
    assert time.monotonic() - started < 1.3
    assert (result.status, result.error["kind"]) == ("failed", "deadline")


def test_run_sync_returns_at_the_deadline_even_when_a_sync_action_sleeps(make: Any) -> None:
    project = make(
        slow="""
    name: slow
    steps:
      - call: nap_sync
        with: {seconds: 2.5}
    """
    )
    started = time.monotonic()
    result = project.run_sync("slow", deadline=0.3)
    elapsed = time.monotonic() - started
    assert (result.status, result.error["kind"]) == ("failed", "deadline")
    assert elapsed < 1.3, f"run_sync returned after {elapsed:.1f}s, the deadline was 0.3s"


# -- sub-flows ------------------------------------------------------------------------------------


def test_a_sub_flow_outputs_become_variables(make: Any) -> None:
    project = make(
        find_order=FLOWS / "find_order.yaml",
        wismo="""
    name: wismo
    inputs:
      email: string
    outputs:
      answer: string
    steps:
      - id: find
        flow: find_order
        with: {email: "{{ email }}"}
      - return: {answer: "{{ found }} {{ order_id }} {{ steps.find.data.order_id }}"}
    """,
    )
    result = project.run_sync("wismo", {"email": "jane@example.com"})
    assert result.status == "completed", result.error
    assert result.outputs == {"answer": "True ORD-1 ORD-1"}
    assert result.path == ["find", "find.orders", "find.check"]


def test_a_sub_flow_with_as_gives_one_variable(make: Any) -> None:
    project = make(
        find_order=FLOWS / "find_order.yaml",
        wismo="""
    name: wismo
    outputs:
      answer: object
      found: boolean
    steps:
      - flow: find_order
        with: {email: nobody@elsewhere.org}
        as: lookup_result
      - return: {answer: "{{ lookup_result }}"}
    """,
    )
    result = project.run_sync("wismo")
    assert result.outputs == {"answer": {"found": False, "order_id": None}, "found": None}
    # Without an id the sub-flow's steps are named after the flow.
    assert "find_order.orders" in result.path


def test_a_failing_sub_flow_is_a_step_error_of_the_caller(make: Any) -> None:
    project = make(
        inner="""
    name: inner
    steps:
      - id: stop
        fail: inner gave up
    """,
        outer="""
    name: outer
    outputs:
      kind: string
      message: string
    steps:
      - id: sub
        flow: inner
        on_error: handle
      - id: handle
        return: {kind: "{{ steps.sub.error.kind }}", message: "{{ steps.sub.error.message }}"}
    """,
    )
    result = project.run_sync("outer")
    assert result.status == "completed", result.error
    assert result.outputs["kind"] == "flow_failed"
    assert "inner gave up" in result.outputs["message"]
    assert result.path == ["sub", "sub.stop", "handle"]


def test_a_sub_flow_gets_its_inputs_checked(make: Any) -> None:
    project = make(
        find_order=FLOWS / "find_order.yaml",
        outer="""
    name: outer
    steps:
      - id: sub
        flow: find_order
        with: {email: "{{ none }}"}
    """,
    )
    result = project.run_sync("outer")
    assert result.status == "failed"
    assert result.error["step"] == "sub"
    assert "email" in result.error["message"]


# -- inputs -----------------------------------------------------------------------------------------

INPUTS = """
name: inp
inputs:
  n: integer
  email: {type: string, format: email}
  vip: {type: boolean, required: false}
  size: {type: string, enum: [s, m, l], required: false, default: m}
outputs:
  n: integer
  vip: boolean
  size: string
steps:
  - call: touch
    with: {path: "{marker}"}
"""


@pytest.fixture
def inputs_project(make: Any, tmp_path: Path) -> tuple[Any, Path]:
    marker = tmp_path / "ran.txt"
    return make(inp=INPUTS.replace("{marker}", str(marker))), marker


def test_input_text_is_converted_to_the_declared_type(inputs_project: tuple[Any, Path]) -> None:
    project, marker = inputs_project
    result = project.run_sync("inp", {"n": "9", "email": "jane@example.com", "vip": "yes"})
    assert result.status == "completed", result.error
    assert result.outputs == {"n": 9, "vip": True, "size": "m"}
    assert type(result.outputs["n"]) is int
    assert marker.exists()


@pytest.mark.parametrize(
    ("inputs", "named"),
    [
        ({"email": "jane@example.com"}, ["'n'"]),
        (
            {"n": "9", "email": "jane@example.com", "emial": "x", "colour": "red"},
            ["'emial'", "did you mean 'email'", "'colour'"],
        ),
        ({"n": "nine", "email": "jane@example.com"}, ["'n'", "nine"]),
        ({"n": 1.5, "email": "jane@example.com"}, ["'n'"]),
        ({"n": 1, "email": "not-an-email"}, ["'email'"]),
        ({"n": 1, "email": "jane@example.com", "size": "xl"}, ["'size'", "xl"]),
        ({"n": "x", "bogus": 1}, ["'n'", "'bogus'", "'email'"]),
    ],
)
def test_bad_inputs_are_usage_errors_naming_them_and_nothing_runs(
    inputs_project: tuple[Any, Path], inputs: dict[str, Any], named: list[str]
) -> None:
    project, marker = inputs_project
    with pytest.raises(UsageError) as info:
        project.run_sync("inp", inputs)
    for text in named:
        assert text in str(info.value)
    assert not marker.exists()


def test_a_wrong_type_reads_as_english(inputs_project: tuple[Any, Path]) -> None:
    project, _ = inputs_project
    with pytest.raises(UsageError) as info:
        project.run_sync("inp", {"n": "nine", "email": "jane@example.com"})
    assert "is not an integer" in str(info.value)
    assert "a an" not in str(info.value)


# -- what later steps see ------------------------------------------------------------------------


def test_steps_id_is_visible_to_later_steps(make: Any) -> None:
    project = make(
        s="""
    name: s
    outputs:
      report: object
    steps:
      - id: good
        call: echo
        with: {n: "7", flag: "yes", value: "{{ [1, 2] }}"}
      - id: bad
        call: boom
        on_error: continue
      - id: skipped
        if: "false"
        call: echo
      - return:
          report:
            good_ok: "{{ steps.good.ok }}"
            good_status: "{{ steps.good.status }}"
            good_attempts: "{{ steps.good.attempts }}"
            good_data: "{{ steps.good.data.n }} {{ steps.good.data.n_type }} {{ steps.good.data.flag }}"
            good_value: "{{ steps.good.data.value }}"
            bad_ok: "{{ steps.bad.ok }}"
            bad_kind: "{{ steps.bad.error.kind }}"
            bad_message: "{{ steps.bad.error.message }}"
            skipped_seen: "{{ steps.skipped is defined }}"
            duration_is_number: "{{ steps.good.duration_ms >= 0 }}"
    """
    )
    result = project.run_sync("s", run_id="run-42")
    report = result.outputs["report"]
    assert report["good_ok"] is True and report["bad_ok"] is False
    assert report["good_status"] is None and report["good_attempts"] == 1
    assert report["good_data"] == "7 int True"
    assert report["good_value"] == [1, 2]
    assert report["bad_kind"] == "action" and "boom" in report["bad_message"]
    assert report["skipped_seen"] is False
    assert report["duration_is_number"] is True


def test_an_action_gets_ctx_and_its_return_value_feeds_extract(make: Any) -> None:
    project = make(
        s="""
    name: s
    outputs:
      run: string
      n: integer
    steps:
      - call: echo
        with: {n: 3}
        extract: {run: run_id, n: n}
    """
    )
    result = project.run_sync("s", run_id="run-42")
    assert result.outputs == {"run": "run-42", "n": 3}


def test_extract_reads_a_value_of_the_scope(make: Any) -> None:
    project = make(
        s="""
    name: s
    outputs:
      status: string
      tracking: string
    steps:
      - set:
          latest: {status: SHP, shipments: [{tracking_number: 1Z999}]}
      - extract:
          from: "{{ latest }}"
          fields:
            status: {path: status, map: {SHP: shipped}}
            tracking: "shipments[0].tracking_number"
    """
    )
    assert project.run_sync("s").outputs == {"status": "shipped", "tracking": "1Z999"}


def test_a_required_field_that_is_missing_goes_to_on_error(make: Any) -> None:
    project = make(
        s="""
    name: s
    outputs:
      kind: string
    steps:
      - id: read
        call: echo
        extract:
          tracking: {path: tracking, required: true}
        on_error: nope
      - return: {kind: "{{ none }}"}
      - id: nope
        return: {kind: "{{ steps.read.error.kind }}"}
    """
    )
    assert project.run_sync("s").outputs == {"kind": "extract"}


# -- the result ------------------------------------------------------------------------------------


def test_the_result_has_the_shape_of_section_8(make: Any) -> None:
    project = make(
        find_order=FLOWS / "find_order.yaml",
        wismo="""
    name: wismo
    inputs:
      email: string
    outputs:
      order_id: string
      when: date
    steps:
      - id: find
        flow: find_order
        with: {email: "{{ email }}"}
      - set: {when: "20241010"}
      - id: answer
        reply: "Order {{ order_id }}"
    """,
    )
    result = project.run_sync("wismo", {"email": "jane@example.com"})
    shape = result.as_dict()
    assert list(shape) == ["flow", "status", "outputs", "reply", "error", "steps"]
    assert (shape["flow"], shape["status"], shape["error"]) == ("wismo", "completed", None)
    assert shape["reply"] == "Order ORD-1"
    for step in shape["steps"]:
        assert {"id", "verb", "action", "ok", "status", "duration_ms", "attempts", "error"} <= set(
            step
        )
        assert isinstance(step["duration_ms"], float) and step["attempts"] >= 1
    call = next(s for s in shape["steps"] if s["id"] == "find.orders")
    assert (call["verb"], call["action"], call["ok"], call["error"]) == (
        "call",
        "lookup",
        True,
        None,
    )
    decoded = json.loads(result.to_json())
    assert decoded["outputs"] == {"order_id": "ORD-1", "when": "2024-10-10"}


def test_a_failed_result_says_kind_message_and_step(make: Any) -> None:
    result = make(
        f="""
    name: f
    steps:
      - id: explode
        call: boom
        with: {reason: kaput}
    """
    ).run_sync("f")
    decoded = json.loads(result.to_json())
    assert decoded["status"] == "failed"
    assert {"kind", "message", "step"} <= set(decoded["error"])
    assert (decoded["error"]["kind"], decoded["error"]["step"]) == ("action", "explode")
    assert decoded["steps"][0]["error"]["kind"] == "action"


async def test_a_lone_surrogate_in_an_input_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    project = _inputs_project(tmp_path)
    with pytest.raises(
        UsageError, match=r"input 'order_number': holds characters that are not valid text"
    ):
        await project.run("echo", {"order_number": "ORD-1003\ud800"})
    with pytest.raises(UsageError, match=r"input 'tags': holds characters"):
        await project.run("echo", {"order_number": "ORD-1", "tags": ["ok", "bad\udc00"]})


@pytest.mark.parametrize(
    ("value", "what"), [({}, "an object"), (["a"], "a list"), (True, "a boolean")]
)
async def test_a_text_input_refuses_objects_lists_and_booleans(
    tmp_path: Path, value: object, what: str
) -> None:
    project = _inputs_project(tmp_path)
    with pytest.raises(UsageError, match=rf"input 'order_number': expected text, got {what}"):
        await project.run("echo", {"order_number": value})


async def test_a_number_for_a_text_input_is_taken_as_its_text(tmp_path: Path) -> None:
    result = await _inputs_project(tmp_path).run("echo", {"order_number": 1001})
    assert result.outputs == {"order_number": "1001"}


def _inputs_project(tmp_path: Path) -> Any:
    return csflow.Project.load(Path(__file__).parent / "projects" / "text_inputs")


def test_a_reply_never_shows_none_it_fails_its_step_instead(make: Any) -> None:
    project = make(
        refund="""
                name: refund
                inputs: {amount: {type: number, required: false}}
                steps:
                  - id: tell
                    reply: "We're refunding {{ amount | money('USD') }} to your card."
                    on_error: sorry
                  - return: {}
                  - id: sorry
                    reply: "I'll have a teammate confirm your refund."
            """
    )
    shown = project.run_sync("refund", {"amount": 12.5})
    assert shown.reply == "We're refunding $12.50 to your card."
    hidden = project.run_sync("refund", {})
    assert (
        hidden.status == "completed" and hidden.reply == "I'll have a teammate confirm your refund."
    )
    tell = next(s for s in hidden.steps if s.id == "tell")
    assert tell.error["kind"] == "expression"
    assert "the reply would show a value that is none" in tell.error["message"]


def test_a_reply_may_show_none_guarded_and_other_templates_are_unchanged(make: Any) -> None:
    project = make(
        guarded="""
                name: guarded
                inputs: {ref: {type: string, required: false}}
                outputs: {note: string}
                steps:
                  - set: {note: "ref={{ ref }}"}
                  - reply: "Done.{% if ref %} Reference: {{ ref }}.{% endif %}"
            """
    )
    result = project.run_sync("guarded", {})
    assert result.reply == "Done."
    assert result.outputs == {"note": "ref=None"}  # not a reply: no customer reads it
