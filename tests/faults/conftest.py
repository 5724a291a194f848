"""Fixtures of the fault tests: the fault server (and a second one, "another host"), and
projects written to ``tmp_path`` whose connections point at it."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from server import FaultServer


@pytest.fixture(scope="session")
def _server() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture(scope="session")
def _other() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture
def server(_server: FaultServer) -> FaultServer:
    _server.reset()
    return _server


@pytest.fixture
def other(_other: FaultServer) -> FaultServer:
    """A second server: another host, as far as a connection's origin goes."""
    _other.reset()
    return _other


class Projects:
    """``projects.make(connections=..., flows={...})`` writes a project and loads it."""

    def __init__(self, root: Path, server: FaultServer, other: FaultServer) -> None:
        self.root = root
        self.env = {"FAULTS_URL": server.url, "OTHER_URL": other.url}
        self.loaded: list[Any] = []

    def write(
        self,
        connections: str,
        flows: Mapping[str, str],
        files: Mapping[str, str] | None = None,
    ) -> Path:
        (self.root / "flows").mkdir(parents=True, exist_ok=True)
        (self.root / "connections.yaml").write_text(textwrap.dedent(connections).lstrip())
        for name, text in flows.items():
            (self.root / "flows" / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip())
        for rel, text in (files or {}).items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())
        return self.root

    def make(
        self,
        connections: str,
        flows: Mapping[str, str],
        *,
        env: Mapping[str, str] | None = None,
        store: Any = None,
        files: Mapping[str, str] | None = None,
    ) -> Any:
        from csflow import Project

        self.write(connections, flows, files)
        project = Project.load(self.root, environ={**self.env, **(env or {})}, store=store)
        self.loaded.append(project)
        return project


@pytest.fixture
def projects(tmp_path: Path, server: FaultServer, other: FaultServer) -> Iterator[Projects]:
    made = Projects(tmp_path, server, other)
    yield made
    for project in made.loaded:
        project.close_store()


@pytest.fixture(params=["aiohttp", "httpcore"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both transports csflow can use: aiohttp (the default) and httpx's own."""
    monkeypatch.setenv("CSFLOW_TRANSPORT", request.param)
    return str(request.param)
