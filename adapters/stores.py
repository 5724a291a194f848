"""Choosing and opening a run store: what the composition root, the CLI and ``serve`` call.

>>> store = open_store(store_path(Path("flows")))     # PROJECT/.csflow/runs.sqlite3
>>> project = Project.load("flows", store=store)

``open_store`` takes a path (SQLite, the zero-set-up default) or a URL. A ``postgresql://``
URL is the shared store of §8 (issue 12): it is refused clearly until that store exists,
rather than being taken for a file name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from csflow.adapters.sqlite_store import SQLiteStore
from csflow.engine.errors import StoreError
from csflow.engine.store import RunStore

STORE_ENV = "CSFLOW_STORE"
DEFAULT_STORE = Path(".csflow") / "runs.sqlite3"
_URL_SCHEMES = ("postgresql://", "postgres://")


def store_path(root: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where a project's runs go: ``CSFLOW_STORE``, else ``ROOT/.csflow/runs.sqlite3``."""
    env = os.environ if environ is None else environ
    named = env.get(STORE_ENV)
    return Path(named) if named else Path(root) / DEFAULT_STORE


def open_store(path_or_url: str | Path, *, create: bool = True) -> RunStore:
    """The run store at ``path_or_url``; StoreError, naming it, when it cannot be opened.

    ``create=False`` is for readers: a missing file is a StoreError, not a new empty store.
    """
    text = str(path_or_url)
    if text.startswith(_URL_SCHEMES):
        raise StoreError(
            f"the run store {text.split('@')[-1]} is PostgreSQL, which this csflow does not"
            " support yet: use a SQLite file path"
        )
    return SQLiteStore(Path(path_or_url), create=create)


__all__ = ["DEFAULT_STORE", "STORE_ENV", "open_store", "store_path"]
