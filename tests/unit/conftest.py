"""Fixtures of the engine's unit tests; the helpers live in ``unit_support``."""

from __future__ import annotations

from pathlib import Path

import pytest
from unit_support import ProjectFiles


@pytest.fixture
def proj(tmp_path: Path) -> ProjectFiles:
    return ProjectFiles(tmp_path)
