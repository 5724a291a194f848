"""A flow's boundary: its inputs checked and converted before a run, its outputs after."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csflow.engine.coerce import CoercionError, check_format, coerce
from csflow.engine.errors import StepError, UsageError
from csflow.engine.plan import FlowPlan
from csflow.engine.suggest import did_you_mean


def check_inputs(plan: FlowPlan, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Inputs converted to their declared types; every problem named in one UsageError."""
    problems, values = [], {}
    for name in inputs:
        if name not in plan.inputs:
            problems.append(f"unknown input '{name}'{did_you_mean(name, plan.inputs)}")
    for name, spec in plan.inputs.items():
        value = inputs.get(name)
        if isinstance(value, str):
            value = value.strip()  # customers type spaces around what they paste
        if value is None or value == "":
            if spec.required and spec.default is None:
                problems.append(f"missing input '{name}' ({spec.type})")
            values[name] = spec.default
            continue
        bad = _not_text(value) or _wrong_shape(value, spec.type)
        if bad:
            problems.append(f"input '{name}': {bad}")
            continue
        try:
            value = coerce(value, spec.type)
        except CoercionError as exc:
            problems.append(f"input '{name}': {exc}")
            continue
        bad = check_format(value, spec.format)
        if bad is None and spec.enum is not None and value not in spec.enum:
            bad = f"{value!r} is not one of {', '.join(map(str, spec.enum))}"
        if bad:
            problems.append(f"input '{name}': {bad}")
        values[name] = value
    if problems:
        raise UsageError(f"flow '{plan.name}': " + "; ".join(problems))
    return values


def _not_text(value: Any) -> str | None:
    """A message when ``value`` holds text that cannot be sent or stored (a lone surrogate)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "holds characters that are not valid text (a lone surrogate)"
        return None
    if isinstance(value, dict):
        return next(filter(None, map(_not_text, [*value.keys(), *value.values()])), None)
    if isinstance(value, list | tuple):
        return next(filter(None, map(_not_text, value)), None)
    return None


def _wrong_shape(value: Any, type_name: str) -> str | None:
    """A JSON object, list or boolean given for a text input is a caller's mistake (§8).

    Numbers stay welcome: platforms send order numbers as ``1001`` as often as ``"1001"``.
    """
    if type_name == "string" and isinstance(value, dict | list | tuple | bool):
        what = {dict: "an object", bool: "a boolean"}.get(type(value), "a list")
        return f"expected text, got {what}"
    return None


def check_outputs(
    plan: FlowPlan, scope: dict[str, Any], returned: dict[str, Any]
) -> dict[str, Any]:
    """The declared outputs, converted and checked; StepError(validation) names a bad one."""
    out: dict[str, Any] = {}
    for name, spec in plan.outputs.items():
        value = returned[name] if name in returned else scope.get(name)
        try:
            value = coerce(value, spec.type)
        except CoercionError as exc:
            raise StepError("validation", f"output '{name}': {exc}") from None
        if value is None and spec.required:
            raise StepError("validation", f"output '{name}' is required but was not set")
        if value is not None and spec.enum is not None and value not in spec.enum:
            raise StepError("validation", f"output '{name}': {value!r} is not one of {spec.enum}")
        out[name] = value
    return out
