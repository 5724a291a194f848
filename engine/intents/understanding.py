"""``Intents``: a project's trained classifier and entities, what a conversation runner calls."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from csflow.engine.intents.classification import Classification
from csflow.engine.intents.entities import Entities

if TYPE_CHECKING:  # scikit-learn: imported only by a project that trains (load.py)
    from csflow.engine.intents.classifier import IntentClassifier


@dataclass(frozen=True)
class Understanding:
    """A message understood: its classification and the entities found in it."""

    classification: Classification
    entities: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        return self.classification.name

    def as_data(self) -> dict[str, Any]:
        """The ``intent`` action's data (§12): ``{name, confidence, runner_up, entities}``."""
        c = self.classification
        runner_up = (
            {"name": c.runner_up.name, "confidence": c.runner_up.confidence}
            if c.runner_up is not None
            else None
        )
        return {
            "name": c.name,
            "confidence": c.confidence,
            "runner_up": runner_up,
            "entities": dict(self.entities),
        }


@dataclass(frozen=True)
class Intents:
    """The project's ``intents.yaml``, trained at load and kept in memory.

    >>> project.intents.classify("where's my parcel?").name
    'wismo'
    >>> project.intents.entities("it's ord 1004")
    {'order_number': 'ORD-1004'}
    >>> project.intents.flow_for(project.intents.classify("asdf"))   # the fallback's flow
    'not_understood'
    """

    classifier: IntentClassifier
    finders: Entities
    flows: Mapping[str, str]  # intent -> the flow it starts
    fallback_flow: str | None = None

    @property
    def threshold(self) -> float:
        return self.classifier.threshold

    def classify(self, text: str) -> Classification:
        return self.classifier.classify(text)

    def entities(self, text: str) -> dict[str, str]:
        return self.finders.find(text)

    def entity(self, name: str, text: str) -> str | None:
        """The entity ``name`` in ``text``, or None: what an ``ask`` with ``entity:`` takes."""
        finder = self.finders.finders.get(name)
        return finder.find(text) if finder is not None else None

    def understand(self, text: str) -> Understanding:
        return Understanding(self.classify(text), self.entities(text))

    def flow_for(self, classification: Classification) -> str | None:
        """The flow to start: the intent's, else the fallback's (None: reply "please rephrase")."""
        if classification.name is None:
            return self.fallback_flow
        return self.flows[classification.name]
