"""``CompiledProject``: a project folder loaded, validated and compiled, run through ports.

The engine's side of a project: its flows as plans, its registry and its connection models.
``run`` takes the ports a run needs (a ``Gateway`` to the connections, a ``RunStore``); the
composition root (``csflow.project.Project``) builds the concrete ones and passes them in.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csflow.engine.conversation import ConversationTurn
from csflow.engine.errors import UsageError
from csflow.engine.loader import LoadedProject, load_project, unknown_flow_message
from csflow.engine.plan import FlowPlan
from csflow.engine.ports import Gateway, RunStore
from csflow.engine.result import RunResult
from csflow.engine.runner import DEFAULT_DEADLINE, run_plan
from csflow.engine.store import Recorder


class CompiledProject:
    """A loaded project: ``flows`` by name, the ``registry``, and the connection models."""

    def __init__(self, loaded: LoadedProject) -> None:
        self.root = loaded.root
        self.environ = loaded.environ
        self.flows: dict[str, FlowPlan] = loaded.flows
        self.registry = loaded.registry
        self.connection_models = loaded.connections
        self.warnings = loaded.warnings  # what loads but looks wrong (csflow validate shows them)
        self.intents = loaded.intents  # intents.yaml trained at load: classify(), entities()

    @classmethod
    def load(cls, path: str | Path, *, environ: Mapping[str, str] | None = None) -> CompiledProject:
        """Load ``path``; ProjectError lists every problem found."""
        env = dict(environ) if environ is not None else None
        return cls(load_project(Path(path), environ=env))

    def flow(self, name: str) -> FlowPlan:
        plan = self.flows.get(name)
        if plan is None:
            raise UsageError(unknown_flow_message(name, self.flows))
        return plan

    async def run(
        self,
        flow: str,
        inputs: Mapping[str, Any] | None,
        gateway: Gateway,
        *,
        store: RunStore | None = None,
        deadline: float = DEFAULT_DEADLINE,
        dry_run: bool = False,
        run_id: str | None = None,
        now: dt.datetime | None = None,
    ) -> RunResult:
        """Run ``flow`` on ``gateway``, recorded in ``store`` when there is one."""
        plan = self.flow(flow)
        values = inputs or {}
        if store is None:
            return await run_plan(
                plan, values, gateway, deadline=deadline, dry_run=dry_run, run_id=run_id,
                now=now, intents=self.intents,
            )  # fmt: skip
        recorder = Recorder(store, values, gateway.redact, deadline)
        result = await run_plan(
            plan,
            values,
            gateway,
            deadline=deadline,
            dry_run=dry_run,
            run_id=run_id,
            now=now,
            intents=self.intents,
            before_write=recorder.before_write,
            on_end=recorder.end,
        )
        # The answer goes out only once its run is committed (with the runs that finished
        # alongside it), so a process killed after answering has lost no answered run. A run
        # cancelled by its caller was queued by ``end`` and is not waited for.
        await recorder.committed()
        return result

    async def say(
        self,
        conversation_id: str,
        text: str,
        gateway: Gateway,
        store: RunStore,
        *,
        context: Mapping[str, Any] | None = None,
        flow: str | None = None,
        dry_run: bool = False,
        deadline: float = DEFAULT_DEADLINE,
        now: dt.datetime | None = None,
    ) -> RunResult:
        """One turn of the conversation ``conversation_id`` (§12), kept in ``store``."""
        turn = ConversationTurn(self.flows, self.intents, gateway, store)
        return await turn.say(
            conversation_id, text, context=context, flow=flow, dry_run=dry_run,
            deadline=deadline, now=now,
        )  # fmt: skip
