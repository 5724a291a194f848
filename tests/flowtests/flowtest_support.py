"""What the flow-test tests share: the conversation project, and pytest run on a project's
cases with the verdicts of it and of `csflow test` read from their output."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

DATA = Path(__file__).parent / "data"
CASES = DATA / "chat_cases"


def chat_project(tmp_path: Path, *cases: str) -> Path:
    """A copy of ``data/chat`` with these files of ``data/chat_cases`` as its flow tests.

    The cases live outside a project's ``tests/flows/`` so that pytest's flow-test plugin
    never collects them where they are."""
    root = tmp_path / "chat"
    shutil.copytree(DATA / "chat", root)
    (root / "tests" / "flows").mkdir(parents=True)
    for name in cases:
        shutil.copy(CASES / name, root / "tests" / "flows" / name)
    return root


def run_pytest(project: Path, env: Mapping[str, str] = {}) -> subprocess.CompletedProcess[str]:
    """``python -m pytest -rA`` on the project's ``tests/flows``, from the project's folder."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", "tests/flows"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "300"},
        timeout=120,
        cwd=project,
    )


def cli_verdicts(stdout: str) -> dict[str, bool]:
    """Case name -> passed, from `csflow test`'s ``✓ flow · name`` lines."""
    return {m[1]: m[0] == "✓" for m in re.findall(r"^([✓✗]) \w+ · (.+)$", stdout, re.M)}


def pytest_verdicts(stdout: str) -> dict[str, bool]:
    """Case name -> passed, from pytest's ``-rA`` summary."""
    found = re.findall(r"^(PASSED|FAILED) \S+::(.+?)(?: - .*)?$", stdout, re.M)
    return {name.strip(): verdict == "PASSED" for verdict, name in found}
