"""Intents learned from examples, and entities (§12): ``intents.yaml`` at load, then in memory.

``check_intents`` reads and checks the file as the project loads; ``CheckedIntents.train``
gives the ``Intents`` a conversation runner and the ``intent`` action call. The classifier
itself (``classifier.IntentClassifier``) is imported by training, not by this package, so
that a project without ``intents.yaml`` never loads scikit-learn.
"""

from __future__ import annotations

from csflow.engine.intents.classification import Classification, Score, normalize
from csflow.engine.intents.entities import Entities
from csflow.engine.intents.load import FILE_NAME, CheckedIntents, check_intents
from csflow.engine.intents.model import EntitySpec, FallbackSpec, IntentsFile, IntentSpec
from csflow.engine.intents.understanding import Intents, Understanding

__all__ = [
    "FILE_NAME",
    "CheckedIntents",
    "Classification",
    "Entities",
    "EntitySpec",
    "FallbackSpec",
    "IntentSpec",
    "Intents",
    "IntentsFile",
    "Score",
    "Understanding",
    "check_intents",
    "normalize",
]
