"""``Project``: load a folder once, then run its flows many times (§8)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.connections import Connections
from engine.errors import UsageError
from engine.loader import LoadedProject, load_project, unknown_flow_message
from engine.plan import FlowPlan
from engine.result import RunResult
from engine.runner import DEFAULT_DEADLINE, run_plan


class Project:
    """A loaded, validated and compiled project.

    >>> project = Project.load("flows")                 # ProjectError lists every problem
    >>> result = project.run_sync("wismo", {"email": "jane@example.com"})
    >>> result.status, result.reply
    """

    def __init__(self, loaded: LoadedProject) -> None:
        self.root = loaded.root
        self.flows: dict[str, FlowPlan] = loaded.flows
        self.registry = loaded.registry
        self.connection_models = loaded.connections
        self.connections = Connections(loaded.connections, loaded.root, loaded.environ)

    @classmethod
    def load(cls, path: str | Path = ".", *, environ: Mapping[str, str] | None = None) -> Project:
        return cls(load_project(Path(path), environ=dict(environ) if environ is not None else None))

    def flow(self, name: str) -> FlowPlan:
        plan = self.flows.get(name)
        if plan is None:
            raise UsageError(unknown_flow_message(name, self.flows))
        return plan

    async def run(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE,
        dry_run: bool = False,
        run_id: str | None = None,
    ) -> RunResult:
        """Run ``flow``; UsageError for an unknown flow or bad inputs, else the RunResult."""
        return await run_plan(
            self.flow(flow),
            inputs or {},
            self.connections,
            deadline=deadline,
            dry_run=dry_run,
            run_id=run_id,
        )

    def run_sync(
        self, flow: str, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> RunResult:
        """``run`` for code without an event loop."""

        async def once() -> RunResult:
            try:
                return await self.run(flow, inputs, **kwargs)
            finally:
                await self.connections.aclose_loop()

        return asyncio.run(once())

    async def aclose(self) -> None:
        await self.connections.aclose()
