"""What a test file names must exist: its flow's inputs, outputs, step ids and connections.

A misspelt name in a case would otherwise only show as a failing (or, worse, a passing)
case at run time; here it is a placed problem at load, with did-you-mean, as in flows.
"""

from __future__ import annotations

from typing import Any

from csflow.adapters.wsdl import WsdlError, wsdl_for
from csflow.engine.errors import ERROR_KINDS, Problem
from csflow.engine.model import FlowTestFile
from csflow.engine.plan import FlowPlan, FlowStep
from csflow.engine.source import Source
from csflow.engine.suggest import did_you_mean


def step_labels(plan: FlowPlan, prefix: str = "", seen: frozenset[str] = frozenset()) -> set[str]:
    """Every label ``path:`` can name: step ids, sub-flow steps as ``find.orders``."""
    out: set[str] = set()
    for step in plan.steps:
        if step.id:
            out.add(prefix + step.id)
        if not isinstance(step, FlowStep) or step.subplan is None:
            continue
        sub = step.subplan
        if sub.name not in seen:  # a recursive flow: list its ids once
            out |= step_labels(sub, f"{prefix}{step.id or sub.name}.", seen | {plan.name})
    return out


def check_test_file(model: FlowTestFile, source: Source, project: Any) -> list[Problem]:
    plan: FlowPlan = project.flows[model.flow]
    labels = step_labels(plan)
    problems: list[Problem] = []
    for i, case in enumerate(model.cases):
        at = ("cases", i)
        for name in case.inputs:
            if name not in plan.inputs:
                problems.append(
                    source.problem(
                        (*at, "inputs", name),
                        f"'{name}' is not an input of flow '{plan.name}'"
                        f"{did_you_mean(name, plan.inputs) or _listed(plan.inputs)}",
                        key=True,
                    )
                )
        for name in case.expect.outputs or {}:
            if name not in plan.outputs:
                problems.append(
                    source.problem(
                        (*at, "expect", "outputs", name),
                        f"'{name}' is not an output of flow '{plan.name}'"
                        f"{did_you_mean(name, plan.outputs) or _listed(plan.outputs)}",
                        key=True,
                    )
                )
        for j, label in enumerate(case.expect.path or []):
            if label not in labels:
                problems.append(
                    source.problem(
                        (*at, "expect", "path", j),
                        f"no step '{label}' in flow '{plan.name}'"
                        f"{did_you_mean(label, labels) or _listed(labels)}",
                    )
                )
        kind = case.expect.error.kind if case.expect.error is not None else None
        if kind is not None and kind not in ERROR_KINDS:
            problems.append(
                source.problem(
                    (*at, "expect", "error", "kind"),
                    f"unknown error kind '{kind}'{did_you_mean(kind, ERROR_KINDS)}",
                )
            )
        for j, mock in enumerate(case.mocks):
            if mock.connection not in project.connection_models:
                hint = did_you_mean(mock.connection, project.connection_models)
                problems.append(
                    source.problem(
                        (*at, "mocks", j, "connection"),
                        f"unknown connection '{mock.connection}'{hint}",
                    )
                )
                continue
            known = _soap_operations(project, mock.connection)
            if mock.operation is not None and known is not None and mock.operation not in known:
                problems.append(
                    source.problem(
                        (*at, "mocks", j, "operation"),
                        f"the WSDL of '{mock.connection}' has no operation '{mock.operation}'"
                        f"{did_you_mean(mock.operation, known)}",
                    )
                )
    return problems


def _soap_operations(project: Any, connection: str) -> set[str] | None:
    """The operations of a SOAP connection's WSDL (read and cached at load), or None."""
    model = project.connection_models.get(connection)
    if getattr(model, "type", None) != "soap":
        return None
    try:
        return set(wsdl_for(model, project.root).operations)
    except WsdlError:  # the project load has reported it
        return None


def _listed(names: Any) -> str:
    """The names there are, when did-you-mean found none close: a short list helps most."""
    known = sorted(names)
    if not known:
        return " (it has none)"
    shown = ", ".join(known[:8]) + (", …" if len(known) > 8 else "")
    return f" (it has: {shown})"
