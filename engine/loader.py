"""Loads a project folder: every file read, validated and compiled, every problem collected."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from csflow.engine.compiler import FlowCompiler, LoadedFlow
from csflow.engine.cycles import check_cycles, check_unreachable_asks
from csflow.engine.errors import Problem, ProjectError
from csflow.engine.expressions import Expressions
from csflow.engine.intents import FILE_NAME as INTENTS_FILE
from csflow.engine.intents import Intents, check_intents
from csflow.engine.model import VERB_FIELDS, Connection, Flow, InputSpec, OutputSpec
from csflow.engine.model import StepSpec as StepModel
from csflow.engine.plan import FlowPlan
from csflow.engine.registry import Registry, builtin_registry
from csflow.engine.source import Loc, Source, display_path, load_yaml
from csflow.engine.suggest import did_you_mean
from csflow.engine.validation import validate

# Stands in for a missing variable (already reported) so its connection is still checked.
UNSET_ENV = "http://unset.invalid/{}"
SECRET_KEYS = frozenset({"token", "password", "key", "client_secret", "refresh_token", "secret"})
MAYBE_SECRET_KEYS = frozenset({"username", "client_id"})


@dataclass
class LoadedProject:
    root: Path
    flows: dict[str, FlowPlan] = field(default_factory=dict)
    connections: dict[str, Connection] = field(default_factory=dict)
    registry: Registry = field(default_factory=Registry)
    expressions: Expressions = field(default_factory=Expressions)
    environ: Any = None  # where {env} secrets are read when connections open
    warnings: list[Problem] = field(default_factory=list)  # what loads, but looks wrong
    intents: Intents | None = None  # intents.yaml, trained (§12); None without the file


def load_project(root: Path | str, *, environ: dict[str, str] | None = None) -> LoadedProject:
    """Read, validate and compile a project; raises ProjectError with every problem."""
    root = Path(root)
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    if not root.is_dir():
        raise ProjectError([Problem(str(root), 1, 1, "project folder not found")])
    project = LoadedProject(root=root, environ=env)
    project.connections = _load_connections(root / "connections.yaml", env, problems)
    loaded = _load_flows(root / "flows", problems)
    project.registry = builtin_registry()
    problems.extend(project.registry.load_project_actions(root / "actions"))
    # Every plan exists before any compiles, so that a `flow` step can hold its sub-flow's.
    project.flows = {
        name: FlowPlan(name=name, model=lf.model, path=lf.source.path)
        for name, lf in loaded.items()
    }
    intents = check_intents(root, loaded, problems)
    entities: list[str] | None = list(intents.spec.entities) if intents is not None else []
    if intents is None and (root / INTENTS_FILE).exists():
        entities = None  # broken, and reported: asks are not checked against it
    for name, lf in loaded.items():
        compiler = FlowCompiler(
            lf,
            loaded,
            project.connections,
            project.registry,
            project.expressions,
            problems,
            root,
            plans=project.flows,
            entities=entities,
        )
        compiler.compile_into(project.flows[name])
    check_cycles(loaded, problems)
    if entities is not None:  # a broken intents.yaml is reported already: no echo of it
        check_unreachable_asks(loaded, intents, problems)
    if any(not p.warning for p in problems):
        raise ProjectError(problems)  # the warnings too: every problem in one pass
    project.warnings = sorted(problems)
    project.intents = intents.train() if intents is not None else None
    return project


def _load_flows(folder: Path, problems: list[Problem]) -> dict[str, LoadedFlow]:
    flows: dict[str, LoadedFlow] = {}
    if not folder.is_dir():
        problems.append(
            Problem(
                display_path(folder),
                1,
                1,
                "no flows/ folder: a project keeps its flows in flows/*.yaml",
            )
        )
        return flows
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        data, source = load_yaml(path, problems)
        if data is None:
            if not any(p.path == source.path for p in problems):
                problems.append(
                    Problem(source.path, 1, 1, "the file is empty: a flow needs a name and steps")
                )
            continue
        if not isinstance(data, dict):
            problems.append(
                source.problem((), "a flow file is a mapping with name, inputs, outputs and steps")
            )
            continue
        model, found = validate(Flow, data, source)
        problems.extend(found)
        broken: set[int] = set()
        names: set[str] = set()
        partial = False
        if model is None:
            model, broken, names, partial = _salvage(data, source)
            if model is None:
                continue
        if model.name in flows:
            first = flows[model.name].source.path
            problems.append(
                source.problem(("name",), f"flow name '{model.name}' is already used by {first}")
            )
            continue
        flows[model.name] = LoadedFlow(model, source, broken, names, partial)
    return flows


def _salvage(data: dict[str, Any], source: Source) -> tuple[Flow | None, set[int], set[str], bool]:
    """What of an invalid flow can still be checked: its good steps, so one pass finds all.

    A broken step keeps only its id, so that targets naming it are not reported twice.
    """
    name = data.get("name")
    raw_steps = data.get("steps")
    if not isinstance(name, str) or not isinstance(raw_steps, list):
        return None, set(), set(), True
    steps, broken, names = [], set(), set()
    verbs = set(VERB_FIELDS)
    for i, raw in enumerate(raw_steps):
        step = _step_without_bad_keys(raw, verbs)
        if step is None:
            sid = raw.get("id") if isinstance(raw, dict) else None
            step = StepModel.model_construct(id=sid if isinstance(sid, str) else None)
            broken.add(i)
            names.update(_names_defined(raw))
        steps.append(step)
    parts: dict[str, Any] = {}
    bad_inputs = False
    for key, spec in (("inputs", InputSpec), ("outputs", OutputSpec)):
        declared = data.get(key) or {}
        shell = {"name": "x", "steps": [{"next": "x"}], key: declared}
        try:
            parts[key] = getattr(Flow.model_validate(shell), key)
        except ValidationError:
            # The names still count (a mistyped type is one problem, not one per `return`).
            kept = declared if isinstance(declared, dict) else {}
            parts[key] = {n: spec() for n in kept if isinstance(n, str)}
            bad_inputs = bad_inputs or key == "inputs"
    return Flow.model_construct(name=name, steps=steps, **parts), broken, names, bad_inputs


def _step_without_bad_keys(raw: Any, verbs: set[str]) -> StepModel | None:
    """The step with its invalid keys left out (already reported), unless a verb was one."""
    try:
        return StepModel.model_validate(raw)
    except ValidationError as exc:
        if not isinstance(raw, dict):
            return None
        bad = {e["loc"][0] for e in exc.errors() if e["loc"]}
        if bad & verbs or not bad:
            return None
        try:
            step = StepModel.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            return None
        return step if step.verbs() or step.next is not None else None


def _names_defined(raw: Any) -> set[str]:
    if not isinstance(raw, dict):
        return set()
    names: set[str] = set()
    for key in ("set",):
        if isinstance(raw.get(key), dict):
            names.update(map(str, raw[key]))
    extract = raw.get("extract")
    if isinstance(extract, dict):
        fields = extract.get("fields", extract)
        if isinstance(fields, dict):
            names.update(str(k) for k in fields if k != "from")
    if isinstance(raw.get("as"), str):
        names.add(raw["as"])
    return names


def _load_connections(path: Path, env: Any, problems: list[Problem]) -> dict[str, Connection]:
    if not path.exists():
        return {}
    data, source = load_yaml(path, problems)
    if data is None:
        return {}
    if not isinstance(data, dict):
        problems.append(
            source.problem((), "connections.yaml maps connection names to their settings")
        )
        return {}
    out: dict[str, Connection] = {}
    for name, raw in data.items():
        resolved = _resolve_env(raw, (name,), source, env, problems)
        model, found = validate(Connection, resolved, source, (name,))
        problems.extend(found)
        if model is None:
            out[name] = None  # type: ignore[assignment] # known name, already reported
        else:
            problems.extend(_check_urls(model, name, source))
            out[name] = model
    return out


def _resolve_env(value: Any, loc: Loc, source: Source, env: Any, problems: list[Problem]) -> Any:
    """Put ``{env: NAME}`` values in place; leave secrets as references, checking they exist."""
    if isinstance(value, dict):
        key = loc[-1] if loc else None
        is_ref = set(value) <= {"env", "file", "default"} and ("env" in value or "file" in value)
        in_auth = len(loc) >= 3 and loc[-2] == "auth"
        if is_ref and not all(isinstance(value.get(k, ""), str) for k in ("env", "file")):
            problems.append(
                source.problem(loc, "write {env: NAME} or {file: PATH}, with a name or a path")
            )
            return UNSET_ENV.format("bad")
        if is_ref and in_auth and (key in SECRET_KEYS or key in MAYBE_SECRET_KEYS):
            _check_secret(value, loc, source, env, problems)
            return value
        if is_ref and "env" in value and "file" not in value:
            name = value["env"]
            if name in env:
                return env[name]
            if "default" in value:
                return value["default"]
            problems.append(source.problem(loc, f"environment variable '{name}' is not set"))
            return UNSET_ENV.format(name)
        return {k: _resolve_env(v, (*loc, k), source, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*loc, i), source, env, problems) for i, v in enumerate(value)]
    if isinstance(value, str) and len(loc) >= 3 and loc[-2] == "auth" and loc[-1] in SECRET_KEYS:
        problems.append(
            source.problem(
                loc,
                f"'{loc[-1]}' is a secret: write {{env: NAME}} or {{file: PATH}}, never the value",
            )
        )
        return {"env": "__literal__"}
    return value


def _check_secret(
    ref: dict[str, Any], loc: Loc, source: Source, env: Any, problems: list[Problem]
) -> None:
    if "default" in ref:
        problems.append(
            source.problem((*loc, "default"), "a secret has no default: set the variable", key=True)
        )
    if "env" in ref and not env.get(ref["env"]):
        state = "is empty" if ref["env"] in env else "is not set"
        problems.append(source.problem(loc, f"environment variable '{ref['env']}' {state}"))
    if "file" in ref:
        file = Path(ref["file"])
        if not file.is_absolute():
            file = Path(source.path).parent / file
        if not file.is_file():
            problems.append(source.problem(loc, f"secret file '{ref['file']}' not found"))


def _check_urls(conn: Connection, name: str, source: Source) -> list[Problem]:
    from csflow.engine.urls import url_problem

    problems = []
    for key in ("base_url", "url", "wsdl"):
        value = getattr(conn, key)
        if (
            value is None
            or (key == "wsdl" and "://" not in value)
            or value.startswith(UNSET_ENV[:20])
        ):
            continue
        message = url_problem(value, allow_insecure_http=conn.allow_insecure_http)
        if message:
            problems.append(source.problem((name, key), message))
    auth_url = getattr(conn.auth, "token_url", None)
    if auth_url:
        message = url_problem(auth_url, allow_insecure_http=conn.allow_insecure_http)
        if message:
            problems.append(source.problem((name, "auth", "token_url"), message))
    return problems


def unknown_flow_message(name: str, flows: dict[str, FlowPlan]) -> str:
    return f"unknown flow '{name}'{did_you_mean(name, flows)}"
