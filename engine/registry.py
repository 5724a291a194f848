"""Actions: the ``@action`` decorator, discovery, and signature checks at registration.

``@action("loyalty.points")`` only tags a function. A ``Registry`` finds the tags, in the
modules of the ``csflow.actions`` entry point group (the built-ins enter that way too) and in
a project's ``actions/*.py``, and checks each signature when it registers it.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import re
import sys
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

from csflow.engine.coerce import coerce
from csflow.engine.errors import Problem
from csflow.engine.shapes import Answer

# check(with_args, connection_model_or_None, project_root) -> [(with_key, message), ...]
ActionCheck = Callable[[dict[str, Any], Any, Path], Iterable[tuple[str, str]]]
# answer(with_args, connection_model_or_None, project_root) -> the shape of the step's data
ActionAnswer = Callable[[dict[str, Any], Any, Path], Answer | None]
_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
_TAG = "__csflow_action__"
_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "list",
    dict: "object",
}
_PYTHON = {name: python for python, name in _TYPES.items()}


@dataclass(frozen=True)
class ActionTag:
    name: str
    connection: str | None
    check: ActionCheck | None
    answer: ActionAnswer | None = None


@dataclass(frozen=True)
class ActionSpec:
    """A registered action: its function, what it takes, and where it was defined."""

    name: str
    func: Callable[..., Any]
    origin: str
    is_async: bool
    takes_ctx: bool
    params: dict[str, inspect.Parameter]
    required: frozenset[str]
    types: dict[str, str] = field(default_factory=dict)
    connection_type: str | None = None
    check: ActionCheck | None = None
    answer: ActionAnswer | None = None  # what its data looks like, told before any call
    accepts_any: bool = False

    def convert(self, args: dict[str, Any]) -> dict[str, Any]:
        """Inputs converted to the annotated types (raises CoercionError)."""
        types = self.types
        if not types:
            return args
        for key, value in args.items():
            wanted = types.get(key)
            if wanted is not None and value is not None and type(value) is not _PYTHON[wanted]:
                return {k: coerce(v, types.get(k)) for k, v in args.items()}
        return args  # the common case: every value already has its type


def action(
    name: str,
    *,
    connection: str | None = None,
    check: ActionCheck | None = None,
    answer: ActionAnswer | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as the action ``name``; registration happens at project load.

    >>> @action("loyalty.points")
    ... async def loyalty_points(email: str, *, ctx) -> dict: ...
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"action name {name!r} must match [a-z][a-z0-9_]*(.[a-z][a-z0-9_]*)*")

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _TAG, ActionTag(name, connection, check, answer))
        return func

    return mark


class RegistrationError(Exception):
    pass


def _origin(func: Callable[..., Any]) -> str:
    code = getattr(func, "__code__", None)
    if code is not None:
        return f"{code.co_filename}:{code.co_firstlineno}"
    return f"{func.__module__}:{func.__qualname__}"


def spec_for(func: Callable[..., Any]) -> ActionSpec:
    """Check a tagged function's signature and describe it; raises RegistrationError."""
    tag: ActionTag = getattr(func, _TAG)
    origin = _origin(func)
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise RegistrationError(
            f"action '{tag.name}' ({origin}): cannot read its signature: {exc}"
        ) from None
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    params: dict[str, inspect.Parameter] = {}
    takes_ctx = accepts_any = False
    for p in sig.parameters.values():
        if p.name == "ctx":
            if p.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise RegistrationError(
                    f"action '{tag.name}' ({origin}): 'ctx' must be keyword-only (*, ctx)"
                )
            takes_ctx = True
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any = True
        elif p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise RegistrationError(
                f"action '{tag.name}' ({origin}): parameter '{p.name}'"
                " cannot be given by name from 'with:'"
            )
        else:
            params[p.name] = p
    required = frozenset(n for n, p in params.items() if p.default is inspect.Parameter.empty)
    types = {n: _TYPES[h] for n, h in hints.items() if n in params and h in _TYPES}
    return ActionSpec(
        name=tag.name,
        func=func,
        origin=origin,
        is_async=inspect.iscoroutinefunction(func),
        takes_ctx=takes_ctx,
        params=params,
        required=required,
        types=types,
        connection_type=tag.connection,
        check=tag.check,
        answer=tag.answer,
        accepts_any=accepts_any,
    )


def tagged(module: ModuleType) -> list[Callable[..., Any]]:
    found = [v for v in vars(module).values() if callable(v) and hasattr(v, _TAG)]
    return [f for f in found if getattr(f, "__module__", None) == module.__name__]


class Registry:
    """Actions by name. Built-ins and a project's own enter through ``add``, the same door."""

    def __init__(self, actions: dict[str, ActionSpec] | None = None) -> None:
        self.actions: dict[str, ActionSpec] = dict(actions or {})

    def add(self, func: Callable[..., Any]) -> ActionSpec:
        spec = spec_for(func)
        other = self.actions.get(spec.name)
        if other is not None and other.func is not func:
            raise RegistrationError(
                f"action '{spec.name}' is defined twice: {other.origin} and {spec.origin}"
            )
        self.actions[spec.name] = spec
        return spec

    def copy(self) -> Registry:
        return Registry(self.actions)

    def get(self, name: str) -> ActionSpec | None:
        return self.actions.get(name)

    def load_project_actions(self, folder: Path) -> list[Problem]:
        """Import every ``folder/*.py`` and register what it tags; import errors are problems."""
        problems: list[Problem] = []
        if not folder.is_dir():
            return problems
        prefix = "csflow_project_" + hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]
        for path in sorted(folder.glob("*.py")):
            shown = str(path)
            try:
                module = import_file(f"{prefix}.{path.stem}", path)
            except SyntaxError as exc:
                problems.append(
                    Problem(shown, exc.lineno or 1, exc.offset or 1, f"syntax error: {exc.msg}")
                )
                continue
            except Exception as exc:
                line = _line_in(exc, path)
                problems.append(
                    Problem(shown, line, 1, f"importing failed: {type(exc).__name__}: {exc}")
                )
                continue
            for func in tagged(module):
                try:
                    self.add(func)
                except RegistrationError as exc:
                    line = getattr(getattr(func, "__code__", None), "co_firstlineno", 1)
                    problems.append(Problem(shown, line, 1, str(exc)))
        return problems


def import_file(name: str, path: Path) -> ModuleType:
    """Import ``path`` as the module ``name`` (a project's actions, a custom auth)."""
    package = name.rpartition(".")[0]
    if package and package not in sys.modules:
        sys.modules[package] = ModuleType(package)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _line_in(exc: BaseException, path: Path) -> int:
    tb = exc.__traceback__
    line = 1
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename) == path:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


_builtin: Registry | None = None


def builtin_registry() -> Registry:
    """The actions of the ``csflow.actions`` entry point group, discovered once per process."""
    global _builtin
    if _builtin is None:
        registry = Registry()
        for ep in entry_points(group="csflow.actions"):
            module = ep.load()
            funcs = tagged(module) if isinstance(module, ModuleType) else [module]
            for func in funcs:
                registry.add(func)
        _builtin = registry
    return _builtin.copy()
