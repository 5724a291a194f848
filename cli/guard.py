"""How every command ends: its exit code, its errors, and a reader that left early.

Exit codes: 0 done (the run completed, the project is valid), 1 the run (or the call) failed,
2 a usage or project error, 3 a bug of ours. A user's mistake reads the way click's own do
(``Usage:`` line, ``Try '... --help'``, ``Error: what was wrong``) and exits 2; a broken
project prints ``PATH:LINE:COL: message`` lines. Nothing prints a traceback unless
``CSFLOW_DEBUG`` is set.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

from csflow import CsflowError, ProjectError, StepError, UsageError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BUG = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


class CsflowClickError(click.ClickException):
    """A csflow error that is no usage mistake (a corrupt store, say): ``Error: ...``, exit 2."""

    exit_code = EXIT_USAGE


def usage_error(message: str) -> click.UsageError:
    """A click usage error for the command running now, so its usage line is printed."""
    return click.UsageError(message, ctx=click.get_current_context(silent=True))


def guarded(func: F) -> F:
    """Errors become messages with their exit code; nothing prints a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # click prints these itself, with the usage line and exit 2
        except ProjectError as exc:
            _problems(exc)
        except UsageError as exc:
            raise usage_error(str(exc)) from None
        except StepError as exc:  # a call that failed outside csflow: "failed", as a run
            # .message, not str(exc): the connection redacts .message after the raise
            click.echo(f"Error: {exc.kind}: {exc.message}", err=True)
            sys.exit(EXIT_FAILED)
        except CsflowError as exc:
            raise CsflowClickError(str(exc)) from None
        except BrokenPipeError:
            leave_quietly(EXIT_OK)  # the reader (| head) has what it wanted
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:  # a bug of ours: one line; the trace with CSFLOW_DEBUG=1
            if os.environ.get("CSFLOW_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (set CSFLOW_DEBUG=1 for the trace)",
                err=True,
            )
            sys.exit(EXIT_BUG)

    return wrapper  # type: ignore[return-value]


def _problems(exc: ProjectError) -> NoReturn:
    for problem in exc.problems:
        click.echo(str(problem), err=True)  # one line each, never wrapped: editors parse them
    click.secho(exc.summary, err=True, fg="red")
    sys.exit(EXIT_USAGE)


@contextlib.contextmanager
def exit_after_output(code: int) -> Iterator[None]:
    """Print in the block, then exit with ``code``, even when the reader has gone.

    ``csflow run ... | head -2``: the run has completed and is recorded; a pipe closed
    early changes neither, so the exit code stays the run's and nothing more is printed.
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        leave_quietly(code)
    sys.exit(code)


def leave_quietly(code: int) -> NoReturn:
    """Exit with ``code`` after a broken pipe, without Python's own complaint at shutdown."""
    # Python flushes stdout again at exit and reports the same EPIPE there: point the
    # descriptor at /dev/null first (as the signal docs advise).
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    sys.exit(code)
