"""Options shared by the commands, each checked while click parses it, before anything runs.

``--project`` must name a csflow project (spec §1): run from the repository root without
``-p``, loading ``.`` would read ``flows/connections.yaml`` as a flow and the built-in
``actions/`` as custom ones, and print a dozen baffling problems instead of one clear line.
An output file must be writable before a run makes its writes, not after.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from csflow.engine.model import parse_duration

F = TypeVar("F", bound=Callable[..., Any])

# Files that make a folder a project (§1), besides flows/*.yaml.
PROJECT_FILES = ("connections.yaml", "channels.yaml", "intents.yaml")


def _has_flows(folder: Path) -> bool:
    return any((folder / "flows").glob("*.yaml"))


def _has_project_files(folder: Path) -> bool:
    return any((folder / name).is_file() for name in PROJECT_FILES)


def nested_project(folder: Path) -> Path | None:
    """``folder/flows`` when that is the project and ``folder`` is not (the repository root)."""
    inner = folder / "flows"
    if not _has_project_files(folder) and (_has_project_files(inner) or _has_flows(inner)):
        return inner
    return None


def project_problem(folder: Path) -> str | None:
    """Why ``folder`` is not a csflow project, or None when it is one."""
    if not folder.exists():
        return f"'{folder}' does not exist"
    if not folder.is_dir():
        return f"'{folder}' is not a folder"
    inner = nested_project(folder)
    if inner is not None:
        return f"'{folder}' is not a csflow project, but '{inner}' is: try --project {inner}"
    if not (_has_flows(folder) or _has_project_files(folder)):
        return (
            f"'{folder}' is not a csflow project: it has no flows/*.yaml, "
            f"{', '.join(PROJECT_FILES[:-1])} or {PROJECT_FILES[-1]}"
        )
    return None


def _a_project(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is not None:
        problem = project_problem(value)
        if problem:
            raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


def project_folder_option(*, default: str | None = ".", checked: bool = True) -> Callable[[F], F]:
    """``--project/-p DIR``; ``checked``: refuse, while parsing, a folder that is no project."""
    return click.option(
        "--project",
        "-p",
        "project_dir",
        default=default,
        show_default=default is not None,
        type=click.Path(file_okay=False, path_type=Path),
        callback=_a_project if checked else None,
        help="The project folder.",
    )


project_option = project_folder_option()  # the usual one: default ".", checked


def _store(ctx: click.Context, param: click.Parameter, value: str | None) -> Path | str | None:
    # A postgresql:// URL stays text: a Path would fold its "//".
    from csflow.adapters.stores import store_location

    return None if value is None else store_location(value)


store_option = click.option(
    "--store",
    metavar="FILE|URL",
    envvar="CSFLOW_STORE",
    default=None,
    callback=_store,
    help="The run store: a SQLite file or a postgresql:// URL. Default:"
    " PROJECT/.csflow/runs.sqlite3, or $CSFLOW_STORE.",
)


def duration(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    """A click callback: ``500ms``, ``3s``, ``2m`` or a number of seconds, more than 0."""
    if value is None:
        return None
    try:
        seconds = float(parse_duration(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    if seconds <= 0:  # a run with no time at all fails at its first step: say so here
        raise click.BadParameter(
            f"'{value}' leaves no time: give more than 0", ctx=ctx, param=param
        )
    return seconds


def output_file(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """A click callback for a file written after the work is done: writable now, or refused."""
    if value is None:
        return None
    folder = value.parent
    problem = None  # a folder given as the file is refused by click.Path(dir_okay=False)
    if not folder.is_dir():
        problem = f"the folder '{folder}' does not exist"
    elif not os.access(value if value.exists() else folder, os.W_OK):
        problem = f"'{value}' cannot be written"
    if problem:
        raise click.BadParameter(problem, ctx=ctx, param=param)
    return value
