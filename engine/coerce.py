"""Conversion of values to the language's types (§2), shared by inputs, outputs and extraction."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CoercionError(ValueError):
    """A value that cannot be read as the type asked for."""


def coerce(value: Any, type_name: str | None) -> Any:
    """``value`` as ``type_name``; None stays None. Raises CoercionError with a readable message."""
    if value is None or type_name in (None, "any"):
        return value
    try:
        return _COERCERS[type_name](value)
    except CoercionError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise CoercionError(f"{_show(value)} is not {_article(type_name)}") from exc


def check_format(value: Any, fmt: str | None) -> str | None:
    """A message when ``value`` breaks its declared format, else None."""
    if fmt == "email" and isinstance(value, str) and not _EMAIL.match(value):
        return f"{_show(value)} is not an email address"
    if fmt == "phone" and isinstance(value, str) and sum(c.isdigit() for c in value) < 7:
        return f"{_show(value)} is not a phone number"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _article(type_name: str) -> str:
    return ("an " if type_name[0] in "aeiou" else "a ") + type_name


def _string(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not value.is_integer():
            raise CoercionError(f"{value!r} is not a whole number")
        return int(value)
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)
        if not number.is_integer():
            raise CoercionError(f"{_show(value)} is not a whole number") from None
        return int(number)


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise CoercionError(f"{value!r} is not a number")
    if isinstance(value, int | float):
        return value
    text = str(value).strip()
    number = float(text)
    return int(number) if re.fullmatch(r"-?\d+", text) else number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CoercionError(f"{_show(value)} is not a boolean")


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if re.fullmatch(r"\d{8}", text):
        return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    if len(text) == 10:
        return dt.date.fromisoformat(text)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).date()


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d{8}", text):
            text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, tuple | set):
        return list(value)
    return [value]


def _object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise CoercionError(f"{_show(value)} is not an object")


_COERCERS = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "list": _list,
    "object": _object,
}


def to_json(value: Any) -> Any:
    """``json.dumps`` default: dates as ISO 8601, anything else as text."""
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)
