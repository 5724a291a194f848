"""``CSFLOW_KEEP`` / ``csflow serve --keep``: what it accepts, and what it says when it cannot."""

from __future__ import annotations

import pytest

from csflow.adapters.stores import store_keep
from csflow.engine.errors import StoreError
from csflow.engine.store.retention import DEFAULT_RUNS, Keep, PruneSchedule, parse_keep


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        ("30d", Keep(runs=None, age=30 * 86400.0)),
        ("12h", Keep(runs=None, age=12 * 3600.0)),
        ("90m", Keep(runs=None, age=90 * 60.0)),
        ("1.5d", Keep(runs=None, age=1.5 * 86400)),
        ("500000 runs", Keep(runs=500_000, age=None)),
        ("1 run", Keep(runs=1, age=None)),
        ("500_000 runs", Keep(runs=500_000, age=None)),
        ("7D, 1000000 Runs", Keep(runs=1_000_000, age=7 * 86400.0)),
        (" 1000 runs ,2h ", Keep(runs=1000, age=7200.0)),
    ],
)
def test_what_keep_accepts(text: str, keep: Keep) -> None:
    assert parse_keep(text) == keep


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("7x", "'7x' is neither an age (30d, 12h, 90m) nor a number of runs (500000 runs)"),
        ("500000", "'500000' is neither an age"),  # a bare number: seconds? runs? say which
        ("0d", "more than no time"),
        ("0 runs", "keep at least 1 run"),
        ("1d, 2d", "gives the age twice"),
        ("5 runs, 6 runs", "gives the number of runs twice"),
        ("", "say how long runs are kept"),
        (",", "say how long runs are kept"),
    ],
)
def test_what_keep_refuses_and_why(text: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_keep(text)
    assert says in str(caught.value)


def test_unset_keeps_the_newest_hundred_thousand_and_a_bad_value_names_the_variable() -> None:
    assert store_keep({}) == Keep(runs=DEFAULT_RUNS, age=None)
    assert store_keep({"CSFLOW_KEEP": "  "}) == Keep(runs=DEFAULT_RUNS, age=None)
    with pytest.raises(StoreError, match=r"CSFLOW_KEEP='3 weeks': '3 weeks' is neither"):
        store_keep({"CSFLOW_KEEP": "3 weeks"})


def test_the_cutoff_is_written_as_the_stores_write_started_at() -> None:
    import datetime as dt

    now = dt.datetime(2026, 12, 1, 16, 0, 0, 123000, tzinfo=dt.UTC)
    assert Keep(age=86400).cutoff(now) == "2026-11-30T16:00:00.123Z"
    assert Keep().cutoff(now) is None


def test_a_store_prunes_on_its_first_finished_run_then_every_thousand_or_minute() -> None:
    schedule = PruneSchedule(every=3, interval=3600)
    assert schedule.finished(0) is False  # only in_flight records: nothing finished
    assert schedule.finished(1) is True  # the first after opening
    assert [schedule.finished(1) for _ in range(3)] == [False, False, True]
    assert PruneSchedule(every=1000, interval=0).finished(1) is True
