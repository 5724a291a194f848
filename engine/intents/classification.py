"""What a classification says: the best intent, its confidence, and the runner-up.

Apart from ``classifier`` so that reading a result, or a project without ``intents.yaml``,
does not import scikit-learn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPACES = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case and runs of spaces ignored: how examples are compared for sameness."""
    return _SPACES.sub(" ", text).strip().casefold()


@dataclass(frozen=True)
class Score:
    name: str
    confidence: float


@dataclass(frozen=True)
class Classification:
    """A message's intents: ``name`` is None when the best is under the threshold."""

    name: str | None
    confidence: float
    best: Score
    runner_up: Score | None
    scores: tuple[Score, ...]  # every intent, the most confident first
    threshold: float

    @property
    def understood(self) -> bool:
        return self.name is not None
