"""Loading flow test files and running their cases against mocks."""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csflow.engine.errors import Problem, UsageError
from csflow.engine.model import FlowTestFile, TestCase, TextExpectation
from csflow.engine.result import RunResult
from csflow.engine.source import Source, load_yaml
from csflow.engine.suggest import did_you_mean
from csflow.engine.validation import validate
from csflow.flowtest.checks import check_test_file
from csflow.flowtest.mocks import MockRouter
from csflow.flowtest.retries import describe_misses


@dataclass
class TestFile:
    __test__ = False  # not a pytest class

    path: Path
    model: FlowTestFile
    source: Source

    def case_line(self, index: int) -> int:
        return self.source.mark(("cases", index)).line


@dataclass
class CaseOutcome:
    name: str
    flow: str
    failures: list[str] = field(default_factory=list)
    result: RunResult | None = None
    router: MockRouter | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


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
        if model.flow not in project.flows:
            problems.append(
                source.problem(
                    ("flow",),
                    f"unknown flow '{model.flow}'{did_you_mean(model.flow, project.flows)}",
                )
            )
            continue
        problems.extend(check_test_file(model, source, project))
        files.append(TestFile(path, model, source))
    return files, problems


async def run_case(project: Any, flow: str, case: TestCase) -> CaseOutcome:
    """Run one case with its mocks installed, then compare what happened with ``expect``."""
    outcome = CaseOutcome(case.name, flow)
    router = MockRouter.install(project, case.mocks)
    outcome.router = router
    try:
        now = case.now
        if now is not None and now.tzinfo is None:
            now = now.replace(tzinfo=dt.UTC)
        result = await project.run(flow, case.inputs, now=now, dry_run=case.dry_run)
    except UsageError as exc:
        outcome.failures.append(f"the inputs were refused: {exc}")
        return outcome
    finally:
        MockRouter.uninstall(project)
    outcome.result = result
    outcome.failures.extend(compare(case, result))
    outcome.failures.extend(describe_misses(project, router.misses, result))
    if outcome.failures and result.error and not _shown(result.error, outcome.failures):
        # Whatever was expected, a failed run's own error is what explains the case.
        error = result.error
        outcome.failures.append(f"the run failed: {error['kind']}: {error['message']}")
    return outcome


def select(files: list[TestFile], keyword: str | None) -> list[tuple[TestFile, int, TestCase]]:
    """(file, case index, case) for each case whose flow or name contains ``keyword``."""
    return [
        (tf, i, case)
        for tf in files
        for i, case in enumerate(tf.model.cases)
        if not keyword or keyword in f"{tf.model.flow} {case.name}"
    ]


def _shown(error: dict[str, Any], failures: list[str]) -> bool:
    return any(f"{error['kind']}: {error['message']}" in line for line in failures)


def compare(case: TestCase, result: RunResult) -> list[str]:
    expect = case.expect
    failures: list[str] = []
    if expect.status is not None and result.status != expect.status:
        why = f" ({result.error['kind']}: {result.error['message']})" if result.error else ""
        failures.append(f"status: expected {expect.status}, got {result.status}{why}")
    for key, want in (expect.outputs or {}).items():
        if key not in result.outputs:
            why = (
                "the run failed before returning"
                if result.status == "failed"
                else "the flow has no such output"
            )
            failures.append(f"outputs.{key}: expected {_show(want)}, but {why}")
            continue
        got = result.outputs[key]
        if _plain(got) != _plain(want):
            failures.append(f"outputs.{key}: expected {_show(want)}, got {_show(got)}")
    if expect.reply is not None:
        failures.extend(_compare_reply(expect.reply, result.reply))
    if expect.path is not None:
        missing = _not_in_order(expect.path, result.path)
        if missing:
            failures.append(
                f"path: {missing!r} did not run in this order; the steps were {result.path}"
            )
    if expect.error is not None:
        err = result.error or {}
        if expect.error.kind is not None and err.get("kind") != expect.error.kind:
            failures.append(f"error.kind: expected {expect.error.kind}, got {err.get('kind')}")
        if expect.error.message is not None and expect.error.message not in str(err.get("message")):
            want, got = expect.error.message, err.get("message")
            failures.append(f"error.message: expected it to contain {want!r}, got {got!r}")
    return failures


def _compare_reply(want: str | TextExpectation, got: str | None) -> list[str]:
    text = got or ""
    if isinstance(want, str):
        if text.strip() != want.strip():
            return [f"reply: expected\n      {want.strip()!r}\n    got\n      {text!r}"]
        return []
    out = []
    if want.contains is not None and want.contains not in text:
        out.append(f"reply: expected it to contain {want.contains!r}, got {text!r}")
    if want.matches is not None and not re.search(want.matches, text):
        out.append(f"reply: expected it to match /{want.matches}/, got {text!r}")
    return out


def _not_in_order(wanted: list[str], ran: list[str]) -> str | None:
    """The first wanted id that does not follow the previous ones in ``ran``, or None."""
    pos = 0
    for step in wanted:
        try:
            pos = ran.index(step, pos) + 1
        except ValueError:
            return step
    return None


def _plain(value: Any) -> Any:
    """Values as YAML writes them: dates as ISO text, numbers compared by value."""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _show(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False, default=str)
