"""Typed models of flow and connection files: what validates them and what `csflow schema` prints.

Field names that are Python keywords (``if``, ``with``, ``as``, ``return``, ``from``) carry
an alias; the YAML always uses the alias.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

TYPE_NAMES = ("string", "integer", "number", "boolean", "date", "datetime", "list", "object", "any")
TypeName = Literal[
    "string", "integer", "number", "boolean", "date", "datetime", "list", "object", "any"
]

NAME_RE = r"^[a-z][a-z0-9_]*$"
ACTION_NAME_RE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_duration(value: Any) -> Any:
    """``500ms``, ``3s``, ``2m`` or a bare number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is written 500ms, 3s, 2m or a number of seconds")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            number, unit = float(m.group(1)), m.group(2) or "s"
            return number * {"ms": 0.001, "s": 1.0, "m": 60.0}[unit]
    raise ValueError(f"{value!r} is not a duration: write 500ms, 3s, 2m or a number of seconds")


# The JSON Schema (csflow schema) shows what authors may write, not what it becomes.
DurationText = Annotated[str, Field(pattern=r"^\s*\d+(\.\d+)?\s*(ms|s|m)?\s*$")]
Duration = Annotated[
    float, BeforeValidator(parse_duration, json_schema_input_type=float | DurationText)
]


class _VerbMarker:
    """Marks a field of ``StepSpec`` as a verb (``Annotated[..., VERB]``): the one list of verbs."""


VERB = _VerbMarker()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


def _bare_type(value: Any) -> Any:
    return {"type": value} if isinstance(value, str) else value


class InputSpec(Strict):
    type: TypeName = "string"
    required: bool = True
    default: Any = None
    format: Literal["email", "phone", "date", "uri"] | None = None
    enum: list[Any] | None = None
    description: str | None = None


class OutputSpec(Strict):
    type: TypeName = "any"
    required: bool = False
    enum: list[Any] | None = None
    description: str | None = None


InputDecl = Annotated[
    InputSpec, BeforeValidator(_bare_type, json_schema_input_type=InputSpec | TypeName)
]
OutputDecl = Annotated[
    OutputSpec, BeforeValidator(_bare_type, json_schema_input_type=OutputSpec | TypeName)
]


# An error kind, a status code (429) or "5xx"; YAML reads a bare 429 as a number.
RetryOn = Annotated[
    str,
    BeforeValidator(
        lambda v: str(v) if isinstance(v, int) else v, json_schema_input_type=str | int
    ),
]


class RetrySpec(Strict):
    attempts: int = Field(default=1, ge=1, le=10)
    backoff: Duration = 0.2
    max_backoff: Duration = 5.0
    on: list[RetryOn] = Field(default_factory=lambda: ["connect", "timeout", "429", "5xx"])

    @model_validator(mode="after")
    def _known(self) -> RetrySpec:
        from csflow.engine.errors import ERROR_KINDS

        for item in self.on:
            if not (item in ERROR_KINDS or item == "5xx" or (item.isdigit() and len(item) == 3)):
                raise ValueError(
                    f"retry 'on' takes error kinds, status codes and 5xx, not {item!r}"
                )
        return self


class FieldSpec(Strict):
    path: str | None = None
    xpath: str | None = None
    type: TypeName | None = None
    map: dict[str, Any] | None = None
    strict: bool = False
    default: Any = None
    required: bool = False

    @model_validator(mode="after")
    def _one_language(self) -> FieldSpec:
        if self.path is not None and self.xpath is not None:
            raise ValueError("give either 'path' or 'xpath', not both")
        return self


FieldDecl = str | FieldSpec


class ExtractSpec(Strict):
    from_: Any = Field(default=None, alias="from")
    fields: dict[str, FieldDecl]


def _extract_form(value: Any) -> Any:
    # The bare form `extract: {NAME: SPEC}` means fields over the step's own data.
    if isinstance(value, dict) and "fields" not in value:
        return {"fields": value}
    return value


ExtractDecl = Annotated[
    ExtractSpec,
    BeforeValidator(_extract_form, json_schema_input_type=ExtractSpec | dict[str, FieldDecl]),
]


class SwitchCase(Strict):
    if_: str | None = Field(default=None, alias="if")
    next: str


class HandoffSpec(Strict):
    """``handoff: {reason: NAME, note: TEMPLATE}`` (§12): why a person takes over, and what
    they should know so that they do not ask the customer again."""

    reason: str = Field(pattern=NAME_RE)
    note: str | None = None


