"""Loading ``channels.yaml``: every problem located, secrets resolved, tenants' projects loaded.

``load_channels(project_root, environ)`` returns ``(channels, problems)``; the server starts
only when ``problems`` is empty. ``csflow validate`` can call it to check channels.yaml too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csflow.adapters.shared import SharedState, open_shared_state
from csflow.engine.errors import Problem, ProjectError
from csflow.engine.loader import MAYBE_SECRET_KEYS, SECRET_KEYS
from csflow.engine.model import NAME_RE, SecretRef
from csflow.engine.source import Loc, Source, display_path, load_yaml
from csflow.engine.suggest import did_you_mean
from csflow.engine.validation import validate
from csflow.serve.models import (
    CHANNEL_TYPES,
    ChannelModel,
    CoffieldChannel,
    ConsoleChannel,
    ConversationChannel,
    EnvRef,
    GenericChannel,
    OrderLookupChannel,
    TenantSpec,
    ZipchatChannel,
)
from csflow.serve.mount import Mount
from csflow.serve.runtime import KeyRing
from csflow.serve.templates import TemplateCompiler

if TYPE_CHECKING:
    from csflow import Project
    from csflow.serve.endpoint import Endpoint

FILE_NAME = "channels.yaml"
DEFAULT_TENANT = "default"  # the served project itself, in logs and messages


@dataclass
class Tenant:
    name: str
    project: Project

    def label(self) -> str:
        return "" if self.name == DEFAULT_TENANT else f" (tenant '{self.name}')"


@dataclass
class Channels:
    """What the server serves: endpoints by channel name, and the tenants' projects."""

    root: Path
    shared: SharedState  # what every server shares: Coffield's replay window (CSFLOW_REDIS)
    endpoints: dict[str, Endpoint[Any]] = field(default_factory=dict)
    mounts: dict[str, Mount] = field(default_factory=dict)  # whole apps under a path: the console
    tenants: dict[str, Tenant] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)  # values to redact from any log line
    # Variables not set, whose channels.yaml default (a demo key) was taken instead.
    demo_keys: list[str] = field(default_factory=list)

    def projects(self) -> list[Project]:
        unique = {id(t.project): t.project for t in self.tenants.values()}
        return list(unique.values())

    async def aclose(self) -> None:
        for project in self.projects():
            await project.aclose()


