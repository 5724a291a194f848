"""``Project``: load a folder once, then run its flows many times (§8)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csflow.adapters.connections import Connections
from csflow.engine.errors import Problem, ProjectError, UsageError
from csflow.engine.loader import LoadedProject, load_project, unknown_flow_message
from csflow.engine.plan import FlowPlan
from csflow.engine.result import RunResult
from csflow.engine.runner import DEFAULT_DEADLINE, run_plan
from csflow.engine.source import load_yaml
from csflow.engine.store import Recorder, RunStore

StoreOption = RunStore | str | Path | bool | None


class Project:
    """A loaded, validated and compiled project.

    >>> project = Project.load("flows")                 # ProjectError lists every problem
    >>> result = project.run_sync("wismo", {"email": "jane@example.com"})
    >>> result.status, result.reply

    Runs are recorded only when asked: ``Project.load(path, store=True)`` records in
    ``PROJECT/.csflow/runs.sqlite3`` (or ``CSFLOW_STORE``), ``store=PATH`` in that file, and
    ``store=a_run_store`` in any ``RunStore``. ``csflow run`` always records.
    """

    def __init__(self, loaded: LoadedProject, store: StoreOption = None) -> None:
        self.root = loaded.root
        self.flows: dict[str, FlowPlan] = loaded.flows
        self.registry = loaded.registry
        self.connection_models = loaded.connections
        self.warnings = loaded.warnings
        self.intents = loaded.intents  # intents.yaml trained at load: classify(), entities()
        self.connections = Connections(loaded.connections, loaded.root, loaded.environ)
        _raise_connection_problems(self.connections, loaded.root)
        self._owns_store = store is not None and not hasattr(store, "begin")
        self.store: RunStore | None = _open(store, loaded.root, loaded.environ)

    @classmethod
    def load(
        cls,
        path: str | Path = ".",
        *,
        environ: Mapping[str, str] | None = None,
        store: StoreOption = None,
    ) -> Project:
        env = dict(environ) if environ is not None else None
        return cls(load_project(Path(path), environ=env), store=store)

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
        now: dt.datetime | None = None,
    ) -> RunResult:
        """Run ``flow``; UsageError for an unknown flow or bad inputs, else the RunResult.

        ``now`` fixes what expressions see as ``now`` (flow tests pin the clock with it).
        """
        plan = self.flow(flow)
        if self.store is None:
            return await run_plan(
                plan, inputs or {}, self.connections, deadline=deadline, dry_run=dry_run,
                run_id=run_id, now=now,
            )  # fmt: skip
        recorder = Recorder(self.store, inputs or {}, self.connections.redact)
        result = await run_plan(
            plan,
            inputs or {},
            self.connections,
            deadline=deadline,
            dry_run=dry_run,
            run_id=run_id,
            now=now,
            before_write=recorder.before_write,
            on_end=recorder.end,
        )
        # The answer goes out only once its run is committed (with the runs that finished
        # alongside it), so a process killed after answering has lost no answered run. A run
        # cancelled by its caller was queued by ``end`` and is not waited for.
        await recorder.committed()
        return result

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

    def close_store(self) -> None:
        """Write what the store has queued; close it if the project opened it."""
        if self.store is not None:
            if self._owns_store:
                self.store.close()
            else:
                self.store.flush()

    async def aclose(self) -> None:
        await self.connections.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.close_store)


def _open(store: StoreOption, root: Path, environ: Mapping[str, str] | None) -> RunStore | None:
    if store is None or store is False:
        return None
    # Opening a store by name is the composition root's job (csflow/project.py, being
    # written); until Project moves there, it reaches the adapter here, lazily.
    from csflow.adapters.stores import open_store, store_path

    if store is True:
        return open_store(store_path(root, environ))
    if isinstance(store, str | Path):
        return open_store(store)
    return store


def _raise_connection_problems(connections: Connections, root: Path) -> None:
    """Problems only a connection's setup finds (a custom auth that will not import), placed."""
    found = connections.problems()
    if not found:
        return
    problems: list[Problem] = []
    _, source = load_yaml(root / "connections.yaml", problems)
    for name, key, message in found:
        problems.append(source.problem((name, "auth", key), message))
    raise ProjectError(problems)
