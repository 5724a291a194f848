"""csflow: a low-code flow engine for customer-service intents.

>>> from csflow import Project
>>> async with Project.load("flows") as project:    # ProjectError lists every problem
...     result = await project.run("wismo", {"email": "jane@example.com"})
>>> result.status, result.reply
"""

from csflow.engine.context import ActionContext, Payload
from csflow.engine.errors import CsflowError, Problem, ProjectError, StepError, UsageError
from csflow.engine.registry import action
from csflow.engine.result import RunResult, StepRecord
from csflow.project import Project

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
