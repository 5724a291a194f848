"""The conversation tests' project: a copy of ``data/chat`` with some of ``data/chat_cases``."""

from __future__ import annotations

import shutil
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
