"""Every error csflow raises, in one place.

The tree::

    CsflowError
     ├── ProjectError        a project failed to load: carries every Problem found, in one pass
     ├── ExpressionSyntaxError  a template, JMESPath or XPath that does not parse
     ├── UsageError          a caller's mistake: unknown flow, missing or mistyped inputs
     │    └── StoreError     the run store cannot be opened, read or written (names the file)
     └── StepError           a step failed while running; ``kind`` is one of ERROR_KINDS (§7);
                             immutable: ``with_outcome``, ``redacted`` and ``replace`` make copies

A ``Problem`` is one located message, printed as ``PATH:LINE:COL: message``. Adapters
translate httpx, aiohttp, zeep, gql and lxml exceptions into ``StepError`` at their boundary,
once (the transport, for what comes off the wire), with ``raise ... from``; nothing above them
sees a library's exception. A dry run is no exception: the run installs a gate that keeps
writes back (``adapters.calls``).

Outside the tree, each translated where it is caught, never seen by the engine:

- ``adapters.auth.AuthSetupError`` (and ``CustomAuthError``): an auth that cannot be built;
  the connection makes it a placed load problem or its calls' kind ``auth``;
- ``adapters.wsdl.WsdlError`` and ``adapters.graphql.GraphQLProblem``: a WSDL or a query that
  cannot be used; the actions' load-time checks make them problems, a run makes them
  ``validation``;
- ``adapters.transport.NotHttp`` and ``ResponseTooLarge``: httpx errors of csflow's own
  transport, which ``adapters.transport.translate`` makes ``connect`` and ``parse``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
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


class StepError(CsflowError):
    """A step failed with one error kind of §7.

    ``status`` is the HTTP status where there was one. ``outcome`` says whether a side
    effect happened: ``unknown`` when a write was sent and no answer came back.
    ``retryable`` is False when the request may have reached the server and retrying
    could do a write twice.
    """

    __slots__ = ("details", "kind", "message", "outcome", "retry_after", "retryable", "status")

    kind: ErrorKind
    message: str
    status: int | None
    outcome: Outcome | None
    retryable: bool
    retry_after: float | None
    details: Mapping[str, object]

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        status: int | None = None,
        outcome: Outcome | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        init = object.__setattr__  # the one place the fields are set
        init(self, "kind", kind)
        init(self, "message", message)
        init(self, "status", status)
        init(self, "outcome", outcome)
        init(self, "retryable", retryable)
        init(self, "retry_after", retry_after)
        init(self, "details", MappingProxyType(dict(details or {})))

    def __setattr__(self, name: str, value: object) -> None:
        if name in StepError.__slots__:
            raise AttributeError(
                f"StepError is immutable: derive a copy (with_outcome, redacted, replace),"
                f" do not set {name}"
            )
        super().__setattr__(name, value)

    def replace(
        self,
        *,
        message: str | None = None,
        outcome: Outcome | None = None,
        retryable: bool | None = None,
    ) -> StepError:
        """A copy with some fields changed (the others kept)."""
        return StepError(
            self.kind,
            self.message if message is None else message,
            status=self.status,
            outcome=self.outcome if outcome is None else outcome,
            retryable=self.retryable if retryable is None else retryable,
            retry_after=self.retry_after,
            details=self.details,
        )

    def with_outcome(self, outcome: Outcome | None) -> StepError:
        """This error saying what became of the call's write: ``err.with_outcome("unknown")``."""
        return self if outcome is None or outcome == self.outcome else self.replace(outcome=outcome)

    def redacted(self, redact: Callable[[str], str]) -> StepError:
        """This error with every secret in its message as ``***``."""
        clean = redact(self.message)
        return self if clean == self.message else self.replace(message=clean)

    def __reduce__(self) -> tuple[object, ...]:  # pickling (a worker thread or process)
        return (_rebuild, (self.kind, self.message, self.status, self.outcome, self.retryable,
                           self.retry_after, dict(self.details)))  # fmt: skip

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "message": self.message}
        if self.status is not None:
            out["status"] = self.status
        if self.outcome is not None:
            out["outcome"] = self.outcome
        out.update(self.details)
        return out


def _rebuild(
    kind: ErrorKind,
    message: str,
    status: int | None,
    outcome: Outcome | None,
    retryable: bool,
    retry_after: float | None,
    details: dict[str, object],
) -> StepError:
    return StepError(
        kind,
        message,
        status=status,
        outcome=outcome,
        retryable=retryable,
        retry_after=retry_after,
        details=details,
    )
