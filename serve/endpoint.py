"""One endpoint shape for every channel: authenticate -> parse -> run within the deadline -> render.

``answer(endpoint, request, entry)`` is the whole pipeline; a platform module subclasses
``Endpoint`` with only what its protocol says: how a caller proves who it is
(``authenticate``), how a request becomes a flow's inputs (``parse``), how a run becomes the
platform's answer (``render``), and its "could not check right now" answer (``unavailable``).
Each step either hands the next one its value or gives the answer itself (an ``Answer``), so
a refusal is one return, and what the access log says comes with it.
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar
from urllib.parse import parse_qsl

from csflow.serve.logs import AccessEntry
from csflow.serve.runtime import MAX_BODY_BYTES, ChannelRun, plain_json, run_within

if TYPE_CHECKING:
    from csflow import Project
    from csflow.serve.config import LoadContext

Request_ = TypeVar("Request_")  # what a platform's parse hands its render


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    """The body did not arrive within the platform's deadline (a slow or trickling client)."""


class ClientGone(Exception):
    """The client closed the connection before its request was read."""


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer and what the access log says of it (``outcome``)."""

    status: int
    body: bytes
    outcome: str | None  # None: csflow's own answers (/healthz, an unknown path)
    headers: tuple[tuple[bytes, bytes], ...] = ()
    detail: str | None = None  # why, for the log only (a template's error): never sent
    orders: int | None = None  # how many orders an order_lookup answer holds, for the log

    @classmethod
    def json(
        cls,
        content: Any,
        status: int,
        outcome: str | None,
        *,
        headers: tuple[tuple[bytes, bytes], ...] = (),
        detail: str | None = None,
    ) -> Answer:
        return cls(status, plain_json(content), outcome, headers, detail)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the tenant whose key or signature the request carried."""

    tenant: str
    project: Project
    data: Any = None  # what authenticating already read (Coffield's signed body)


@dataclass(frozen=True, slots=True)
class FlowCall(Generic[Request_]):
    """What parse made of a request: the flow to run, its inputs, and the request for render."""

    caller: Caller
    flow: str
    inputs: Mapping[str, Any]
    request: Request_


class Inbound:
    """One HTTP request as a channel reads it: headers, query, path parameters, a bounded body."""

    __slots__ = ("_query", "_receive", "arrived", "headers", "path_params", "scope")

    def __init__(self, scope: Mapping[str, Any], receive: Any, arrived: float) -> None:
        self.scope = scope
        self._receive = receive
        self.arrived = arrived  # the event loop's clock: every deadline counts from here
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        self.headers = headers
        self.path_params: dict[str, str] = {}
        self._query: dict[str, str] | None = None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            raw = self.scope.get("query_string", b"").decode("latin-1")
            self._query = dict(parse_qsl(raw, keep_blank_values=True))
        return self._query

    def seconds_left(self, timeout: float) -> float:
        return timeout - (asyncio.get_running_loop().time() - self.arrived)

    async def body(self, timeout: float, limit: int = MAX_BODY_BYTES) -> bytes:
        """The body, counted as it arrives and read within ``timeout`` of the request's arrival.

        Content-Length is checked first but never trusted alone; a client that trickles its
        body gets ``BodyTimeout`` when the platform's deadline is near, not a held connection.
        """
        declared = self.headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise BodyTooLarge
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(self.arrived + timeout):
                while True:
                    message = await self._receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise BodyTooLarge
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise BodyTimeout(f"after {loop.time() - self.arrived:.1f}s") from None


class BadBody(Exception):
    pass


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # deep nesting is a RecursionError
        raise BadBody("the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise BadBody("the body must be a JSON object")
    return data


def unencodable(value: Any, where: str) -> str | None:
    """Where ``value`` holds text that is not Unicode (a lone surrogate from a JSON escape).

    Such text cannot be sent to a merchant, stored or logged, so a channel refuses it as the
    caller's mistake before any flow runs (docs/decisions.md, "Serve: text that is not text").
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return where
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = unencodable(key, where) or unencodable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = unencodable(item, f"{where}[{i}]")
            if found:
                return found
    return None


class Endpoint(ABC, Generic[Request_]):
    """A channel of one platform: what its protocol says, and nothing of the pipeline."""

    methods: ClassVar[tuple[str, ...]]
    platform: ClassVar[str]  # its ``type:`` in channels.yaml, for people (dispatch is on the class)
    name: str
    path: str
    timeout: float  # the platform's deadline, from the request's arrival

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when ``path`` is this endpoint's, else None."""
        return {} if path == self.path else None

    @classmethod
    @abstractmethod
    def build(cls, name: str, model: Any, ctx: LoadContext) -> Endpoint[Any] | None:
        """The endpoint of ``model`` (one channel of channels.yaml), problems into ``ctx``."""

    @abstractmethod
    async def authenticate(self, request: Inbound) -> Caller | Answer: ...

    @abstractmethod
    async def parse(self, request: Inbound, caller: Caller) -> FlowCall[Request_] | Answer: ...

    @abstractmethod
    def render(self, call: FlowCall[Request_], outcome: ChannelRun) -> Answer:
        """The platform's answer to a run that ended (completed, failed or overran)."""

    @abstractmethod
    def refuse_inputs(self, call: FlowCall[Request_], message: str) -> Answer:
        """The platform's answer when the flow refused the inputs (the engine's UsageError)."""

    @abstractmethod
    def unavailable(self, detail: str | None = None) -> Answer:
        """The platform's "could not check right now" answer, also for a bug of ours."""

    async def run(self, call: FlowCall[Request_], seconds: float) -> ChannelRun | Answer:
        """The run ``call`` asks for, within ``seconds`` (an Answer when none can start).

        A platform runs one flow per request; a conversation takes a turn instead.
        """
        return await run_within(call.caller.project, call.flow, call.inputs, seconds)

    def late_body(self, detail: str) -> Answer:
        """The answer to a body that did not arrive in time: the platform's "could not check"."""
        return self.unavailable(detail)

    @abstractmethod
    def too_large(self) -> Answer:
        """The platform's answer to a body over ``MAX_BODY_BYTES``."""


async def answer(endpoint: Endpoint[Any], request: Inbound, entry: AccessEntry) -> Answer | None:
    """The pipeline; None when the client left before it could be answered."""
    entry.channel = endpoint.name
    try:
        caller = await endpoint.authenticate(request)
        if isinstance(caller, Answer):
            return caller
        entry.tenant = caller.tenant
        call = await endpoint.parse(request, caller)
        if isinstance(call, Answer):
            return call
        entry.flow = call.flow or None
        outcome = await endpoint.run(call, request.seconds_left(endpoint.timeout))
        if isinstance(outcome, Answer):
            return outcome
        entry.ran(outcome)
        if outcome.usage_error is not None:
            return endpoint.refuse_inputs(call, outcome.usage_error)
        return endpoint.render(call, outcome)
    except BodyTooLarge:
        return endpoint.too_large()
    except BodyTimeout as exc:
        late = endpoint.late_body(f"the body did not arrive in time ({exc})")
        # The rest of the body may still trickle in: this connection is done.
        close = ((b"connection", b"close"),)
        return Answer(late.status, late.body, "body_timeout", close, late.detail)
    except ClientGone:
        entry.outcome = "client_gone"
        return None
    except Exception as exc:  # a bug of ours: the platform still gets an answer it understands
        entry.internal_error = f"{type(exc).__name__}: {exc}"[:300]
        return endpoint.unavailable()
