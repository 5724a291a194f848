"""The typed shape of ``channels.yaml`` (spec §9), validated with engine.validation.

The top level maps channel names to their settings. One name is reserved: ``tenants``,
the tenants that share the server (see docs/decisions.md, "Channels").
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator

from csflow.engine.model import NAME_RE, Duration, SecretRef, Strict

# What a chat platform waits for an answer before it tells the customer it could not check.
ZIPCHAT_DEADLINE = 5.0  # seed 001: "All requests have a 5 second timeout rule"
COFFIELD_DEADLINE = 8.0  # seed 003: "an 8-second timeout (configurable)"
DEFAULT_DEADLINE = 8.0  # generic and order_lookup: the engine's own default run deadline

RESERVED_PATHS = frozenset({"/healthz", "/openapi.json"})


def _no_literal(value: Any) -> Any:
    # A literal key in a file that is committed is a leaked key: refuse it at load.
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        raise ValueError("a secret: write {env: NAME} or {file: PATH}, never the value")
    return value


class KeyRef(SecretRef):
    """A channel's key or secret: ``{env: NAME}`` or ``{file: PATH}``, and for a demo project
    ``{env: NAME, default: VALUE}``: the value when NAME is not set. ``csflow serve`` refuses
    to use such a default unless it is given ``--demo-keys`` (docs/decisions.md)."""

    default: str | None = None

    @model_validator(mode="after")
    def _default_with_env(self) -> KeyRef:
        if self.default is not None and self.env is None:
            raise ValueError("default: goes with env: ({env: NAME, default: DEMO_VALUE})")
        return self


Secret = Annotated[KeyRef, BeforeValidator(_no_literal)]


class _Channel(Strict):
    path: str
    description: str | None = None
    timeout: Duration | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or value != value.strip() or "{" in value or "?" in value:
            raise ValueError("a path starts with '/' and has no spaces, '{' or '?'")
        if len(value) > 1 and value.endswith("/"):
            raise ValueError("a path does not end with '/'")
        if value in RESERVED_PATHS:
            raise ValueError(f"{value} is served by csflow itself")
        return value


class GenericKeys(Strict):
    api_keys: list[Secret] = Field(min_length=1)


class GenericChannel(_Channel):
    """``POST {path}/flows/{name}/runs {"inputs": {...}}`` -> the RunResult JSON of §8."""

    type: Literal["generic"]
    api_keys: list[Secret] = Field(default_factory=list)
    flows: list[Annotated[str, Field(pattern=NAME_RE)]] | None = None  # default: every flow
    tenants: dict[str, GenericKeys] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keyed(self) -> GenericChannel:
        if not self.api_keys and not self.tenants:
            raise ValueError("a generic channel needs api_keys (or tenants with their keys)")
        return self


class KeyOnly(Strict):
    api_key: Secret


class ZipchatChannel(_Channel):
    """Seed 001: GET with x-api-key, order_id and customer_email."""

    type: Literal["zipchat"]
    api_key: Secret | None = None
    flow: str = Field(pattern=NAME_RE)
    inputs: dict[str, Any] = Field(default_factory=dict)
    found: str | None = None
    context: str = "{{ reply }}"
    tracking_url: str | None = None
    # The context when the run fails or overruns: a template over request and reply.
    unavailable: str | None = None
    tenants: dict[str, KeyOnly] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keyed(self) -> ZipchatChannel:
        if self.api_key is None and not self.tenants:
            raise ValueError("a zipchat channel needs api_key (or tenants with their keys)")
        if self.timeout is not None and self.timeout > ZIPCHAT_DEADLINE:
            raise ValueError(f"timeout: Zipchat waits {ZIPCHAT_DEADLINE:g}s at most")
        return self


class CoffieldKind(Strict):
    flow: str = Field(pattern=NAME_RE)
    inputs: dict[str, Any] = Field(default_factory=dict)
    # Each may override the channel's own; a project lookup answers other fields than an order.
    found: str | None = None
    status: str | None = None
    summary: str | None = None
    details: dict[str, Any] | None = None


TenantId = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]


class CoffieldTenant(Strict):
    tenant_id: TenantId
    signing_secret: Secret


class CoffieldChannel(_Channel):
    """Seed 003: HMAC-signed POST {kind, reference, context, tenant_id}."""

    type: Literal["coffield"]
    signing_secret: Secret | None = None
    tenant_id: TenantId | None = None  # pins the project's own tenant to one Coffield tenant
    max_age: Duration = 300.0
    kinds: dict[str, CoffieldKind] = Field(min_length=1)
    found: str | None = None
    status: str = "{{ outputs.order_status }}"
    summary: str = "{{ reply }}"
    details: dict[str, Any] = Field(default_factory=dict)
    unavailable: str | None = None  # the receiver_error message; a template
    tenants: dict[str, CoffieldTenant] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keyed(self) -> CoffieldChannel:
        if self.signing_secret is None and not self.tenants:
            raise ValueError(
                "a coffield channel needs signing_secret (or tenants with their secrets)"
            )
        return self


class OrderLookupChannel(_Channel):
    """Seed 000: email, order_id, phone or ref_id -> always an array of orders."""

    type: Literal["order_lookup"]
    api_key: Secret | None = None
    flow: str = Field(pattern=NAME_RE)
    inputs: dict[str, Any] = Field(
        default_factory=lambda: {
            name: f"{{{{ request.{name} }}}}" for name in ("email", "order_id", "phone", "ref_id")
        }
    )
    orders: str = "{{ outputs.orders }}"
    tenants: dict[str, KeyOnly] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _keyed(self) -> OrderLookupChannel:
        if self.api_key is None and not self.tenants:
            raise ValueError("an order_lookup channel needs api_key (or tenants with their keys)")
        return self


class ConversationChannel(_Channel):
    """§12: ``POST {path}/{conversation_id}/messages {"text": ..., "context": {...}}``."""

    type: Literal["conversation"]
    api_keys: list[Secret] = Field(min_length=1)
    # The flow every conversation starts; without it, intents.yaml picks one per message.
    flow: str | None = Field(default=None, pattern=NAME_RE)


USER_RE = r"^[a-z][a-z0-9_.-]{0,63}$"


class ConsoleChannel(_Channel):
    """§13: the web console under ``path``, for ``users`` (name: password, a secret)."""

    type: Literal["console"]
    users: dict[Annotated[str, Field(pattern=USER_RE)], Secret] = Field(min_length=1)

    @model_validator(mode="after")
    def _own_path(self) -> ConsoleChannel:
        if self.path == "/":
            raise ValueError("path: the console needs a path of its own, such as /console")
        if self.timeout is not None:
            raise ValueError("timeout: the console answers people, not a platform's deadline")
        return self


ChannelModel = (
    GenericChannel
    | ZipchatChannel
    | CoffieldChannel
    | OrderLookupChannel
    | ConversationChannel
    | ConsoleChannel
)
CHANNEL_TYPES: dict[str, type[ChannelModel]] = {
    "generic": GenericChannel,
    "zipchat": ZipchatChannel,
    "coffield": CoffieldChannel,
    "order_lookup": OrderLookupChannel,
    "conversation": ConversationChannel,
    "console": ConsoleChannel,
}


def _env_or_text(value: Any) -> Any:
    return value if isinstance(value, dict) else str(value) if value is not None else value


class EnvRef(Strict):
    env: str


class TenantSpec(Strict):
    """A tenant: its own project folder, and/or environment values for its connections."""

    description: str | None = None
    project: str | None = None  # relative to the folder of channels.yaml
    env: dict[str, Annotated[str | EnvRef, BeforeValidator(_env_or_text)]] = Field(
        default_factory=dict
    )


def channels_schema() -> dict[str, Any]:
    """The JSON Schema of channels.yaml (``csflow schema channels``), from the models above."""
    from pydantic import TypeAdapter

    channel = TypeAdapter(Annotated[ChannelModel, Field(discriminator="type")]).json_schema(
        by_alias=True
    )
    tenants = TypeAdapter(dict[str, TenantSpec]).json_schema(by_alias=True)
    defs = {**channel.pop("$defs", {}), **tenants.pop("$defs", {})}
    defs["Channel"] = channel
    return {
        "type": "object",
        "properties": {"tenants": tenants},
        "additionalProperties": {"$ref": "#/$defs/Channel"},
        "$defs": defs,
    }
