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


def date_filter(value: Any, fmt: str = "%B %-d, %Y") -> str:
    """Format a date or an ISO 8601 text: ``{{ order_date | date("%d %b") }}``."""
    if value is None:
        return ""
    return _as_date(value).strftime(fmt)


_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def money(value: Any, currency: str | None = None) -> str:
    """``59.9 | money("USD")`` is ``$59.90``; unknown currencies print their code; none is empty."""
    if value is None:
        return ""
    try:
        amount = Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    except ArithmeticError:
        raise ValueError(f"{value!r} is not an amount of money") from None
    code = (currency or "").upper()
    symbol = _SYMBOLS.get(code)
    if symbol:
        return f"{'-' if amount < 0 else ''}{symbol}{abs(amount):,.2f}"
    return f"{amount:,.2f} {code}".strip()
