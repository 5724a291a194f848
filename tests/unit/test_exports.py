"""``csflow``'s public API, checked the way httpx checks its own (tests/test_exported_members.py).

``__all__`` is sorted and names exactly the module's public members: a name added to the
module but not to ``__all__`` fails, and so does a name in ``__all__`` that is not there.
"""

from __future__ import annotations

import subprocess
import sys
import types

import csflow


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
