"""What a dry run may claim: its reply is a preview, and its outputs stop at the first kept write.

A dry run makes the reads and keeps every write back (``adapters.calls``); the flow goes on as
if the write had been answered, with no data. So what the flow says after that point is what
it *would* say, not what happened:

- the reply is framed once, here, for the CLI, the flow tests and every channel alike:
  ``Preview (dry run, nothing was changed): …``;
- an output the flow changed after the first kept-back write is not claimed: ``outputs``
  keeps its value from before that write (often none), and ``preview_outputs`` holds what the
  run would have returned. ``cancelled: true`` after a kept-back ``CancelOrder`` is a preview,
  never an output.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csflow.engine.coerce import CoercionError, coerce

PREVIEW = "Preview (dry run, nothing was changed): "


def preview_reply(reply: str | None) -> str | None:
    """The reply of a dry run, marked as the preview it is; no reply stays none."""
    if reply is None or reply.startswith(PREVIEW):
        return reply
    return PREVIEW + reply


def snapshot(outputs: Mapping[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs' values (of their declared types) before a step that may keep a write back."""
    out: dict[str, Any] = {}
    for name, spec in outputs.items():
        try:
            out[name] = coerce(scope.get(name), spec.type)
        except CoercionError:
            out[name] = None  # not yet a value of the output's type: nothing to claim
    return out


def split_claims(
    outputs: Mapping[str, Any], before: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(claimed, previewed): an output that changed after the first kept-back write is a preview.

    An output that only lost its value (a field of the write's answer took its default) keeps
    the value it had: nothing was changed, so that is still true.

    >>> split_claims({"found": True, "cancelled": True}, {"found": True, "cancelled": None})
    ({'found': True, 'cancelled': None}, {'cancelled': True})
    """
    claimed: dict[str, Any] = {}
    previewed: dict[str, Any] = {}
    for name, value in outputs.items():
        earlier = before.get(name)
        if value is None or value == earlier:
            claimed[name] = earlier if value is None else value
        else:
            claimed[name] = _known(earlier, value)
            previewed[name] = value
    return claimed, previewed


def _known(earlier: Any, value: Any) -> Any:
    # A value from before the write is still true (the order was "processing"); but only when
    # it is of the output's own kind: the variable may have held something else by then.
    return earlier if earlier is not None and type(earlier) is type(value) else None
