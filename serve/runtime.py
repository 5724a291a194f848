"""What every channel does the same way: keys, body limits, deadlines, JSON.

Keys are compared as HMAC digests under a per-process random key, with
``hmac.compare_digest`` against every configured key: the time taken reveals neither how much
of a key matched, nor its length, nor which tenant's key came closest.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csflow.engine.errors import StoreError, UsageError

if TYPE_CHECKING:
    from csflow import Project, RunResult

MAX_BODY_BYTES = 64 * 1024
# The run's deadline ends this long before the platform gives up, so that the result is
# rendered and on the wire in time; the asyncio backstop fires a little later still.
RUN_MARGIN = 0.5
BACKSTOP_MARGIN = 0.25

_PROCESS_KEY = secrets.token_bytes(32)


def digest(value: bytes) -> bytes:
    return hmac.new(_PROCESS_KEY, value, hashlib.sha256).digest()


@dataclass
class KeyRing:
    """API keys of one channel, each selecting a tenant."""

    entries: list[tuple[bytes, str]] = field(default_factory=list)  # (digest, tenant)

    def add(self, key: bytes, tenant: str) -> bool:
        """False when the key is already in the ring (two tenants cannot share a key)."""
        d = digest(key)
        if any(hmac.compare_digest(d, other) for other, _ in self.entries):
            return False
        self.entries.append((d, tenant))
        return True

    def match(self, presented: str | None) -> str | None:
        """The tenant whose key was presented, or None; every entry is compared, always."""
        d = digest((presented or "").encode("utf-8", "surrogateescape"))
        found = None
        for other, tenant in self.entries:
            if hmac.compare_digest(d, other) and presented:
                found = tenant
        return found


@dataclass(frozen=True, slots=True)
class ChannelRun:
    """How a run ended for a channel: a result, an overrun, or inputs the flow refused."""

    result: RunResult | None = None
    overran: bool = False
    no_time: bool = False  # the deadline had passed before the run could start
    usage_error: str | None = None

    @property
    def completed(self) -> bool:
        return self.result is not None and self.result.status == "completed"


async def run_within(
    project: Project, flow: str, inputs: Mapping[str, Any], seconds: float
) -> ChannelRun:
    """Run ``flow`` with a deadline, and an asyncio timeout around it, inside ``seconds``."""
    return await within(seconds, lambda deadline: project.run(flow, inputs, deadline=deadline))


async def within(seconds: float, start: Callable[[float], Awaitable[RunResult]]) -> ChannelRun:
    """``start(deadline)``'s result, answered inside ``seconds`` whatever the run does.

    The deadline lets the runner end the run cleanly with ``deadline``; the timeout is the
    backstop for anything that does not honour it. Either way the caller answers in time.
    ``start`` is a run, or a conversation's turn: it gets the deadline it must keep.
    """
    hard = seconds - BACKSTOP_MARGIN
    deadline = seconds - RUN_MARGIN
    if deadline <= 0.05:
        return ChannelRun(overran=True, no_time=True)
    try:
        async with asyncio.timeout(hard):
            result = await start(deadline)
    except TimeoutError:
        return ChannelRun(overran=True)
    except StoreError:
        raise  # a UsageError of the CLI's, but never the caller's inputs: the channel's to answer
    except UsageError as exc:
        return ChannelRun(usage_error=str(exc))
    return ChannelRun(result=result)


def truthy(value: Any) -> bool:
    """``found:`` as a CS author means it: "false", "no", "0" and empty are not found."""
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "no", "0", "none", "null")
    return bool(value)


def text(value: Any) -> str:
    """A template's value as the text a platform shows: stripped, and empty for none."""
    return "" if value is None else str(value).strip()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)  # Decimal and the like: text rather than a 500


def plain_json(content: Any) -> bytes:
    """JSON as every platform gets it: compact, UTF-8, dates as ISO 8601."""
    return json.dumps(content, default=_plain, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8",
        "replace",  # a lone surrogate from a merchant: "?" rather than a 500
    )
