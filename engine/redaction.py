"""Redaction: every known secret value becomes ``***`` in text, bytes and log records.

A ``Redactor`` knows one connection's secrets (and the tokens its auth obtains while
running). Every redactor also feeds one process-wide redactor, ``EVERYWHERE``, that the
logging filter uses: a log line cannot say which connection it came from, and redacting
another project's secret in a log is harmless. The engine owns this (it logs for actions);
the adapters fill it with what they read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

REDACTED = "***"
MIN_SECRET_LEN = 4  # shorter values would redact ordinary words; credentials are longer


def _forms(secret: str) -> list[str]:
    """The secret as it may be printed: raw, and escaped inside a JSON string."""
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    return [secret] if escaped == secret else [secret, escaped]


class Redactor:
    """Replaces every known secret value with ``***`` in text and bytes.

    The lists are replaced, never changed in place, so that the run store's writer thread
    can redact while the event loop learns a new token.
    """

    def __init__(self, secrets: Iterable[str] = (), *, share: bool = True) -> None:
        self._share = share
        self._text: list[str] = []
        self._bytes: list[bytes] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if len(secret) < MIN_SECRET_LEN:
            return
        new = [s for s in _forms(secret) if s not in self._text]
        if new:
            texts = sorted([*self._text, *new], key=len, reverse=True)
            self._bytes = [s.encode() for s in texts]
            self._text = texts
        if self._share and self is not EVERYWHERE:
            EVERYWHERE.add(secret)

    def __bool__(self) -> bool:
        return bool(self._text)

    def text(self, value: str) -> str:
        for secret in self._text:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def bytes(self, value: bytes) -> bytes:
        for secret in self._bytes:
            if secret in value:
                value = value.replace(secret, REDACTED.encode())
        return value


EVERYWHERE = Redactor(share=False)


class RedactingFilter(logging.Filter):
    """Formats a record's message now, with every known secret replaced by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if EVERYWHERE:
            try:
                message = record.getMessage()
            except Exception:  # a broken format string: leave it to the handler to report
                return True
            clean = EVERYWHERE.text(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_FILTER = RedactingFilter()


def redact_logs(logger: logging.Logger) -> logging.Logger:
    """Attach the redacting filter to ``logger`` (records made on it; not its children)."""
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


# httpx logs every request's URL at INFO: an api_key in the query would be in it.
for _name in ("httpx", "csflow", "csflow.connections"):
    redact_logs(logging.getLogger(_name))
