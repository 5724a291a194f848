"""Reads ``intents.yaml``: validated, checked against the flows, then trained (§12)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Any

from csflow.engine.errors import Problem
from csflow.engine.intents.classification import normalize
from csflow.engine.intents.entities import Entities, EntityFinder, compile_entity
from csflow.engine.intents.model import EntitySpec, IntentsFile, IntentSpec
from csflow.engine.intents.understanding import Intents
from csflow.engine.source import Source, load_yaml
from csflow.engine.suggest import did_you_mean
from csflow.engine.validation import validate

MIN_EXAMPLES = 5
FILE_NAME = "intents.yaml"


class CheckedIntents:
    """A valid ``intents.yaml``, ready to train once the whole project has loaded."""

    def __init__(self, spec: IntentsFile, finders: dict[str, EntityFinder]) -> None:
        self.spec = spec
        self.finders = finders

    def train(self) -> Intents:
        from csflow.engine.intents.classifier import IntentClassifier  # scikit-learn: here only

        spec = self.spec
        classifier = IntentClassifier.train(
            {name: intent.examples for name, intent in spec.intents.items()},
            threshold=spec.threshold,
        )
        return Intents(
            classifier=classifier,
            finders=Entities(self.finders),
            flows={name: intent.flow for name, intent in spec.intents.items()},
            fallback_flow=spec.fallback.flow if spec.fallback is not None else None,
        )


def check_intents(
    root: Path, flows: Collection[str], problems: list[Problem]
) -> CheckedIntents | None:
    """The project's ``intents.yaml`` checked (problems appended), or None if absent or invalid."""
    path = root / FILE_NAME
    if not path.exists():
        return None
    found: list[Problem] = []
    data, source = load_yaml(path, found)
    if data is None and not found:
        found.append(Problem(source.path, 1, 1, "the file is empty: intents.yaml needs intents"))
    elif data is not None and not isinstance(data, dict):
        found.append(source.problem((), "intents.yaml maps threshold, fallback, entities, intents"))
    elif data is not None:
        checked = _check_file(data, source, flows, found)
        problems.extend(found)
        return checked if not any(not p.warning for p in found) else None
    problems.extend(found)
    return None


def _check_file(
    data: dict[str, Any], source: Source, flows: Collection[str], found: list[Problem]
) -> CheckedIntents | None:
    """Each entity and each intent validated on its own, so that one pass finds every problem."""
    raw_entities, raw_intents = data.get("entities"), data.get("intents")
    shell = {
        **data,
        **({"entities": {}} if isinstance(raw_entities, dict) else {}),
        **({"intents": {}} if isinstance(raw_intents, dict) else {}),
    }
    top, invalid = validate(IntentsFile, shell, source)
    found.extend(invalid)
    entities: dict[str, EntitySpec] = {}
    for name, raw in (raw_entities if isinstance(raw_entities, dict) else {}).items():
        entity, invalid = validate(EntitySpec, raw, source, ("entities", name))
        found.extend(invalid)
        if entity is not None:
            entities[name] = entity
    intents: dict[str, IntentSpec] = {}
    for name, raw in (raw_intents if isinstance(raw_intents, dict) else {}).items():
        intent, invalid = validate(IntentSpec, raw, source, ("intents", name))
        found.extend(invalid)
        if intent is not None:
            intents[name] = intent
    finders = _entities(entities, source, found)
    _check_intents(top, intents, source, flows, found)
    if top is None:
        return None
    spec = top.model_copy(update={"entities": entities, "intents": intents})
    return CheckedIntents(spec, finders)


def _entities(
    entities: dict[str, EntitySpec], source: Source, problems: list[Problem]
) -> dict[str, EntityFinder]:
    finders: dict[str, EntityFinder] = {}
    for name, entity in entities.items():
        finder, wrong = compile_entity(entity)
        for w in wrong:
            problems.append(source.problem(("entities", name, w.key), w.message, offset=w.offset))
        if finder is not None:
            finders[name] = finder
    return finders


def _check_intents(
    top: IntentsFile | None,
    intents: dict[str, IntentSpec],
    source: Source,
    flows: Collection[str],
    problems: list[Problem],
) -> None:
    fallback = top.fallback if top is not None else None
    if fallback is not None and fallback.flow not in flows:
        hint = did_you_mean(fallback.flow, flows)
        problems.append(
            source.problem(("fallback", "flow"), f"unknown flow '{fallback.flow}'{hint}")
        )
    if len(intents) == 1:
        only = next(iter(intents))
        problems.append(
            source.problem(
                ("intents", only),
                f"with one intent every message is '{only}' (confidence 1):"
                " add another, say a handoff, so that the threshold can refuse a message",
                key=True,
                warning=True,
            )
        )
    first_seen: dict[str, tuple[str, int]] = {}
    for name, intent in intents.items():
        if intent.flow not in flows:
            hint = did_you_mean(intent.flow, flows)
            problems.append(
                source.problem(("intents", name, "flow"), f"unknown flow '{intent.flow}'{hint}")
            )
        if len(intent.examples) < MIN_EXAMPLES:
            problems.append(
                source.problem(
                    ("intents", name, "examples"),
                    f"intent '{name}' has {len(intent.examples)} examples;"
                    f" it needs at least {MIN_EXAMPLES} to be learned",
                    key=True,
                )
            )
        for i, example in enumerate(intent.examples):
            same = normalize(example)
            if not same:
                problems.append(source.problem(("intents", name, "examples", i), "empty example"))
                continue
            if same not in first_seen:
                first_seen[same] = (name, i)
                continue
            other, j = first_seen[same]
            line = source.mark(("intents", other, "examples", j)).line
            where = "already in this intent" if other == name else f"also under intent '{other}'"
            problems.append(
                source.problem(
                    ("intents", name, "examples", i),
                    f"the same example is {where} (line {line}): an example teaches one intent",
                    warning=other == name,  # harmless, but likely a slip
                )
            )
