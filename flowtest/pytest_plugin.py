"""The csflow pytest plugin (entry point ``pytest11``).

It collects ``tests/flows/*.yaml`` of a csflow project as test items, one per case, run by
the same code as ``csflow test``. Its fixtures serve engineers' own tests:

    async def test_shipped(csflow_project, flow_mock):
        flow_mock.add(connection="shop", method="GET", path="/orders", json=[...])
        result = await csflow_project.run("wismo", {"email": "jane@example.com"})

``csflow_project`` loads the project named by the ``csflow_project`` ini option (default:
the rootdir). ``flow_mock`` installs a MockRouter on it for the test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "csflow_project", "the csflow project folder for the csflow_project fixture", default="."
    )


def _project_root(path: Path) -> Path | None:
    """``P/tests/flows/x.yaml`` belongs to project P when P has a flows/ folder."""
    if path.parent.name == "flows" and path.parent.parent.name == "tests":
        root = path.parent.parent.parent
        if (root / "flows").is_dir():
            return root
    return None


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix in (".yaml", ".yml") and _project_root(file_path) is not None:
        return FlowTestYaml.from_parent(parent, path=file_path)
    return None


_projects: dict[Path, Any] = {}


def _load(root: Path) -> Any:
    from csflow import Project

    if root not in _projects:
        _projects[root] = Project.load(root)
    return _projects[root]


class FlowTestYaml(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        from csflow import ProjectError
        from csflow.flowtest import load_test_files

        root = _project_root(self.path)
        assert root is not None
        project = _load(root)
        files, problems = load_test_files(project, [self.path])
        if problems:
            raise ProjectError(problems)
        for tf in files:
            for i, case in enumerate(tf.model.cases):
                yield FlowCaseItem.from_parent(
                    self,
                    name=case.name,
                    project=project,
                    flow=tf.model.flow,
                    label=tf.label,
                    case=case,
                    line=tf.case_line(i),
                )


class FlowCaseFailed(Exception):
    pass


class FlowCaseItem(pytest.Item):
    def __init__(
        self, *, project: Any, flow: str | None, label: str, case: Any, line: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # ``flow`` None: a conversation's case, started from intents.yaml; ``label`` shows it.
        self.project, self.flow, self.label, self.case, self.line = project, flow, label, case, line

    def runtest(self) -> None:
        from csflow.flowtest import run_case

        async def once() -> Any:
            try:
                return await run_case(self.project, self.flow, self.case)
            finally:
                await self.project.connections.aclose_loop()

        outcome = asyncio.run(once())
        if not outcome.ok:
            raise FlowCaseFailed("\n".join(outcome.failures))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, FlowCaseFailed):
            return f"{self.path}:{self.line}: {self.label} · {self.name}\n{excinfo.value}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.line - 1, f"{self.label} · {self.name}"


@pytest.fixture
def csflow_project(request: pytest.FixtureRequest) -> Any:
    """The project of the ``csflow_project`` ini option (relative to the rootdir), loaded."""
    from csflow import Project

    root = Path(request.config.rootpath) / request.config.getini("csflow_project")
    return Project.load(root)


@pytest.fixture
def flow_mock(csflow_project: Any) -> Iterator[Any]:
    """Mocks for REST, SOAP and GraphQL calls of ``csflow_project``; unmatched calls fail."""
    from csflow.flowtest import MockRouter

    router = MockRouter.install(csflow_project)
    yield router
    MockRouter.uninstall(csflow_project)
