"""``csflow``'s public API, checked the way httpx checks its own (tests/test_exported_members.py).

``__all__`` is sorted and names exactly the module's public members: a name added to the
module but not to ``__all__`` fails, and so does a name in ``__all__`` that is not there.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import types
from pathlib import Path

import pytest

import csflow
import csflow.engine


def _public_names(module: types.ModuleType) -> list[str]:
    # Subpackages (csflow.engine, ...) are attributes once imported; they are not the API.
    return sorted(
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


def test_all_is_sorted_and_names_every_public_member() -> None:
    assert csflow.__all__ == sorted(csflow.__all__)
    assert csflow.__all__ == _public_names(csflow)


def test_the_spec_s_python_api_is_exported() -> None:
    # §8 and §10: what engineers and action authors import.
    assert {
        "Project",
        "ProjectError",
        "Problem",
        "RunResult",
        "StepError",
        "UsageError",
        "action",
    } <= set(csflow.__all__)
    assert issubclass(csflow.ProjectError, csflow.CsflowError)
    assert issubclass(csflow.UsageError, csflow.CsflowError)
    assert issubclass(csflow.StepError, csflow.CsflowError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        csflow.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("csflow.NoSuchThing resolved")


def test_project_is_a_class_not_a_lazy_attribute() -> None:
    # No module-level __getattr__: mypy and readers see Project as what it is.
    assert isinstance(csflow.Project, type)
    assert not hasattr(csflow, "__getattr__")


def test_only_csflow_is_installed_at_the_top_level() -> None:
    # Outside the checkout, the folders are reachable only inside the csflow namespace.
    code = "import importlib.util as u; print([n for n in ('engine', 'adapters', 'actions', 'cli', 'demo', 'flowtest', 'serve') if u.find_spec(n)])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd="/", check=True
    )
    assert out.stdout.strip() == "[]"


ENGINE_MAY_NOT_IMPORT = (
    "csflow.adapters",
    "csflow.actions",
    "csflow.cli",
    "csflow.serve",
    "csflow.project",
    "httpx",
    "httpcore",
    "aiohttp",
    "zeep",
    "gql",
)


def _imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_the_engine_imports_no_adapter_channel_or_http_library() -> None:
    engine = Path(csflow.engine.__file__).parent
    offending = {
        f"{path.relative_to(engine)}: {name}"
        for path in engine.rglob("*.py")
        for name in _imports_of(path)
        if name.startswith(ENGINE_MAY_NOT_IMPORT)
    }
    assert not offending


def test_the_engine_package_is_not_the_public_api() -> None:
    assert not hasattr(csflow.engine, "__getattr__")
    assert not hasattr(csflow.engine, "__all__")
    assert csflow.Project.__module__ == "csflow.project"


def test_a_step_error_is_immutable_and_derives_copies() -> None:
    error = csflow.StepError("connect", "GET shop/x: tok_123456 refused", status=503)
    with pytest.raises(AttributeError, match="immutable"):
        error.outcome = "unknown"  # type: ignore[misc]
    unknown = error.with_outcome("unknown")
    clean = unknown.redacted(lambda text: text.replace("tok_123456", "***"))
    assert (error.outcome, unknown.outcome, clean.outcome) == (None, "unknown", "unknown")
    assert clean.message == "GET shop/x: *** refused" and error.message.endswith(
        "tok_123456 refused"
    )
    assert clean.status == 503 and clean.as_dict()["outcome"] == "unknown"
