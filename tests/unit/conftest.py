"""Fixtures of the engine's unit tests; the helpers live in ``unit_support``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from unit_support import ProjectFiles


@pytest.fixture
def proj(tmp_path: Path) -> ProjectFiles:
    return ProjectFiles(tmp_path)


@pytest.fixture
def cli() -> Any:
    """The ``csflow`` click group with every command registered, for ``CliRunner().invoke``."""
    from csflow.cli.main import _load_command_modules, cli

    _load_command_modules()
    return cli
