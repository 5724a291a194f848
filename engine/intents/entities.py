"""Entities found in a customer's message: e-mail addresses, phones, the merchant's patterns."""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import phonenumbers

from csflow.engine.filters import normalize_phone
from csflow.engine.intents.model import EntitySpec

# Deliberately plain: a message holds at most an address or two, and "looks like an
# address" is what a customer means; deliverability is the merchant API's business.
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}(?![\w-])")


class EntityFinder(Protocol):
    def find(self, text: str) -> str | None: ...


@dataclass(frozen=True)
class EmailFinder:
    def find(self, text: str) -> str | None:
        m = _EMAIL.search(text)
        return m.group(0).lower() if m else None


@dataclass(frozen=True)
class PhoneFinder:
    """The first number ``phonenumbers`` finds, as its digits only (as ``normalize_phone``)."""

    region: str = "US"

    def find(self, text: str) -> str | None:
        matcher = phonenumbers.PhoneNumberMatcher(text, self.region, phonenumbers.Leniency.POSSIBLE)
        for match in matcher:
            # Digits inside a longer token (a tracking number, 1Z999AA10123456784) are not a phone.
            before = text[match.start - 1 : match.start]
            after = text[match.end : match.end + 1]
            if before.isalnum() or after.isalnum():
                continue
            return normalize_phone(match.raw_string, 0)
        return None


@dataclass(frozen=True)
class PatternFinder:
    """The first match of ``pattern``; ``format`` rebuilds it from the groups."""

    pattern: re.Pattern[str]
    format: str | None = None

    def find(self, text: str) -> str | None:
        m = self.pattern.search(text)
        if m is None:
            return None
        if self.format is None:
            return m.group(0)
        groups = [g or "" for g in m.groups()]
        named = {k: v or "" for k, v in m.groupdict().items()}
        return self.format.format(m.group(0), *groups, **named)


@dataclass(frozen=True)
class EntityProblem:
    """What is wrong with one entity: the key at fault and where in its text (0-based)."""

    key: str
    message: str
    offset: int | None = None


def compile_entity(spec: EntitySpec) -> tuple[EntityFinder | None, list[EntityProblem]]:
    """The finder of ``spec``, or the problems that stop it being built."""
    if spec.type == "email":
        return EmailFinder(), []
    if spec.type == "phone":
        return PhoneFinder(spec.region), []
    assert spec.pattern is not None  # the model asks for a type or a pattern
    try:
        pattern = re.compile(spec.pattern)
    except re.error as exc:
        return None, [EntityProblem("pattern", f"the pattern does not compile: {exc.msg}", exc.pos)]
    if spec.format is None:
        return PatternFinder(pattern), []
    problems = list(_format_problems(spec.format, pattern))
    return (None, problems) if problems else (PatternFinder(pattern, spec.format), [])


def _format_problems(fmt: str, pattern: re.Pattern[str]) -> Iterator[EntityProblem]:
    try:
        fields = list(_fields(fmt))
    except ValueError as exc:
        yield EntityProblem("format", f"the format is not valid: {exc}")
        return
    for name, offset in fields:
        if name == "":
            yield EntityProblem("format", "name the group: {0} is the match, {1} the first", offset)
        elif name.isdigit() and int(name) > pattern.groups:
            have = {0: "no groups", 1: "1 group"}.get(pattern.groups, f"{pattern.groups} groups")
            yield EntityProblem(
                "format", f"the format names group {name}; the pattern has {have}", offset
            )
        elif not name.isdigit() and name not in pattern.groupindex:
            known = ", ".join(sorted(pattern.groupindex)) or "no named groups"
            yield EntityProblem(
                "format", f"the format names group '{name}'; the pattern has {known}", offset
            )


def _fields(fmt: str) -> Iterator[tuple[str, int]]:
    """Each replacement field's name and the offset of its ``{``."""
    offset = 0
    for literal, name, spec, conversion in string.Formatter().parse(fmt):
        offset += len(literal.replace("{", "{{").replace("}", "}}"))
        if name is None:
            continue
        yield name.split(".")[0].split("[")[0], offset
        offset += 2 + len(name) + (len(spec) + 1 if spec else 0)
        offset += 2 if conversion else 0


@dataclass(frozen=True)
class Entities:
    """The declared entities, in the file's order: ``entities.find(text) -> {name: value}``."""

    finders: Mapping[str, EntityFinder]

    def find(self, text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for name, finder in self.finders.items():
            value = finder.find(text)
            if value is not None:
                found[name] = value
        return found
