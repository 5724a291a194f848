"""Helpers of the engine's unit tests: small projects written to ``tmp_path``.

``proj.write(flows={...}, connections=..., actions={...})`` writes a project; texts are
dedented, so they read as they would in their files, and a ``Path`` is a file copied in
(a flow that several tests share, under ``projects/``). ``proj.at(FILE, NEEDLE)`` is where
NEEDLE stands in FILE, as ``(path, line, column)``, so that a test names the place it
expects a problem at instead of counting columns by hand.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

import csflow
from csflow import Problem, ProjectError


def relative(problem: Problem, root: Path) -> Problem:
    """The problem with its path relative to the project folder, whatever the cwd was."""
    path = Path(problem.path)
    if not path.is_absolute():
        path = Path.cwd() / path
    try:
        shown = path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        shown = problem.path
    return Problem(shown, problem.line, problem.column, problem.message, problem.warning)


class ProjectFiles:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.texts: dict[str, str] = {}

    def write(
        self,
        flows: Mapping[str, str | Path] | None = None,
        connections: str | Path | None = None,
        actions: Mapping[str, str | Path] | None = None,
        files: Mapping[str, str | bytes] | None = None,
    ) -> Path:
        (self.root / "flows").mkdir(exist_ok=True)
        for name, text in (flows or {}).items():
            self._put(f"flows/{name}.yaml", text)
        if connections is not None:
            self._put("connections.yaml", connections)
        for name, text in (actions or {}).items():
            self._put(f"actions/{name}.py", text)
        for rel, content in (files or {}).items():
            self._put(rel, content)
        return self.root

    def _put(self, rel: str, content: str | bytes | Path) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            self.texts[rel] = content.read_text(encoding="utf-8")
            path.write_text(self.texts[rel], encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            text = textwrap.dedent(content).lstrip("\n")
            self.texts[rel] = text
            path.write_text(text, encoding="utf-8")

    def load(self, environ: Mapping[str, str] | None = None) -> Any:
        return csflow.Project.load(self.root, environ=environ)

    def problems(self, environ: Mapping[str, str] | None = None) -> list[Problem]:
        """Every problem of the project (it must fail to load), paths relative to it."""
        with pytest.raises(ProjectError) as info:
            self.load(environ if environ is not None else {})
        return [relative(p, self.root) for p in info.value.problems]

    def problem(self, fragment: str, environ: Mapping[str, str] | None = None) -> Problem:
        """The one problem whose message contains ``fragment``."""
        found = [p for p in self.problems(environ) if fragment in p.message]
        assert len(found) == 1, f"want one problem with {fragment!r}, got {found}"
        return found[0]

    def at(self, rel: str, needle: str, nth: int = 1, shift: int = 0) -> tuple[str, int, int]:
        """Where the ``nth`` occurrence of ``needle`` starts in ``rel`` (1-based line, column)."""
        text = self.texts[rel]
        index = -1
        for _ in range(nth):
            index = text.find(needle, index + 1)
            assert index >= 0, f"{needle!r} (#{nth}) is not in {rel}"
        index += shift
        line = text.count("\n", 0, index) + 1
        column = index - (text.rfind("\n", 0, index) + 1) + 1
        return rel, line, column

    @staticmethod
    def place(problem: Problem) -> tuple[str, int, int]:
        return problem.path, problem.line, problem.column


def answer(project: Any, handler: Any) -> list[httpx.Request]:
    """Answer a project's calls with ``handler`` (a MockTransport); the requests, as sent."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)  # type: ignore[no-any-return]

    project.connections.use_transport(lambda n: httpx.MockTransport(record))
    return seen