class StepSpec(Strict):
    """One step: at most one verb, plus modifiers (§3)."""

    id: str | None = Field(default=None, pattern=NAME_RE)
    description: str | None = None
    if_: str | None = Field(default=None, alias="if")
    next: str | None = None
    on_error: str | None = None
    timeout: Duration | None = None
    retry: RetrySpec | None = None
    idempotency_key: str | None = None
    # verbs (each marked VERB; `extract` is also a modifier of call and flow steps)
    call: Annotated[str | None, VERB] = Field(default=None, pattern=ACTION_NAME_RE)
    flow: Annotated[str | None, VERB] = Field(default=None, pattern=NAME_RE)
    with_: dict[str, Any] | None = Field(default=None, alias="with")
    as_: str | None = Field(default=None, alias="as", pattern=NAME_RE)
    set: Annotated[dict[str, Any] | None, VERB] = None
    extract: Annotated[ExtractDecl | None, VERB] = None
    switch: Annotated[list[SwitchCase] | None, VERB] = None
    reply: Annotated[str | None, VERB] = None
    return_: Annotated[dict[str, Any] | None, VERB] = Field(default=None, alias="return")
    fail: Annotated[str | None, VERB] = None
    ask: Annotated[str | None, VERB] = None
    entity: str | None = Field(default=None, pattern=NAME_RE)
    into: str | None = Field(default=None, pattern=NAME_RE)
    reprompt: str | None = None
    attempts: int | None = Field(default=None, ge=1, le=20)
    handoff: Annotated[HandoffSpec | None, VERB] = None

    def verbs(self) -> list[str]:
        """The verbs this step has, by their YAML keys (a valid step has at most one)."""
        found = [key for key, attr in VERB_FIELDS.items() if getattr(self, attr) is not None]
        if "extract" in found and ("call" in found or "flow" in found):
            found.remove("extract")  # here it is the call's modifier
        return found


# YAML key -> attribute, for every field marked VERB, in the order the model declares them.
VERB_FIELDS: dict[str, str] = {
    (info.alias or name): name
    for name, info in StepSpec.model_fields.items()
    if VERB in info.metadata
}


class Flow(Strict):
    name: str = Field(pattern=NAME_RE)
    description: str | None = None
    inputs: dict[str, InputDecl] = Field(default_factory=dict)
    outputs: dict[str, OutputDecl] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(min_length=1)


# ---------------------------------------------------------------- connections


class SecretRef(Strict):
    """Where a secret comes from: ``{env: NAME}`` or ``{file: PATH}``, never a literal."""

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is {env: NAME} or {file: PATH}")
        return self


class NoAuth(Strict):
    type: Literal["none"]


class BasicAuth(Strict):
    type: Literal["basic"]
    username: str | SecretRef
    password: SecretRef


class BearerAuth(Strict):
    type: Literal["bearer"]
    token: SecretRef


class ApiKeyAuth(Strict):
    type: Literal["api_key"]
    key: SecretRef
    header: str | None = None
    query: str | None = None

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeyAuth:
        if (self.header is None) == (self.query is None):
            raise ValueError("api_key auth needs exactly one of 'header: NAME' or 'query: NAME'")
        return self


class OAuth2ClientCredentials(Strict):
    type: Literal["oauth2_client_credentials"]
    token_url: str
    client_id: str | SecretRef
    client_secret: SecretRef
    scope: str | None = None
    audience: str | None = None


class OAuth2RefreshToken(Strict):
    type: Literal["oauth2_refresh_token"]
    token_url: str
    refresh_token: SecretRef
    client_id: str | SecretRef
    client_secret: SecretRef | None = None
    scope: str | None = None


class HmacAuth(Strict):
    type: Literal["hmac"]
    secret: SecretRef
    header: str
    prefix: str = ""
    timestamp_header: str | None = None


class CustomAuth(Strict):
    type: Literal["custom"]
    function: str = Field(pattern=r"^[\w.]+:[\w.]+$")


Auth = Annotated[
    NoAuth
    | BasicAuth
    | BearerAuth
    | ApiKeyAuth
    | OAuth2ClientCredentials
    | OAuth2RefreshToken
    | HmacAuth
    | CustomAuth,
    Field(discriminator="type"),
]


class RateLimit(Strict):
    """``rate_limit: {requests: 10, per: 1s}``: at most ``requests`` at once, then one every
    ``per / requests``, shared by every process (``CSFLOW_REDIS``) or within this one."""

    requests: int = Field(ge=1, le=1_000_000)
    per: Annotated[Duration, Field(gt=0, le=86_400)] = 1.0


