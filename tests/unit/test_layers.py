"""The layer rules of docs/architecture.md, read from the imports of every module.

The engine's own rule (no adapter, action, channel, CLI or HTTP library) is in
test_exports.py; these are the rules between the other layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        # Adapters implement the ports; they know no flows, plans or channels.
        (
            "adapters",
            (
                "csflow.engine.runner",
                "csflow.engine.plan",
                "csflow.engine.compiler",
                "csflow.engine.verbs",
                "csflow.serve",
                "csflow.cli",
                "csflow.flowtest",
                "csflow.demo",
                "csflow.project",
            ),
        ),
        # Actions reach a connection through ctx, never the runner.
        ("actions", ("csflow.engine.runner", "csflow.serve", "csflow.cli", "csflow.demo")),
        # The channels are an application layer beside the CLI, not under it.
        ("serve", ("csflow.cli", "csflow.demo", "csflow.flowtest")),
        # Demo Shop is a merchant: it knows nothing of flows (it shares only the socket
        # helper that says "cannot listen on ...: address already in use").
        ("demo", ("csflow.engine", "csflow.serve", "csflow.project", "csflow.adapters.conn")),
    ],
)
def test_a_layer_does_not_reach_past_its_neighbours(layer: str, forbidden: tuple[str, ...]) -> None:
    offending = sorted(
        f"{module}: {name}"
        for module, names in _imports(layer).items()
        for name in names
        if name.startswith(forbidden)
    )
    assert not offending


def test_only_the_composition_root_builds_connections() -> None:
    builders = sorted(
        module
        for folder in ("engine", "serve", "cli", "flowtest", "actions")
        for module, names in _imports(folder).items()
        if "csflow.adapters.connections" in names
    )
    assert builders == []


def test_scikit_learn_is_imported_only_by_a_project_that_trains_intents() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from csflow import Project\n"
        "import csflow.cli.main\n"
        f"Project.load({str(ROOT / 'tests/unit/projects/runner')!r})\n"
        "print('sklearn' in sys.modules, 'numpy' in sys.modules)\n"
        f"Project.load({str(ROOT / 'tests/unit/projects/conversation')!r})\n"
        "print('sklearn' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    # Most of a second a process: every csflow command of a project without intents.yaml.
    assert done.stdout.split() == ["False", "False", "True"]
