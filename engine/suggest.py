"""``did you mean``: the one helper every placed problem uses for a near miss."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'order_status'?)`` for the closest choice, ignoring case, or ``""``.

    >>> did_you_mean("Ordr_status", ["order_status", "found"])
    " (did you mean 'order_status'?)"
    """
    options = list(choices)
    by_case = {c.lower(): c for c in options}
    close = difflib.get_close_matches(word.lower(), list(by_case), n=1, cutoff=0.6)
    return f" (did you mean '{by_case[close[0]]}'?)" if close else ""