class LoadContext:
    """What a platform module's ``build`` needs: the file, its problems, tenants, secrets."""

    def __init__(
        self,
        root: Path,
        source: Source,
        environ: Mapping[str, str],
        problems: list[Problem],
        shared: SharedState,
    ) -> None:
        self.root = root
        self.shared = shared
        self.source = source
        self.environ = environ
        self.problems = problems
        self.tenants: dict[str, Tenant] = {}
        self.secrets: list[str] = []
        self.demo_keys: list[str] = []
        self.templates = TemplateCompiler(source, problems)
        self.store: Any = None

    def problem(self, loc: Loc, message: str, *, key: bool = False) -> None:
        self.problems.append(self.source.problem(loc, message, key=key))

    def secret(self, ref: SecretRef, loc: Loc) -> bytes | None:
        """The secret's value, or None (and a problem) when it is missing or empty."""
        if ref.env is not None:
            value = self.environ.get(ref.env, "")
            default = getattr(ref, "default", None)
            if not value and default and ref.env not in self.environ:
                value = default  # a demo key: csflow serve refuses it without --demo-keys
                if ref.env not in self.demo_keys:
                    self.demo_keys.append(ref.env)
            if not value:
                state = "is empty" if ref.env in self.environ else "is not set"
                self.problem(loc, f"environment variable '{ref.env}' {state}")
                return None
        else:
            path = Path(ref.file or "")
            path = path if path.is_absolute() else self.root / path
            try:
                value = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                self.problem(loc, f"cannot read secret file '{ref.file}': {exc}")
                return None
            if not value:
                self.problem(loc, f"secret file '{ref.file}' is empty")
                return None
        self.secrets.append(value)
        return value.encode()

    def tenant(self, name: str, loc: Loc) -> Tenant | None:
        found = self.tenants.get(name)
        if found is None:
            known = [t for t in self.tenants if t != DEFAULT_TENANT]
            self.problem(
                loc,
                f"unknown tenant '{name}'{did_you_mean(name, known)}: tenants are defined "
                "under the top-level 'tenants:'",
                key=True,
            )
        return found

    def flow_in(self, tenant: Tenant, flow: str, loc: Loc) -> Any | None:
        """The flow's compiled plan in the tenant's project, or None and a problem."""
        plan = tenant.project.flows.get(flow)
        if plan is None:
            hint = did_you_mean(flow, tenant.project.flows)
            self.problem(loc, f"unknown flow '{flow}'{tenant.label()}{hint}")
        return plan

    def check_inputs(self, plan: Any, inputs: Mapping[str, Any], loc: Loc, label: str) -> None:
        for name in inputs:
            if name not in plan.inputs:
                hint = did_you_mean(name, plan.inputs)
                self.problem(
                    (*loc, name), f"flow '{plan.name}'{label} has no input '{name}'{hint}", key=True
                )
        for name, spec in plan.inputs.items():
            if spec.required and spec.default is None and name not in inputs:
                self.problem(loc, f"flow '{plan.name}'{label} needs input '{name}'", key=True)

    def served_flow(
        self, flow: str, served: Mapping[str, Tenant], inputs: Mapping[str, Any], loc: Loc
    ) -> dict[str, list[str]]:
        """Checks ``flow`` and its inputs in every served tenant's project (``loc`` is where
        ``flow:`` stands); returns each one's declared outputs, for the templates' checks."""
        outputs: dict[str, list[str]] = {}
        for tenant in served.values():
            plan = self.flow_in(tenant, flow, (*loc, "flow"))
            if plan is None:
                continue
            self.check_inputs(plan, inputs, (*loc, "inputs"), tenant.label())
            outputs[f"{flow}{tenant.label()}"] = list(plan.outputs)
        return outputs

    def key_ring(
        self, channel: str, default: Sequence[tuple[SecretRef, Loc]], tenants: Mapping[str, Any]
    ) -> tuple[KeyRing, dict[str, Tenant]]:
        """The channel's keys, each selecting a tenant, and the tenants it serves.

        ``default`` are the channel's own keys (the served project); ``tenants`` maps a tenant
        name to its entry, whose ``api_key`` or ``api_keys`` are its keys on this channel.
        """
        ring = KeyRing()
        served: dict[str, Tenant] = {}
        wanted: list[tuple[str, SecretRef, Loc]] = []
        # Secrets are checked even when the project did not load: one pass finds everything.
        wanted += [(DEFAULT_TENANT, ref, loc) for ref, loc in default]
        if default and DEFAULT_TENANT in self.tenants:
            served[DEFAULT_TENANT] = self.tenants[DEFAULT_TENANT]
        for name, entry in tenants.items():
            tenant = self.tenant(name, (channel, "tenants", name))
            if tenant is None:
                continue
            served[name] = tenant
            keys = getattr(entry, "api_keys", None) or [entry.api_key]
            attr = "api_keys" if hasattr(entry, "api_keys") else "api_key"
            for i, ref in enumerate(keys):
                loc: Loc = (
                    (channel, "tenants", name, attr, i)
                    if attr == "api_keys"
                    else (channel, "tenants", name, attr)
                )
                wanted.append((name, ref, loc))
        for name, ref, loc in wanted:
            value = self.secret(ref, loc)
            if value is None or name not in served:
                continue
            if not ring.add(value, name):
                self.problem(
                    loc, "this key is already a key of this channel: each key is one tenant's"
                )
        return ring, served