class Connection(Strict):
    type: Literal["rest", "soap", "graphql"]
    base_url: str | None = None
    url: str | None = None
    wsdl: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    namespaces: dict[str, str] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=lambda: NoAuth(type="none"))
    headers: dict[str, str] = Field(default_factory=dict)
    timeout: Duration = 10.0
    retry: RetrySpec | None = None
    allow_insecure_http: bool = False
    follow_redirects: bool = False
    max_connections: int = Field(default=100, ge=1)
    max_response_bytes: int = Field(default=5_000_000, ge=1)
    read_only: list[str] = Field(default_factory=list)
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _where(self) -> Connection:
        need = {"rest": "base_url", "soap": "wsdl", "graphql": "url"}[self.type]
        if getattr(self, need) is None:
            raise ValueError(f"a {self.type} connection needs '{need}'")
        return self


# ---------------------------------------------------------------- flow tests (§11)


class MockSpec(Strict):
    """One mocked call: an HTTP answer for `method` + `path`, or an operation's data."""

    connection: str
    method: str | None = None
    path: str | None = None
    query: dict[str, Any] | None = None
    operation: str | None = None
    status: int = Field(default=200, ge=100, le=599)
    json_: Any = Field(default=None, alias="json")
    body: str | None = None
    xml: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    data: Any = None
    error: Literal["timeout", "connect"] | None = None
    repeat: bool = False

    @model_validator(mode="after")
    def _what(self) -> MockSpec:
        if self.operation is None and self.path is None:
            raise ValueError(
                "a mock gives 'method' and 'path' (REST) or 'operation' (SOAP, GraphQL)"
            )
        if self.operation is not None and self.path is not None:
            raise ValueError("a mock gives either 'path' or 'operation', not both")
        return self


class TextExpectation(Strict):
    contains: str | None = None
    matches: str | None = None


class ErrorExpectation(Strict):
    kind: str | None = None
    message: str | None = None


class Expectation(Strict):
    status: Literal["completed", "failed", "waiting", "handoff", "expired"] | None = None
    outputs: dict[str, Any] | None = None
    reply: str | TextExpectation | None = None
    path: list[str] | None = None
    error: ErrorExpectation | None = None


class HandoffExpectation(Strict):
    """A turn's handoff: only the keys given are compared; ``note`` as a reply is."""

    reason: str | None = None
    note: str | TextExpectation | None = None


RunStatus = Literal["completed", "failed", "waiting", "handoff", "expired"]


class TurnExpectation(Strict):
    """What must hold after one message (§12). ``intent: null`` (given) means not
    understood; left out, the intent is not compared."""

    intent: str | None = None
    status: RunStatus | None = None
    outputs: dict[str, Any] | None = None
    reply: str | TextExpectation | None = None
    path: list[str] | None = None
    handoff: HandoffExpectation | None = None
    error: ErrorExpectation | None = None


def _message_text(value: Any) -> Any:
    # YAML reads `say: no` as false and `say: 1007` as a number; turning them back into
    # text would guess (`no` or `No`? `1007` or `01007`?), so the author quotes them.
    if isinstance(value, bool | int | float):
        raise ValueError(
            f"a message is text, and YAML read this one as {str(value).lower()}:"
            ' put it in quotes (say: "no", say: "1007")'
        )
    return value


class TurnSpec(Strict):
    """One message of a case's conversation, and what its answer must be."""

    say: Annotated[str, BeforeValidator(_message_text)] = Field(min_length=1)
    # The customer waits this long before sending it: the clock moves on (expiry, §12).
    after: Duration | None = None
    expect: TurnExpectation = Field(default_factory=TurnExpectation)


class TestCase(Strict):
    __test__ = False  # not a pytest class

    name: str
    # What the flow sees as `now` (ISO 8601; UTC when no offset): cases about dates stay true.
    now: dt.datetime | None = None
    # Run as `csflow run --dry-run` does: the writes are kept back, so they need no mock.
    dry_run: bool = False
    inputs: dict[str, Any] = Field(default_factory=dict)
    mocks: list[MockSpec] = Field(default_factory=list)
    expect: Expectation = Field(default_factory=Expectation)
    # A conversation instead of one run: each turn's message and what it must answer.
    turns: list[TurnSpec] | None = Field(default=None, min_length=1)


class FlowTestFile(Strict):
    """A test file: the cases of one ``flow``, or conversations (``conversation: true``)
    that start from intents.yaml. Which of the two is given is checked at load, placed."""

    flow: str | None = None
    conversation: bool = False
    cases: list[TestCase] = Field(min_length=1)
