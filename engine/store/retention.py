"""How long a run store keeps finished runs and ended conversations (``CSFLOW_KEEP``).

>>> parse_keep("30d")
Keep(runs=None, age=2592000.0)
>>> parse_keep("500000 runs, 7d")
Keep(runs=500000, age=604800.0)

A run is pruned when it is older than ``age`` or beyond the newest ``runs``; the same holds
for conversations, by their last turn. Open runs (``in_flight``, ``waiting``) and waiting
conversations are never pruned, whatever their age: they go on.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass

_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0}
_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(m|h|d)$")
_COUNT = re.compile(r"^(\d[\d_]*)\s+runs?$")
DEFAULT_RUNS = 100_000
PRUNE_BATCH = 10_000  # rows one prune statement deletes at most: a short write lock


@dataclass(frozen=True)
class Keep:
    """At most ``runs`` finished runs (None: no limit), none older than ``age`` seconds."""

    runs: int | None = DEFAULT_RUNS
    age: float | None = None

    def cutoff(self, now: dt.datetime | None = None) -> str | None:
        """The oldest ``started_at`` kept, as the stores write it (``now_iso``'s form)."""
        if self.age is None:
            return None
        moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=self.age)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PruneSchedule:
    """When a store prunes: after ``every`` finished runs, or ``interval`` seconds of writing.

    The first finished run after opening prunes too, so a quiet server that keeps runs by
    age does not wait for a thousand runs before dropping last month's.
    """

    def __init__(self, every: int = 1_000, interval: float = 60.0) -> None:
        self.every = every
        self.interval = interval
        self._count = 0
        self._last = float("-inf")

    def finished(self, count: int) -> bool:
        """``count`` more runs finished: is it time to prune?"""
        self._count += count
        now = time.monotonic()
        if self._count >= self.every or (count and now - self._last >= self.interval):
            self._count, self._last = 0, now
            return True
        return False


KEEP_DEFAULT = Keep()  # the newest 100,000 runs, whatever their age


def parse_keep(text: str) -> Keep:
    """``30d``, ``12h``, ``500000 runs``, or both joined by a comma; ValueError says why not."""
    runs: int | None = None
    age: float | None = None
    items = [item.strip().lower() for item in text.split(",")]
    if not any(items):
        raise ValueError("say how long runs are kept: 30d, 12h, 500000 runs, or 30d, 500000 runs")
    for item in items:
        if m := _AGE.match(item):
            if age is not None:
                raise ValueError(f"'{text}' gives the age twice")
            age = float(m.group(1)) * _UNITS[m.group(2)]
            if age <= 0:
                raise ValueError(f"'{item}': runs must be kept for more than no time")
        elif m := _COUNT.match(item):
            if runs is not None:
                raise ValueError(f"'{text}' gives the number of runs twice")
            runs = int(m.group(1).replace("_", ""))
            if runs <= 0:
                raise ValueError(f"'{item}': keep at least 1 run")
        else:
            raise ValueError(
                f"'{item}' is neither an age (30d, 12h, 90m) nor a number of runs (500000 runs)"
            )
    return Keep(runs=runs, age=age)


__all__ = ["DEFAULT_RUNS", "KEEP_DEFAULT", "PRUNE_BATCH", "Keep", "PruneSchedule", "parse_keep"]
