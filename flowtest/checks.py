"""What a test file names must exist: its flow's inputs, outputs, step ids and connections,
and in conversations the intents and handoff reasons too.

A misspelt name in a case would otherwise only show as a failing (or, worse, a passing)
case at run time; here it is a placed problem at load, with did-you-mean, as in flows.
"""

from __future__ import annotations

from typing import Any

from csflow.adapters.wsdl import WsdlError, wsdl_for
from csflow.engine.errors import ERROR_KINDS, Problem
from csflow.engine.model import Expectation, FlowTestFile, MockSpec, TestCase, TurnExpectation
from csflow.engine.source import Loc, Source
from csflow.engine.suggest import did_you_mean
from csflow.flowtest.scopes import ConversationScopes, Scope, flow_scope


def check_test_file(model: FlowTestFile, source: Source, project: Any) -> list[Problem]:
    problems = _check_kind(model, source, project)
    if problems:
        return problems
    scopes = ConversationScopes(project.intents, project.flows) if model.conversation else None
    for i, case in enumerate(model.cases):
        at: Loc = ("cases", i)
        if scopes is None:
            assert model.flow is not None
            scope = flow_scope(project.flows[model.flow])
        else:
            scope = scopes.any
        problems += _names(source, (*at, "inputs"), case.inputs, scope.inputs, "an input", scope)
        if case.turns is None and scopes is not None:
            problems.append(
                source.problem(
                    at,
                    "a case of a `conversation: true` file gives its conversation as `turns`"
                    " (each a `say:` and its `expect:`)",
                )
            )
        elif case.turns is None:
            problems += _expectation(source, (*at, "expect"), case.expect, scope)
        else:
            problems += _turns(source, at, case, scope, scopes)
        for j, mock in enumerate(case.mocks):
            problems += _mock(source, (*at, "mocks", j), mock, project)
    return problems


def _check_kind(model: FlowTestFile, source: Source, project: Any) -> list[Problem]:
    """A file is either the cases of one flow or conversations: which, and can it be."""
    if model.conversation and model.flow is not None:
        return [
            source.problem(
                ("conversation",),
                "give `flow:` (the cases run that flow) or `conversation: true` (each case"
                " starts from intents.yaml), not both",
                key=True,
            )
        ]
    if model.conversation and project.intents is None:
        return [
            source.problem(
                ("conversation",),
                "`conversation: true` starts each case from intents.yaml, but the project has"
                " no intents.yaml: name the flow to talk to with `flow:` instead",
            )
        ]
    if model.flow is None and not model.conversation:
        return [
            source.problem(
                (),
                "a test file names the flow its cases run (`flow: NAME`), or says"
                " `conversation: true` to start each case from intents.yaml",
            )
        ]
    if model.flow is not None and model.flow not in project.flows:
        hint = did_you_mean(model.flow, project.flows)
        return [source.problem(("flow",), f"unknown flow '{model.flow}'{hint}")]
    return []


def _turns(
    source: Source, at: Loc, case: TestCase, scope: Scope, scopes: ConversationScopes | None
) -> list[Problem]:
    assert case.turns is not None
    problems: list[Problem] = []
    if "expect" in case.model_fields_set:
        problems.append(
            source.problem(
                (*at, "expect"),
                "a case with `turns` gives each turn its own `expect:`; move this one into"
                " the turn it is about",
                key=True,
            )
        )
    waiting: Scope | None = None  # the flow of a conversation left waiting by the turn before
    for j, turn in enumerate(case.turns):
        where: Loc = (*at, "turns", j, "expect")
        expect = turn.expect
        named = "intent" in expect.model_fields_set
        if scopes is None:
            if named:
                problems.append(
                    source.problem(
                        (*where, "intent"),
                        "`intent` is compared only in a `conversation: true` file: the cases"
                        " of a `flow:` file start their flow without classifying the message",
                        key=True,
                    )
                )
            turn_scope = scope
        else:
            if named and expect.intent is not None and expect.intent not in scopes.intents.flows:
                known = scopes.intents.flows
                problems.append(
                    source.problem(
                        (*where, "intent"),
                        f"intents.yaml has no intent '{expect.intent}'"
                        f"{did_you_mean(expect.intent, known) or _listed(known)}",
                    )
                )
            turn_scope = scopes.for_intent(expect.intent) if named else waiting or scopes.any
        problems += _expectation(source, where, expect, turn_scope)
        waiting = turn_scope if expect.status == "waiting" else None
    return problems


def _expectation(
    source: Source, at: Loc, expect: Expectation | TurnExpectation, scope: Scope
) -> list[Problem]:
    problems = _names(
        source, (*at, "outputs"), expect.outputs or {}, scope.outputs, "an output", scope
    )
    for j, label in enumerate(expect.path or []):
        if label not in scope.labels:
            problems.append(
                source.problem(
                    (*at, "path", j),
                    f"no step '{label}' in {scope.what}"
                    f"{did_you_mean(label, scope.labels) or _listed(scope.labels)}",
                )
            )
    kind = expect.error.kind if expect.error is not None else None
    if kind is not None and kind not in ERROR_KINDS:
        problems.append(
            source.problem(
                (*at, "error", "kind"),
                f"unknown error kind '{kind}'{did_you_mean(kind, ERROR_KINDS)}",
            )
        )
    handoff = expect.handoff if isinstance(expect, TurnExpectation) else None
    reason = handoff.reason if handoff is not None else None
    if reason is not None and reason not in scope.reasons:
        problems.append(
            source.problem(
                (*at, "handoff", "reason"),
                f"no handoff with reason '{reason}' in {scope.what}"
                f"{did_you_mean(reason, scope.reasons) or _listed(scope.reasons)}",
            )
        )
    return problems


def _names(
    source: Source, at: Loc, given: dict[str, Any], known: frozenset[str], what: str, scope: Scope
) -> list[Problem]:
    return [
        source.problem(
            (*at, name),
            f"'{name}' is not {what} of {scope.what}{did_you_mean(name, known) or _listed(known)}",
            key=True,
        )
        for name in given
        if name not in known
    ]


def _mock(source: Source, at: Loc, mock: MockSpec, project: Any) -> list[Problem]:
    if mock.connection not in project.connection_models:
        hint = did_you_mean(mock.connection, project.connection_models)
        return [
            source.problem((*at, "connection"), f"unknown connection '{mock.connection}'{hint}")
        ]
    known = _soap_operations(project, mock.connection)
    if mock.operation is not None and known is not None and mock.operation not in known:
        return [
            source.problem(
                (*at, "operation"),
                f"the WSDL of '{mock.connection}' has no operation '{mock.operation}'"
                f"{did_you_mean(mock.operation, known)}",
            )
        ]
    return []


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
