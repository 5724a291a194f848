"""A dry run's claims: a preview reply, `steps.ID.dry_run`, and outputs past a kept-back write."""

from __future__ import annotations

from pathlib import Path

import pytest

from csflow import Project
from csflow.engine.dry_run import PREVIEW, split_claims

PROJECT = Path(__file__).parent / "projects" / "dry_run"


@pytest.fixture
def project() -> Project:
    return Project.load(PROJECT)


def test_a_write_kept_back_in_a_sub_flow_makes_the_parent_s_later_outputs_a_preview(
    project: Project,
) -> None:
    result = project.run_sync("note_order", {"order": "ORD-1"}, dry_run=True)
    assert result.status == "completed", result.error
    assert result.reply == PREVIEW + "Order ORD-1 has a note."
    assert result.outputs == {"order": "ORD-1", "noted": None, "note_id": None, "sent": None}
    assert result.preview_outputs == {"noted": True, "sent": False}
    assert result.as_dict()["dry_run"] is True


def test_a_kept_back_call_is_marked_in_steps_id(project: Project) -> None:
    result = project.run_sync("add_note", {"order": "ORD-1"}, dry_run=True)
    step = result.steps[0]
    assert step.dry_run is not None and step.dry_run["method"] == "POST"
    assert result.outputs == {"note_id": None, "kept_back": None}
    assert result.preview_outputs == {"kept_back": True}  # what `steps.add.dry_run` said


def test_split_claims_keeps_what_only_lost_its_value() -> None:
    claimed, previewed = split_claims(
        {"status": None, "outcome": "cancelled", "found": True},
        {"status": "processing", "outcome": None, "found": True},
    )
    assert claimed == {"status": "processing", "outcome": None, "found": True}
    assert previewed == {"outcome": "cancelled"}
