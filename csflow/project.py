"""The composition root: ``Project`` wires the engine to the concrete adapters and the store.

The engine (``csflow.engine``) knows only its ports. This is the one place that builds the
real objects: the connections (``csflow.adapters.connections.Connections``, the engine's
``Gateway``), the run store, and the compiled project they serve. The CLI, the channels
(``csflow.serve``) and the flow tests all load projects through here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from csflow.adapters.connections import Connections
from csflow.adapters.stores import open_store, store_keep, store_path
from csflow.engine.compiled_project import CompiledProject
from csflow.engine.errors import Problem, ProjectError
from csflow.engine.intents import Intents
from csflow.engine.model import Connection as ConnectionModel
from csflow.engine.plan import FlowPlan
from csflow.engine.registry import Registry
from csflow.engine.result import RunResult
from csflow.engine.runner import DEFAULT_DEADLINE
from csflow.engine.source import load_yaml
from csflow.engine.store import RunStore
from csflow.engine.store.memory import MemoryStore

StoreOption = RunStore | str | Path | bool | None


class Project:
    """A loaded, validated and compiled project, with its connections and run store.

    >>> async with Project.load("flows") as project:     # ProjectError lists every problem
    ...     result = await project.run("wismo", {"email": "jane@example.com"})
    >>> result.status, result.reply

    ``async with`` closes the connections' pooled clients (``aclose()``) when it ends; code
    without an event loop calls ``project.run_sync(...)``, which closes them itself. A bare
    ``asyncio.run(project.run(...))`` is fine too: the clients close as that loop ends.

    Runs are recorded only when asked: ``Project.load(path, store=True)`` records in
    ``PROJECT/.csflow/runs.sqlite3`` (or ``CSFLOW_STORE``), ``store=PATH`` in that file, and
    ``store=a_run_store`` in any ``RunStore``. ``csflow run`` always records.
    Tests swap the network with ``project.connections.use_transport(factory)``.
    """

    def __init__(self, compiled: CompiledProject, store: StoreOption = None) -> None:
        self.compiled = compiled
        self.connections = Connections(compiled.connection_models, compiled.root, compiled.environ)
        _raise_connection_problems(self.connections, compiled.root)
        self._owns_store = store is not None and not hasattr(store, "begin")
        self.store: RunStore | None = _open(store, compiled.root, compiled.environ)
        self._memory: RunStore | None = None

    @classmethod
    def load(
        cls,
        path: str | Path = ".",
        *,
        environ: Mapping[str, str] | None = None,
        store: StoreOption = None,
    ) -> Project:
        """Load, validate and compile the project at ``path`` (ProjectError lists problems)."""
        return cls(CompiledProject.load(path, environ=environ), store=store)

    @property
    def root(self) -> Path:
        return self.compiled.root

    @property
    def flows(self) -> dict[str, FlowPlan]:
        return self.compiled.flows

    @property
    def registry(self) -> Registry:
        return self.compiled.registry

    @property
    def connection_models(self) -> dict[str, ConnectionModel]:
        return self.compiled.connection_models

    @property
    def intents(self) -> Intents | None:
        """The project's ``intents.yaml``, trained at load (§12); None when it has none."""
        return self.compiled.intents

    @property
    def warnings(self) -> list[Problem]:
        """What loaded but looks wrong: ``csflow validate`` prints these."""
        return self.compiled.warnings

    def flow(self, name: str) -> FlowPlan:
        """The compiled flow ``name``; UsageError (with did-you-mean) when there is none."""
        return self.compiled.flow(name)

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

        ``dry_run`` reads for real and keeps every write back (the step's ``dry_run`` says
        what would have been sent). ``now`` fixes what expressions see as ``now`` (flow
        tests pin the clock with it).
        """
        return await self.compiled.run(
            flow, inputs, self.connections, store=self.store, deadline=deadline,
            dry_run=dry_run, run_id=run_id, now=now,
        )  # fmt: skip

    async def say(
        self,
        conversation_id: str,
        text: str,
        *,
        context: Mapping[str, Any] | None = None,
        flow: str | None = None,
        dry_run: bool = False,
        deadline: float = DEFAULT_DEADLINE,
        now: dt.datetime | None = None,
    ) -> RunResult:
        """One customer message in the conversation ``conversation_id`` (§12); its answer.

        The first message is classified with ``intents.yaml`` (or starts ``flow``); a
        conversation that waits takes the message as the answer to its ``ask``. ``context``
        fills the flow's inputs of the same names. The result's ``status`` is ``waiting``,
        ``completed``, ``failed``, ``handoff`` or ``expired``; ``reply`` is what the customer
        reads. Conversations live in the project's store, or in memory without one.

        >>> r = await project.say("chat-1", "where is my order?")
        >>> r.status, r.reply
        ('waiting', 'Which order is it? ...')
        """
        return await self.compiled.say(
            conversation_id, text, self.connections, self.conversations, context=context,
            flow=flow, dry_run=dry_run, deadline=deadline, now=now,
        )  # fmt: skip

    @property
    def conversations(self) -> RunStore:
        """Where conversations are kept: the run store, or one in memory when there is none."""
        if self.store is not None:
            return self.store
        if self._memory is None:
            self._memory = MemoryStore()
        return self._memory

    def run_sync(
        self, flow: str, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> RunResult:
        """``run`` for code without an event loop; the loop's clients are closed before it ends."""

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
        """Close the pooled clients of every loop and write (or close) the store."""
        await self.connections.aclose()
        if self.store is not None:
            await asyncio.to_thread(self.close_store)

    async def __aenter__(self) -> Project:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _open(store: StoreOption, root: Path, environ: Mapping[str, str] | None) -> RunStore | None:
    if store is None or store is False:
        return None
    if store is True:
        return open_store(store_path(root, environ), keep=store_keep(environ))
    if isinstance(store, str | Path):
        return open_store(store, keep=store_keep(environ))
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
