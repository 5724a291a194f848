"""csflow's engine: the flow language, loading, validation, expressions and the runner.

>>> from engine import Project
>>> project = Project.load("flows")
>>> result = project.run_sync("wismo", {"email": "jane@example.com"})
"""

from csflow.engine.context import ActionContext, Payload
from csflow.engine.errors import CsflowError, Problem, ProjectError, StepError, UsageError
from csflow.engine.registry import action
from csflow.engine.result import RunResult, StepRecord

__all__ = [
    "ActionContext",
    "CsflowError",
    "Payload",
    "Problem",
    "Project",
    "ProjectError",
    "RunResult",
    "StepError",
    "StepRecord",
    "UsageError",
    "action",
]


def __getattr__(name: str) -> object:
    # Project pulls in the adapters (httpx); actions import `engine` for @action without it.
    if name == "Project":
        from csflow.engine.project import Project

        return Project
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
