"""What a case or a turn expected, compared with what its run did: one line per difference.

A case (``expect``) and a conversation's turn (``turns[].expect``) share these comparisons;
a turn adds its intent and its handoff, and says its status with the reply, since the reply
is what tells a waiting conversation from a finished one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from csflow.engine.model import (
    Expectation,
    HandoffExpectation,
    TextExpectation,
    TurnExpectation,
)
from csflow.engine.result import RunResult


def compare(expect: Expectation, result: RunResult) -> list[str]:
    """A case's differences: its status, then what every expectation shares."""
    failures: list[str] = []
    if expect.status is not None and result.status != expect.status:
        failures.append(f"status: expected {expect.status}, got {result.status}{_why(result)}")
    return failures + _shared(expect, result)


def compare_turn(expect: TurnExpectation, result: RunResult) -> list[str]:
    """A turn's differences: intent, status (with the reply), the shared ones, the handoff."""
    failures: list[str] = []
    if "intent" in expect.model_fields_set:
        failures.extend(_compare_intent(expect.intent, result.intent))
    if expect.status is not None and result.status != expect.status:
        failures.append(
            f"expected status {expect.status}, got {result.status}{_why(result)};"
            f" reply was {result.reply!r}"
        )
    failures.extend(_shared(expect, result))
    if expect.handoff is not None:
        failures.extend(_compare_handoff(expect.handoff, result))
    return failures


def run_error(result: RunResult) -> str | None:
    """``kind: message`` of a failed run, or None."""
    error = result.error
    return f"{error['kind']}: {error['message']}" if error else None


def _why(result: RunResult) -> str:
    error = run_error(result)
    return f" ({error})" if error else ""


def _shared(expect: Expectation | TurnExpectation, result: RunResult) -> list[str]:
    failures: list[str] = []
    for key, want in (expect.outputs or {}).items():
        if key not in result.outputs:
            why = {
                "completed": "the flow has no such output",
                "failed": "the run failed before returning",
            }.get(result.status, f"the run ended {result.status} before returning")
            failures.append(f"outputs.{key}: expected {_show(want)}, but {why}")
            continue
        got = result.outputs[key]
        if _plain(got) != _plain(want):
            failures.append(f"outputs.{key}: expected {_show(want)}, got {_show(got)}")
    if expect.reply is not None:
        failures.extend(compare_text("reply", expect.reply, result.reply))
    if expect.path is not None:
        missing = _not_in_order(expect.path, result.path)
        if missing:
            failures.append(
                f"path: {missing!r} did not run in this order; the steps were {result.path}"
            )
    if expect.error is not None:
        err = result.error or {}
        if expect.error.kind is not None and err.get("kind") != expect.error.kind:
            failures.append(f"error.kind: expected {expect.error.kind}, got {err.get('kind')}")
        if expect.error.message is not None and expect.error.message not in str(err.get("message")):
            want, got = expect.error.message, err.get("message")
            failures.append(f"error.message: expected it to contain {want!r}, got {got!r}")
    return failures


def _compare_intent(want: str | None, got: dict[str, Any] | None) -> list[str]:
    name = got.get("name") if got else None
    if name == want:
        return []
    said = "not understood" if name is None else name
    if got is not None and got.get("confidence") is not None:
        said += f" (confidence {got['confidence']})"
    return [f"intent: expected {want or 'not understood (null)'}, got {said}"]


def _compare_handoff(want: HandoffExpectation, result: RunResult) -> list[str]:
    got = result.handoff
    if got is None:
        return [f"handoff: expected one, but the run ended {result.status}{_why(result)}"]
    failures: list[str] = []
    if want.reason is not None and got.get("reason") != want.reason:
        failures.append(f"handoff.reason: expected {want.reason}, got {got.get('reason')}")
    if want.note is not None:
        failures.extend(compare_text("handoff.note", want.note, got.get("note")))
    return failures


def compare_text(label: str, want: str | TextExpectation, got: str | None) -> list[str]:
    """A plain string equals (trimmed), ``{contains}`` is found, ``{matches}`` is searched."""
    text = got or ""
    if isinstance(want, str):
        if text.strip() != want.strip():
            return [f"{label}: expected\n      {want.strip()!r}\n    got\n      {text!r}"]
        return []
    out = []
    if want.contains is not None and want.contains not in text:
        out.append(f"{label}: expected it to contain {want.contains!r}, got {text!r}")
    if want.matches is not None and not re.search(want.matches, text):
        out.append(f"{label}: expected it to match /{want.matches}/, got {text!r}")
    return out


def _not_in_order(wanted: list[str], ran: list[str]) -> str | None:
    """The first wanted id that does not follow the previous ones in ``ran``, or None."""
    pos = 0
    for step in wanted:
        try:
            pos = ran.index(step, pos) + 1
        except ValueError:
            return step
    return None


def _plain(value: Any) -> Any:
    """Values as YAML writes them: dates as ISO text, numbers compared by value."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, default=str)
