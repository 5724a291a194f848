"""The flows and runs pages: what each shows, read from the compiled project and the store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from csflow.engine.graph import mermaid
from csflow.engine.store import RunRecord
from csflow.engine.suggest import did_you_mean
from csflow.serve.console.data import STATUSES, WITHIN, RunQuery, page_number

if TYPE_CHECKING:
    from csflow.engine.plan import FlowPlan
    from csflow.serve.console.app import Console

FLOW_RUNS = 10  # the recent runs a flow's page lists; the runs page has the rest


@dataclass(frozen=True, slots=True)
class FlowRow:
    name: str
    description: str | None
    steps: int
    last: RunRecord | None
    last_failure: RunRecord | None


def unknown_outcomes(record: RunRecord) -> list[str]:
    """The steps whose write may or may not have happened (``outcome: unknown``)."""
    return [
        str(s.get("id") or s.get("verb")) for s in record.steps if s.get("outcome") == "unknown"
    ]


class Pages:
    def __init__(self, console: Console) -> None:
        self.console = console

    @property
    def _flows(self) -> dict[str, FlowPlan]:
        return self.console.project.flows

    async def flows(self, request: Request) -> Response:
        records = self.console.records
        names = sorted(self._flows)
        latest = await records.latest(names)
        failures = await records.failures()
        rows = [
            FlowRow(
                name,
                self._flows[name].model.description,
                len(self._flows[name].steps),
                latest.get(name),
                failures.get(name),
            )
            for name in names
        ]
        return self.console.render(
            request, "flows.html", rows=rows, recording=records.recording, section="flows"
        )

    async def flow(self, request: Request) -> Response:
        name = request.path_params["name"]
        plan = self._flows.get(name)
        if plan is None:
            hint = did_you_mean(name, self._flows)
            return self._missing(request, f"There is no flow '{name}'{hint}.", "flows")
        page = await self.console.records.runs(RunQuery(flow=name), size=FLOW_RUNS)
        return self.console.render(
            request,
            "flow.html",
            plan=plan,
            description=plan.model.description,
            diagram=mermaid(plan),
            step_ids=[s.id for s in plan.steps if s.id],
            runs=page.items,
            more=page.more,
            recording=self.console.records.recording,
            section="flows",
        )

    async def runs(self, request: Request) -> Response:
        params = dict(request.query_params)
        query = RunQuery.from_params(params, self._flows)
        page = await self.console.records.runs(query, page_number(params))
        return self.console.render(
            request,
            "runs.html",
            filters=query,
            kept=query.params(),
            page=page,
            flows=sorted(self._flows),
            statuses=STATUSES,
            within=list(WITHIN),
            recording=self.console.records.recording,
            section="runs",
        )

    async def run(self, request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = await self.console.records.run(run_id)
        if record is None:
            return self._missing(request, f"There is no run '{run_id}' in the store.", "runs")
        return self.console.render(
            request,
            "run.html",
            run=record,
            unknown=unknown_outcomes(record),
            section="runs",
        )

    async def not_found(self, request: Request) -> Response:
        return self._missing(request, "There is no page here.", None)

    def _missing(self, request: Request, message: str, section: Any) -> Response:
        return self.console.render(
            request, "error.html", 404, title="Not found", message=message, section=section
        )


__all__ = ["FlowRow", "Pages", "unknown_outcomes"]
