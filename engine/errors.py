"""Every error csflow raises, in one place.

The tree::

    CsflowError
     ├── ProjectError        a project failed to load: carries every Problem found, in one pass
     ├── ExpressionSyntaxError  a template, JMESPath or XPath that does not parse
     ├── UsageError          a caller's mistake: unknown flow, missing or mistyped inputs
     │    └── StoreError     the run store cannot be opened, read or written (names the file)
     ├── WriteSkipped        a dry run stopped a write at the wire; the step goes on with no data
     └── StepError           a step failed while running; ``kind`` is one of ERROR_KINDS (§7)

A ``Problem`` is one located message, printed as ``PATH:LINE:COL: message``. Adapters
translate httpx, zeep, gql and lxml exceptions into ``StepError`` at their boundary, once,
with ``raise ... from exc``; nothing above them sees a library's exception.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

ErrorKind = Literal[
    "connect",
    "timeout",
    "http_status",
    "auth",
    "parse",
    "extract",
    "expression",
    "validation",
    "action",
    "flow_failed",
    "step_limit",
    "deadline",
]
ERROR_KINDS: tuple[str, ...] = ErrorKind.__args__  # type: ignore[attr-defined]

Outcome = Literal["done", "not_sent", "unknown"]


class CsflowError(Exception):
    """The root of every csflow error."""


@dataclass(frozen=True, order=True)
class Problem:
    """One problem in a project file, located to the character.

    A ``warning`` does not stop the project from loading: it is something that loads but
    probably does not do what its author meant (a mis-indented key, say).
    """

    path: str
    line: int
    column: int
    message: str
    warning: bool = False

    def __str__(self) -> str:
        label = "warning: " if self.warning else ""
        return f"{self.path}:{self.line}:{self.column}: {label}{self.message}"


class ProjectError(CsflowError):
    """A project did not load. ``problems`` lists every problem, sorted by place."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))

    @property
    def summary(self) -> str:
        """``3 problems found`` (warnings counted apart: they alone would not stop a load)."""
        warnings = sum(p.warning for p in self.problems)
        errors = len(self.problems) - warnings
        text = f"{errors} problem{'s' * (errors != 1)} found"
        return text + (f" and {warnings} warning{'s' * (warnings != 1)}" if warnings else "")


class ExpressionSyntaxError(CsflowError):
    """A Jinja, JMESPath or XPath mistake found at load, ``offset`` characters into its source.

    The compiler turns it into a ``Problem`` placed at the right column; it never reaches a user
    on its own.
    """

    def __init__(self, message: str, offset: int | None = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


class UsageError(CsflowError):
    """The caller asked for something that cannot run: unknown flow, bad inputs."""


class StoreError(UsageError):
    """The run store cannot be opened, read or written; the message names the store.

    A usage error, so that the CLI prints it on one line and exits 2: the fix is the
    caller's (another ``--store``, a free disk), not csflow's.
    """


class WriteSkipped(CsflowError):
    """A dry run (``csflow run --dry-run``) kept a write from being sent.

    ``would_send`` says what would have gone out: method, URL and body, secrets redacted.
    """

    def __init__(self, would_send: dict[str, object]) -> None:
        super().__init__(f"dry run: {would_send.get('method')} {would_send.get('url')} not sent")
        self.would_send = would_send


class StepError(CsflowError):
    """A step failed with one error kind of §7.

    ``status`` is the HTTP status where there was one. ``outcome`` says whether a side
    effect happened: ``unknown`` when a write was sent and no answer came back.
    ``retryable`` is False when the request may have reached the server and retrying
    could do a write twice.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        outcome: Outcome | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.status = status
        self.outcome = outcome
        self.retryable = retryable
        self.retry_after = retry_after
        self.details = details or {}

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "message": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.outcome is not None:
            out["outcome"] = self.outcome
        out.update(self.details)
        return out
