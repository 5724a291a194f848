"""Secrets: read from the environment or a file; ``engine.redaction`` keeps them out of text."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


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
