"""Choosing and opening a run store: what the composition root, the CLI and ``serve`` call.

>>> store = open_store(store_path(Path("flows")))     # PROJECT/.csflow/runs.sqlite3
>>> project = Project.load("flows", store=store)

``open_store`` takes a path (SQLite, the zero-set-up default) or a ``postgresql://`` URL
(``PostgresStore``: the store that several servers share, §8). ``CSFLOW_STORE`` and
``--store`` take either; a URL is kept as text, never made a ``Path`` (which would fold its
``//``). psycopg is imported only when a URL asks for it. ``CSFLOW_KEEP`` (or ``csflow serve
--keep``) says how long finished runs are kept: ``30d``, ``500000 runs``, or both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.errors import StoreError
from csflow.engine.store import RunStore
from csflow.engine.store.retention import KEEP_DEFAULT, Keep, parse_keep

STORE_ENV = "CSFLOW_STORE"
KEEP_ENV = "CSFLOW_KEEP"
DEFAULT_STORE = Path(".csflow") / "runs.sqlite3"
_URL_SCHEMES = ("postgresql://", "postgres://")


def is_url(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(_URL_SCHEMES)


def store_location(location: str) -> str | Path:
    """A ``--store`` or ``CSFLOW_STORE`` value: a URL as it is, anything else a path."""
    return location if is_url(location) else Path(location)


def store_path(root: Path, environ: Mapping[str, str] | None = None) -> Path | str:
    """Where a project's runs go: ``CSFLOW_STORE`` (a path or a URL), else
    ``ROOT/.csflow/runs.sqlite3``."""
    env = os.environ if environ is None else environ
    named = env.get(STORE_ENV)
    return store_location(named) if named else Path(root) / DEFAULT_STORE


def store_keep(environ: Mapping[str, str] | None = None) -> Keep:
    """What ``CSFLOW_KEEP`` says to keep (the newest 100,000 runs when it is not set)."""
    env = os.environ if environ is None else environ
    text = env.get(KEEP_ENV, "").strip()
    if not text:
        return KEEP_DEFAULT
    try:
        return parse_keep(text)
    except ValueError as exc:
        raise StoreError(f"{KEEP_ENV}={text!r}: {exc}") from None


def open_store(
    path_or_url: str | Path, *, create: bool = True, keep: Keep = KEEP_DEFAULT
) -> RunStore:
    """The run store at ``path_or_url``; StoreError, naming it, when it cannot be opened.

    ``create=False`` is for readers: a missing file is a StoreError, not a new empty store.
    ``keep`` is what its writers prune to (``store_keep`` reads it from ``CSFLOW_KEEP``).
    """
    if is_url(path_or_url):
        from csflow.adapters.postgres_store import PostgresStore

        return PostgresStore(str(path_or_url), keep=keep)  # the database exists: tables are made
    return SQLiteStore(Path(path_or_url), create=create, keep=keep)


__all__ = [
    "DEFAULT_STORE",
    "KEEP_ENV",
    "STORE_ENV",
    "is_url",
    "open_store",
    "store_keep",
    "store_location",
    "store_path",
]
