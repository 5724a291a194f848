"""Secrets: read from the environment or a file, and kept out of every text we print."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

REDACTED = "***"


class SecretValue:
    """A secret's value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "SecretValue('***')"

    __str__ = __repr__


def read_secret(ref: Any, root: Path, environ: Mapping[str, str] | None = None) -> SecretValue:
    """The value of ``{env: NAME}`` or ``{file: PATH}`` (a path relative to the project)."""
    env = getattr(ref, "env", None)
    if env is not None:
        return SecretValue((os.environ if environ is None else environ).get(env, ""))
    path = Path(ref.file)
    if not path.is_absolute():
        path = root / path
    return SecretValue(path.read_text(encoding="utf-8").strip())


class Redactor:
    """Replaces every known secret value with ``***`` in text and bytes."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would redact ordinary words; real credentials are longer than this.
        self._text = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
        self._bytes = [s.encode() for s in self._text]

    def add(self, secret: str) -> None:
        if len(secret) >= 4 and secret not in self._text:
            self._text.append(secret)
            self._text.sort(key=len, reverse=True)
            self._bytes = [s.encode() for s in self._text]

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
