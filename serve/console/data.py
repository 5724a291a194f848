"""What the console reads: the run store and its conversations, through their ports only.

The readers are synchronous (``RunReader``, ``ConversationStore.list_conversations`` and
``get_conversation``), so every read runs on a worker thread and the event loop keeps serving
the channels. A server started with ``--no-store`` has no store: ``Records.recording`` is
False and the pages say so instead of showing an empty history.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from csflow.engine.errors import StoreError
from csflow.engine.store import RunRecord, RunStore
from csflow.engine.store.conversations import Conversation, Turn

STATUSES = ("completed", "failed", "waiting", "handoff", "expired", "in_flight")
CONVERSATION_STATUSES = ("waiting", "completed", "failed", "handoff", "expired")
WITHIN = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1), "7d": dt.timedelta(days=7)}
PAGE_SIZE = 25
MAX_PAGE = 10_000


def _iso(moment: dt.datetime) -> str:
    """The store's form of a time (``now_iso``'s): sorts as text against ``started_at``."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _moment(text: str | None) -> str | None:
    """A ``datetime-local`` field's value (``2026-11-20T14:03``), read as UTC; None if not one."""
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return _iso(moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC))


def page_number(params: Mapping[str, str]) -> int:
    raw = params.get("page", "1")
    return min(max(int(raw), 1), MAX_PAGE) if raw.isdigit() else 1


@dataclass(frozen=True, slots=True)
class RunQuery:
    """The runs page's filters, as its query string has them (so a page is a link)."""

    flow: str | None = None
    status: str | None = None
    within: str | None = None  # 1h | 24h | 7d: relative to when the page is asked for
    since: str | None = None  # datetime-local text, UTC
    until: str | None = None
    conversation_id: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], flows: Iterable[str]) -> RunQuery:
        """The filters of ``params``; a value that is not one of the choices is no filter."""

        def pick(name: str, allowed: Iterable[str]) -> str | None:
            value = params.get(name)
            return value if value and value in set(allowed) else None

        return cls(
            flow=pick("flow", flows),
            status=pick("status", STATUSES),
            within=pick("within", WITHIN),
            since=params.get("since") if _moment(params.get("since")) else None,
            until=params.get("until") if _moment(params.get("until")) else None,
            conversation_id=(params.get("conversation") or None),
        )

    def params(self) -> dict[str, str]:
        """The query string's parameters for these filters (links to other pages keep them)."""
        values = {
            "flow": self.flow,
            "status": self.status,
            "within": self.within,
            "since": self.since,
            "until": self.until,
            "conversation": self.conversation_id,
        }
        return {name: value for name, value in values.items() if value}

    def reader_args(self, now: dt.datetime) -> dict[str, Any]:
        """``list_runs`` keywords for the filters that are set, and only those."""
        since = _moment(self.since)
        if self.within is not None:
            relative = _iso(now - WITHIN[self.within])
            since = max(since, relative) if since else relative
        args = {
            "flow": self.flow,
            "status": self.status,
            "since": since,
            "until": _moment(self.until),
            "conversation_id": self.conversation_id,
        }
        return {k: v for k, v in args.items() if v is not None}

    @property
    def filtered(self) -> bool:
        return bool(self.params())


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list, and whether there is another after it."""

    items: list[Any]
    number: int
    more: bool


class Records:
    """The project's store as the pages read it; every call is off the event loop."""

    def __init__(self, store: RunStore | None) -> None:
        self.store = store

    @property
    def recording(self) -> bool:
        return self.store is not None

    async def runs(self, query: RunQuery, number: int = 1, size: int = PAGE_SIZE) -> Page:
        if self.store is None:
            return Page([], number, False)
        args = query.reader_args(dt.datetime.now(dt.UTC))
        found = await asyncio.to_thread(
            self.store.list_runs, limit=size + 1, offset=(number - 1) * size, **args
        )
        return Page(found[:size], number, len(found) > size)

    async def run(self, run_id: str) -> RunRecord | None:
        if self.store is None:
            return None
        try:
            return await asyncio.to_thread(self.store.get_run, run_id)
        except StoreError:  # a prefix that more than one run id starts with
            return None

    async def latest(self, flows: Iterable[str]) -> dict[str, RunRecord]:
        """Each flow's most recent run (of those that ran)."""
        store = self.store
        if store is None:
            return {}

        def read() -> dict[str, RunRecord]:
            found = {name: store.list_runs(flow=name, limit=1) for name in flows}
            return {name: runs[0] for name, runs in found.items() if runs}

        return await asyncio.to_thread(read)

    async def failures(self) -> dict[str, RunRecord]:
        if self.store is None:
            return {}
        return await asyncio.to_thread(self.store.last_failures)

    async def conversations(self, status: str | None, number: int, size: int = PAGE_SIZE) -> Page:
        if self.store is None:
            return Page([], number, False)
        found = await asyncio.to_thread(
            self.store.list_conversations, status=status, limit=size + 1, offset=(number - 1) * size
        )
        return Page(found[:size], number, len(found) > size)

    async def conversation(self, conversation_id: str) -> tuple[Conversation, list[Turn]] | None:
        if self.store is None:
            return None
        return await asyncio.to_thread(self.store.get_conversation, conversation_id)


__all__ = [
    "CONVERSATION_STATUSES",
    "PAGE_SIZE",
    "STATUSES",
    "WITHIN",
    "Page",
    "Records",
    "RunQuery",
    "page_number",
]
