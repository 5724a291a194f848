"""The filters csflow adds to Jinja's own (§4): ``normalize_phone``, ``date``, ``money``."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


def normalize_phone(value: Any, digits: int = 7) -> str:
    """Keep the digits of a phone number, then its last ``digits`` (seed 000's rule)."""
    only = "".join(ch for ch in str(value or "") if ch.isdigit())
    return only[-digits:] if digits else only


def _as_date(value: Any) -> dt.date | dt.datetime:
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.date() if len(text) <= 10 else parsed


def date_filter(value: Any, fmt: str = "%B %-d, %Y") -> str | None:
    """Format a date or an ISO 8601 text: ``{{ order_date | date("%d %b") }}``.

    None stays None, so that a reply refuses to show it rather than print a blank.
    """
    if value is None:
        return None
    return _as_date(value).strftime(fmt)


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: Any, currency: str | None = None) -> str | None:
    """``59.9 | money("USD")`` is ``$59.90``; unknown currencies print their code; none stays."""
    if value is None:
        return None
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except ArithmeticError:
        raise ValueError(f"{value!r} is not an amount of money") from None
    code = (currency or "").upper()
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{'-' if amount < 0 else ''}{symbol}{abs(amount):,.2f}"
    return f"{amount:,.2f} {code}".strip()


# Kinds that mean the API did not answer (as opposed to answering something csflow could not use).
_NO_ANSWER = frozenset({"connect", "timeout", "deadline"})


def is_outage(error: Any) -> bool:
    """``steps.find.error is outage``: the API did not answer, or answered 5xx or 429.

    A failed sub-flow counts by the error that failed it (its ``cause``), so a reply can tell
    "our order system is down" from "something went wrong on our side" (a mapping error, a
    bad answer), which must never be told to a customer as an outage.
    """
    if not isinstance(error, dict):
        return False
    kind = error.get("cause") or error.get("kind")
    status = error.get("cause_status") if error.get("cause") else error.get("status")
    if kind in _NO_ANSWER:
        return True
    return kind == "http_status" and isinstance(status, int) and (status >= 500 or status == 429)
