"""Loading flow test files and running their cases against mocks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csflow.engine.errors import Problem, UsageError
from csflow.engine.model import FlowTestFile, TestCase
from csflow.engine.result import RunResult
from csflow.engine.source import Source, load_yaml
from csflow.engine.validation import validate
from csflow.flowtest.checks import check_test_file
from csflow.flowtest.expect import compare, run_error
from csflow.flowtest.mocks import MockRouter
from csflow.flowtest.retries import describe_misses
from csflow.flowtest.turns import run_turns

# What a `conversation: true` file's cases show where other cases show their flow.
CONVERSATION = "conversation"


@dataclass
class TestFile:
    __test__ = False  # not a pytest class

    path: Path
    model: FlowTestFile
    source: Source

    @property
    def label(self) -> str:
        """The flow its cases run, or ``conversation`` when intents.yaml picks it."""
        return self.model.flow or CONVERSATION

    def case_line(self, index: int) -> int:
        return self.source.mark(("cases", index)).line


@dataclass
class CaseOutcome:
    name: str
    flow: str
    failures: list[str] = field(default_factory=list)
    # Every run of the case: one, or one per turn that was said (in order).
    results: list[RunResult] = field(default_factory=list)
    router: MockRouter | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def result(self) -> RunResult | None:
        """The case's last run: its only one, or the last turn's."""
        return self.results[-1] if self.results else None


def test_folder(project_root: Path) -> Path:
    return project_root / "tests" / "flows"


def load_test_files(
    project: Any, paths: list[Path] | None = None
) -> tuple[list[TestFile], list[Problem]]:
    """Every ``tests/flows/*.yaml`` of the project, validated; problems name their place."""
    problems: list[Problem] = []
    files: list[TestFile] = []
    folder = test_folder(project.root)
    for path in paths or sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        data, source = load_yaml(path, problems)
        if data is None:
            continue
        model, found = validate(FlowTestFile, data, source)
        problems.extend(found)
        if model is None:
            continue
        found = check_test_file(model, source, project)
        problems.extend(found)
        if not found:
            files.append(TestFile(path, model, source))
    return files, problems


async def run_case(project: Any, flow: str | None, case: TestCase) -> CaseOutcome:
    """Run one case with its mocks installed, then compare what happened with ``expect``
    (or each turn's). ``flow`` None: a ``conversation: true`` case, started by intents.yaml."""
    outcome = CaseOutcome(case.name, flow or CONVERSATION)
    router = MockRouter.install(project, case.mocks)
    outcome.router = router
    now = case.now
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    try:
        if case.turns is not None:
            clock = now if now is not None else dt.datetime.now(dt.UTC)
            outcome.failures = await run_turns(project, flow, case, router, clock, outcome.results)
            return outcome
        assert flow is not None  # a case without turns in a conversation file: a load problem
        result = await project.run(flow, case.inputs, now=now, dry_run=case.dry_run)
    except UsageError as exc:
        outcome.failures.append(f"the inputs were refused: {exc}")
        return outcome
    finally:
        MockRouter.uninstall(project)
    outcome.results.append(result)
    outcome.failures.extend(compare(case.expect, result))
    outcome.failures.extend(describe_misses(project, router.misses, result))
    error = run_error(result)
    if outcome.failures and error and not any(error in line for line in outcome.failures):
        # Whatever was expected, a failed run's own error is what explains the case.
        outcome.failures.append(f"the run failed: {error}")
    return outcome


def select(files: list[TestFile], keyword: str | None) -> list[tuple[TestFile, int, TestCase]]:
    """(file, case index, case) for each case whose flow (or ``conversation``) or name
    contains ``keyword``."""
    return [
        (tf, i, case)
        for tf in files
        for i, case in enumerate(tf.model.cases)
        if not keyword or keyword in f"{tf.label} {case.name}"
    ]
