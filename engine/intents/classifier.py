"""The intent classifier: TF-IDF over words and characters, a logistic regression, learned at load.

Why this one (docs/decisions.md, "Intents"): it trains in well under a second on a few
hundred examples, needs no network and no downloaded weights, and its softmax gives every
intent a confidence in [0, 1]. Character n-grams carry typos ("cancle", "wheres") and word
n-grams carry phrasing. The same examples always train the same model: inputs are sorted
and the solver is deterministic.

This module imports numpy and scikit-learn (most of a second): only a project with an
``intents.yaml`` imports it, when it trains (``load.CheckedIntents.train``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion

from csflow.engine.intents.classification import Classification, Score, normalize


class _FastTfidf:
    """One fitted ``TfidfVectorizer`` (sublinear tf, l2 norm) applied to one text by hand."""

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        self._analyze = vectorizer.build_analyzer()
        self._vocabulary: dict[str, int] = {
            term: int(index) for term, index in vectorizer.vocabulary_.items()
        }
        self._idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        self._offset = offset

    def weights(self, text: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
        counts = Counter(
            index
            for term in self._analyze(text)
            if (index := self._vocabulary.get(term)) is not None
        )
        if not counts:
            return np.empty(0, dtype=np.intp), np.empty(0)
        columns = np.fromiter(counts, dtype=np.intp, count=len(counts))
        tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
        weights = tf * self._idf[columns]
        weights /= np.sqrt(weights @ weights)
        return columns + self._offset, weights


def _parts(features: FeatureUnion) -> list[tuple[TfidfVectorizer, int]]:
    """Each vectorizer of the union, with where its columns start, once fitted."""
    parts, offset = [], 0
    for _, vectorizer in features.transformer_list:
        if not hasattr(vectorizer, "vocabulary_"):
            return []
        parts.append((vectorizer, offset))
        offset += len(vectorizer.vocabulary_)
    return parts


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
        self._fast = [_FastTfidf(v, offset) for v, offset in _parts(features)]
        if len(self.labels) > 1:
            coef = np.asarray(model.coef_, dtype=np.float64)
            # Binary logistic regression keeps one row; the softmax of (-z, z) is its sigmoid.
            self._coef = np.vstack([-coef, coef]) / 2 if coef.shape[0] == 1 else coef
            icpt = np.asarray(model.intercept_, dtype=np.float64)
            self._intercept = np.concatenate([-icpt, icpt]) / 2 if icpt.shape[0] == 1 else icpt

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
        model = LogisticRegression(C=20.0, solver="newton-cg", max_iter=1000, random_state=0)
        if len(labels) == 1:
            # One intent is a yes/no question; no examples against it means always yes.
            return cls(features, model, labels, threshold)
        model.fit(matrix, np.asarray(targets))
        return cls(features, model, labels, threshold)

    def probabilities(self, text: str) -> list[float]:
        """Every label's probability, as ``predict_proba`` gives it, without its overhead.

        sklearn checks and converts its inputs on each call, about 0.8 ms for one message;
        the same arithmetic on the few n-grams of a message takes a tenth of that.
        """
        if len(self.labels) == 1:
            return [1.0]
        normalized = normalize(text)
        logits = self._intercept.copy()
        for part in self._fast:
            columns, weights = part.weights(normalized)
            if len(columns):
                logits += self._coef[:, columns] @ weights
        logits -= logits.max()
        exp = np.exp(logits)
        return [float(p) for p in exp / exp.sum()]

    def sklearn_probabilities(self, text: str) -> list[float]:
        """``probabilities`` as sklearn computes it: what the fast path is tested against."""
        matrix = self._features.transform([normalize(text)])
        return [float(p) for p in self._model.predict_proba(matrix)[0]]

    def classify(self, text: str) -> Classification:
        ranked = sorted(
            (
                Score(label, round(p, 4))
                for label, p in zip(self.labels, self.probabilities(text), strict=True)
            ),
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