def platforms() -> dict[type[ChannelModel], type[Endpoint[Any]] | type[Mount]]:
    """The one table of platforms: each channel model of channels.yaml and its endpoint type.

    A new platform is a module with an ``Endpoint`` subclass, its model in models.py, and a
    line here (and its part of /openapi.json). Imported late: the platform modules import this
    one for ``LoadContext``.
    """
    from csflow.serve.coffield import CoffieldEndpoint
    from csflow.serve.console.channel import ConsoleMount
    from csflow.serve.conversation import ConversationEndpoint
    from csflow.serve.generic import GenericEndpoint
    from csflow.serve.order_lookup import OrderLookupEndpoint
    from csflow.serve.zipchat import ZipchatEndpoint

    return {
        GenericChannel: GenericEndpoint,
        ZipchatChannel: ZipchatEndpoint,
        CoffieldChannel: CoffieldEndpoint,
        OrderLookupChannel: OrderLookupEndpoint,
        ConversationChannel: ConversationEndpoint,
        ConsoleChannel: ConsoleMount,
    }


def load_channels(
    project_root: Path | str,
    environ: Mapping[str, str] | None = None,
    *,
    project: Project | None = None,
    store: Any = None,
) -> tuple[Channels, list[Problem]]:
    """Read and check ``channels.yaml``; problems are ``PATH:LINE:COL: message``, sorted.

    ``project``, when given, is the project already loaded from ``project_root`` (so that
    ``csflow validate`` does not load it twice). Use the channels only when there are no
    problems. A project without channels.yaml has no channels and no problems. ``store`` is
    passed to ``Project.load`` (``csflow serve`` records the runs it serves).
    """
    root = Path(project_root)
    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    channels = Channels(root, open_shared_state(env))
    path = root / FILE_NAME
    if not path.is_file():
        return channels, problems
    data, source = load_yaml(path, problems)
    if data is None:
        return channels, sorted(set(problems))
    if not isinstance(data, dict):
        problems.append(source.problem((), "channels.yaml maps channel names to their settings"))
        return channels, sorted(set(problems))
    ctx = LoadContext(root, source, env, problems, channels.shared)
    ctx.store = store
    _load_tenants(ctx, data.get("tenants"), project)
    channels.tenants = ctx.tenants
    table = platforms()
    paths: dict[str, str] = {}
    for name, raw in data.items():
        if name == "tenants":
            continue
        model = _channel_model(ctx, name, raw)
        if model is None:
            continue
        if model.path in paths:
            ctx.problem(
                (name, "path"), f"path {model.path} is already served by '{paths[model.path]}'"
            )
            continue
        paths[model.path] = name
        built = table[type(model)].build(name, model, ctx)
        if isinstance(built, Mount):
            channels.mounts[name] = built
        elif built is not None:
            channels.endpoints[name] = built
    _check_mounts(ctx, channels)
    channels.secrets = ctx.secrets
    channels.demo_keys = ctx.demo_keys
    return channels, sorted(set(problems))


def _check_mounts(ctx: LoadContext, channels: Channels) -> None:
    """A mount owns every path under its own: no other channel may sit there."""
    for mount in channels.mounts.values():
        for name, endpoint in channels.endpoints.items():
            if mount.owns(endpoint.path):
                ctx.problem(
                    (name, "path"),
                    f"path {endpoint.path} is under {mount.path}, which '{mount.name}' serves",
                )


def _channel_model(ctx: LoadContext, name: str, raw: Any) -> Any | None:
    if not isinstance(raw, dict):
        ctx.problem((name,), f"channel '{name}' is a mapping with type, path and its settings")
        return None
    kind = raw.get("type")
    if kind is None:
        ctx.problem((name,), f"missing key 'type' (one of {', '.join(CHANNEL_TYPES)})", key=True)
        return None
    if kind not in CHANNEL_TYPES:
        hint = did_you_mean(str(kind), CHANNEL_TYPES)
        ctx.problem(
            (name, "type"),
            f"unknown channel type '{kind}'{hint}: one of {', '.join(CHANNEL_TYPES)}",
        )
        return None
    model, found = validate(CHANNEL_TYPES[kind], raw, ctx.source, (name,))
    ctx.problems.extend(found)
    return model


