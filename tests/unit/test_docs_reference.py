"""The reference in docs/ names every key a user can write (issue 10, item 27).

When a model gains a key, a filter or an error kind, this fails until the page that
documents it says what it is.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
from pydantic import BaseModel

from csflow.cli.main import cli
from csflow.engine import model
from csflow.engine.errors import ERROR_KINDS
from csflow.engine.expressions import Expressions
from csflow.engine.intents import model as intents
from csflow.serve import models as channels

DOCS = Path(__file__).resolve().parents[2] / "docs"


def page(name: str) -> str:
    return (DOCS / "reference" / name).read_text(encoding="utf-8")


def keys(cls: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in cls.model_fields.items()}


def missing(text: str, names: set[str] | list[str]) -> list[str]:
    """The names that appear in no code span of ``text``."""
    spans = " ".join(re.findall(r"`([^`\n]+)`", text))
    return sorted(n for n in names if not re.search(rf"(?<![\w.]){re.escape(n)}(?!\w)", spans))


PAGES: list[tuple[str, Any]] = [
    ("flows.md", model.Flow),
    ("flows.md", model.StepSpec),
    ("flows.md", model.InputSpec),
    ("flows.md", model.OutputSpec),
    ("flows.md", model.RetrySpec),
    ("extraction.md", model.FieldSpec),
    ("extraction.md", model.ExtractSpec),
    ("connections.md", model.Connection),
    *[("connections.md", a) for a in model.Auth.__origin__.__args__],  # type: ignore[attr-defined]
    *[("channels.md", c) for c in channels.CHANNEL_TYPES.values()],
    ("channels.md", channels.CoffieldKind),
    ("channels.md", channels.TenantSpec),
    ("tests.md", model.FlowTestFile),
    ("tests.md", model.TestCase),
    ("tests.md", model.MockSpec),
    ("tests.md", model.Expectation),
    ("tests.md", model.TextExpectation),
    ("tests.md", model.ErrorExpectation),
    ("tests.md", model.TurnSpec),
    ("tests.md", model.TurnExpectation),
    ("tests.md", model.HandoffExpectation),
    ("intents.md", intents.IntentsFile),
    ("intents.md", intents.IntentSpec),
    ("intents.md", intents.EntitySpec),
    ("intents.md", intents.FallbackSpec),
]


@pytest.mark.parametrize(("name", "cls"), PAGES, ids=[f"{p}:{c.__name__}" for p, c in PAGES])
def test_every_key_of_the_model_is_on_its_page(name: str, cls: type[BaseModel]) -> None:
    assert missing(page(name), keys(cls)) == []


def test_every_auth_type_and_channel_type_is_named() -> None:
    auth = [a.model_fields["type"].annotation.__args__[0] for a in model.Auth.__origin__.__args__]  # type: ignore[attr-defined]
    assert missing(page("connections.md"), auth) == []
    assert missing(page("channels.md"), list(channels.CHANNEL_TYPES)) == []


def test_every_filter_has_a_row_in_expressions() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)", page("expressions.md"), re.M))
    listed = {n for row in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \|", page("expressions.md"), re.M) for n in re.findall(r"`([a-z_]+)", row)}  # fmt: skip
    assert sorted(set(Expressions().env.filters) - rows - listed) == []


def test_every_error_kind_is_explained() -> None:
    rows = set(re.findall(r"^\| `([a-z_]+)` \|", page("failures.md"), re.M))
    assert sorted(set(ERROR_KINDS) - rows) == []


def test_every_command_is_in_the_cli_page() -> None:
    text = page("cli.md")
    assert isinstance(cli, click.Group)
    assert sorted(n for n in cli.commands if f"`csflow {n}" not in text) == []


def test_links_between_the_pages_resolve() -> None:
    broken = []
    for md in [DOCS.parent / "README.md", *DOCS.rglob("*.md")]:
        text = re.sub(r"```.*?```", "", md.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
            if not target.startswith("http") and not (md.parent / target).exists():
                broken.append(f"{md.name}: {target}")
    assert broken == []


def test_every_entity_type_is_named_in_intents() -> None:
    types = intents.EntityType.__args__  # type: ignore[attr-defined]
    assert missing(page("intents.md"), list(types)) == []
