"""``engine``'s public API: a sorted ``__all__`` whose every name resolves."""

from __future__ import annotations

import engine


def test_all_is_sorted() -> None:
    assert sorted(engine.__all__) == engine.__all__


def test_every_exported_name_resolves() -> None:
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


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
    } <= set(engine.__all__)
    assert issubclass(engine.ProjectError, engine.CsflowError)
    assert issubclass(engine.UsageError, engine.CsflowError)
    assert issubclass(engine.StepError, engine.CsflowError)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        engine.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("engine.NoSuchThing resolved")