def _load_tenants(ctx: LoadContext, raw: Any, project: Project | None) -> None:
    default = project if project is not None else _load_project(ctx, ctx.root, ctx.environ, ())
    if default is not None:
        ctx.tenants[DEFAULT_TENANT] = Tenant(DEFAULT_TENANT, default)
    if raw is None:
        return
    if not isinstance(raw, dict):
        ctx.problem(("tenants",), "tenants maps tenant names to {project: DIR, env: {...}}")
        return
    for name, spec_raw in raw.items():
        loc: Loc = ("tenants", name)
        if name == DEFAULT_TENANT or not re.match(NAME_RE, str(name)):
            ctx.problem(
                loc, f"a tenant name is [a-z][a-z0-9_]* and not '{DEFAULT_TENANT}'", key=True
            )
            continue
        spec, found = validate(TenantSpec, spec_raw or {}, ctx.source, loc)
        ctx.problems.extend(found)
        if spec is None:
            continue
        folder = ctx.root / spec.project if spec.project else ctx.root
        if not folder.is_dir():
            ctx.problem((*loc, "project"), f"project folder '{spec.project}' not found")
            continue
        secret_vars = _secret_variables(folder)
        env = dict(ctx.environ)
        for var, value in spec.env.items():
            if isinstance(value, EnvRef):
                if value.env not in ctx.environ:
                    ctx.problem(
                        (*loc, "env", var), f"environment variable '{value.env}' is not set"
                    )
                    continue
                env[var] = ctx.environ[value.env]
                ctx.secrets.append(env[var])  # it may be a key: never in a log line
            elif var in secret_vars:
                ctx.problem(
                    (*loc, "env", var),
                    f"'{var}' holds a secret of connections.yaml: write {{env: NAME}}, "
                    "never the value",
                )
            else:
                env[var] = value
        if not spec.env and folder.resolve() == ctx.root.resolve() and default is not None:
            loaded: Project | None = default  # the same project: one load, one set of clients
        else:
            loaded = _load_project(ctx, folder, env, loc, tenant=name)
        if loaded is not None:
            ctx.tenants[name] = Tenant(name, loaded)


def _load_project(
    ctx: LoadContext, folder: Path, env: Mapping[str, str], loc: Loc, tenant: str | None = None
) -> Project | None:
    from csflow import Project as project

    try:
        return project.load(folder, environ=env, store=ctx.store)
    except ProjectError as exc:
        suffix = f" (tenant '{tenant}')" if tenant else ""
        for p in exc.problems:
            ctx.problems.append(Problem(p.path, p.line, p.column, p.message + suffix))
        if tenant:
            where = display_path(folder)
            ctx.problem(loc, f"tenant '{tenant}': its project {where} did not load", key=True)
        return None


# The loader's one list: every auth key whose {env} value is (or may be) a credential.
_SECRET_KEYS = SECRET_KEYS | MAYBE_SECRET_KEYS


def _secret_variables(folder: Path) -> set[str]:
    """Variables that connections.yaml reads secrets from (``auth: {token: {env: X}}``)."""
    path = folder / "connections.yaml"
    if not path.is_file():
        return set()
    data, _ = load_yaml(path, [])  # its problems are the project load's to report
    found: set[str] = set()
    for conn in (data or {}).values() if isinstance(data, dict) else ():
        auth = conn.get("auth") if isinstance(conn, dict) else None
        for key, ref in (auth or {}).items() if isinstance(auth, dict) else ():
            if key in _SECRET_KEYS and isinstance(ref, dict) and isinstance(ref.get("env"), str):
                found.add(ref["env"])
    return found
