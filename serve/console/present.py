"""How values read in a page: relative times, durations, failure reasons, redacted JSON.

These are the templates' filters. They take what the store holds (ISO texts, milliseconds,
the §8 error dicts) and never raise on an odd value: a page shows what it can.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

Redact = Callable[[str], str]


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def ago(text: str | None, now: dt.datetime | None = None) -> str:
    """``"3 min ago"`` for an ISO time; the page puts the exact time in a title beside it."""
    moment = parse_time(text)
    if moment is None:
        return text or "never"
    seconds = ((now or dt.datetime.now(dt.UTC)) - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for size, unit in ((86_400, "day"), (3_600, "h"), (60, "min"), (1, "s")):
        if seconds >= size or unit == "s":
            count = int(seconds // size)
            if unit == "s" and count < 10:
                return "just now"
            label = f"{count} {unit}{'s' if unit == 'day' and count != 1 else ''}"
            return f"in {label}" if future else f"{label} ago"
    raise AssertionError("unreachable: the loop ends on seconds")


def lapsed(expires_at: str | None, now: dt.datetime | None = None) -> bool:
    """A wait's ``expires_at`` has passed: the conversation reads as expired (expiry is lazy:
    the store marks it only when the next message comes, docs/decisions.md)."""
    moment = parse_time(expires_at)
    return moment is not None and moment <= (now or dt.datetime.now(dt.UTC))


def shown_status(conversation: Any, now: dt.datetime | None = None) -> str:
    """A conversation's status as a page shows it: ``expired`` for a wait that ran out."""
    status = str(getattr(conversation, "status", ""))
    if status == "waiting" and lapsed(getattr(conversation, "expires_at", None), now):
        return "expired"
    return status


def duration(ms: float | None) -> str:
    if ms is None:
        return "\N{EN DASH}"  # nothing measured, which is not zero
    if ms < 1:
        return "<1 ms"
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1_000:.1f} s"
    minutes, seconds = divmod(round(ms / 1_000), 60)
    return f"{minutes} min {seconds} s"


def reason(error: Mapping[str, Any] | None) -> str:
    """A failure in one line: ``"http_status at step order: the API answered 503"``."""
    if not error:
        return ""
    kind, step, message = error.get("kind"), error.get("step"), error.get("message")
    where = f" at step {step}" if step else ""
    head = f"{kind}{where}" if kind else where.strip()
    return f"{head}: {message}" if head and message else str(head or message or error)


def percent(value: Any) -> str:
    return f"{value * 100:.0f} %" if isinstance(value, int | float) else ""


def pretty(redact: Redact) -> Callable[[Any], str]:
    """The filter that shows a value as indented JSON with every known secret as ***."""

    def show(value: Any) -> str:
        text = value if isinstance(value, str) else json.dumps(value, indent=2, default=str)
        return redact(text)

    return show


def with_query(params: Mapping[str, str], **changes: Any) -> str:
    """``"?flow=wismo&page=2"``: ``params`` with ``changes`` (None drops one); "" when empty."""
    merged = {**params, **{k: str(v) for k, v in changes.items() if v is not None}}
    for name in [k for k, v in changes.items() if v is None]:
        merged.pop(name, None)
    return "?" + urlencode(merged) if merged else ""


FILTERS: dict[str, Callable[..., str]] = {
    "ago": ago,
    "duration": duration,
    "reason": reason,
    "percent": percent,
    "shown_status": shown_status,
}

__all__ = [
    "FILTERS",
    "ago",
    "duration",
    "lapsed",
    "parse_time",
    "percent",
    "pretty",
    "reason",
    "shown_status",
    "with_query",
]
