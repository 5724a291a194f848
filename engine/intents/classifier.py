"""The intent classifier: TF-IDF over words and characters, a logistic regression, learned at load.

Why this one (docs/decisions.md, "Intents"): it trains in well under a second on a few
hundred examples, needs no network and no downloaded weights, and its softmax gives every
intent a confidence in [0, 1]. Character n-grams carry typos ("cancle", "wheres") and word
n-grams carry phrasing. The same examples always train the same model: inputs are sorted
and the solver is deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

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


class IntentClassifier:
    """Trained once from ``{intent: examples}``; ``classify(text)`` many times.

    >>> c = IntentClassifier.train({"wismo": [...], "cancel_order": [...]}, threshold=0.5)
    >>> c.classify("where is my parcel").name
    'wismo'
    """

    def __init__(
        self,
        features: FeatureUnion,
        model: LogisticRegression,
        labels: Sequence[str],
        threshold: float,
    ) -> None:
        self._features = features
        self._model = model
        self.labels = tuple(labels)
        self.threshold = threshold

    @classmethod
    def train(cls, examples: Mapping[str, Sequence[str]], *, threshold: float) -> IntentClassifier:
        labels = sorted(examples)
        texts: list[str] = []
        targets: list[int] = []
        for index, label in enumerate(labels):
            for text in sorted(examples[label]):
                texts.append(normalize(text))
                targets.append(index)
        features = FeatureUnion(
            [
                ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
                (
                    "chars",
                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
                ),
            ]
        )
        matrix = features.fit_transform(texts)
        model = LogisticRegression(C=10.0, max_iter=1000, random_state=0)
        if len(labels) == 1:
            # One intent is a yes/no question; no examples against it means always yes.
            return cls(features, model, labels, threshold)
        model.fit(matrix, np.asarray(targets))
        return cls(features, model, labels, threshold)

    def probabilities(self, text: str) -> list[float]:
        if len(self.labels) == 1:
            return [1.0]
        matrix = self._features.transform([normalize(text)])
        return [float(p) for p in self._model.predict_proba(matrix)[0]]

    def classify(self, text: str) -> Classification:
        ranked = sorted(
            (Score(label, round(p, 4)) for label, p in zip(self.labels, self.probabilities(text))),
            key=lambda s: (-s.confidence, s.name),
        )
        best = ranked[0]
        understood = bool(text.strip()) and best.confidence >= self.threshold
        return Classification(
            name=best.name if understood else None,
            confidence=best.confidence,
            best=best,
            runner_up=ranked[1] if len(ranked) > 1 else None,
            scores=tuple(ranked),
            threshold=self.threshold,
        )
