"""csflow: a low-code flow engine for customer-service intents.

>>> from csflow import Project
>>> project = Project.load("flows")                 # ProjectError lists every problem
>>> result = project.run_sync("wismo", {"email": "jane@example.com"})
>>> result.status, result.reply
"""

from csflow.engine.context import ActionContext, Payload
from csflow.engine.errors import CsflowError, Problem, ProjectError, StepError, UsageError
from csflow.engine.project import Project
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
