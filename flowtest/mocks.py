"""Mocks at the httpx boundary: a MockTransport that answers from a list of mocked calls.

Auth, retries, redaction and extraction all run for real; only the network is replaced.
A call that no mock matches fails with a connect error, and is remembered so that the case
fails saying which call it was, even when the flow handled the error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from csflow.adapters.calls import OUTBOUND
from csflow.adapters.operation_mocks import use_operation_mocks
from csflow.engine.model import MockSpec
from csflow.flowtest.routes import locate


@dataclass
class _Mock:
    spec: MockSpec
    used: int = 0


@dataclass
class MockRouter:
    """Answers a project's outbound calls from mocks, matched in order; each is used once
    unless it says ``repeat: true``.

    >>> router = MockRouter.install(project)
    >>> router.add(connection="shop", method="GET", path="/orders", json=[])
    """

    connections: Iterable[Any] = ()
    mocks: list[_Mock] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    # Per unmatched call: the step that made it, and whether a used mock matches it.
    misses: list[Miss] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @classmethod
    def install(cls, project: Any, mocks: Iterable[MockSpec] = ()) -> MockRouter:
        router = cls(project.connections)
        router.extend(mocks)
        project.connections.use_transport(lambda _n: httpx.MockTransport(router.handle))
        use_operation_mocks(project.connections, router.operation)
        return router

    @staticmethod
    def uninstall(project: Any) -> None:
        project.connections.use_transport(None)
        use_operation_mocks(project.connections, None)

    def extend(self, mocks: Iterable[MockSpec]) -> None:
        self.mocks.extend(_Mock(m) for m in mocks)

    def add(self, **spec: Any) -> MockRouter:
        """``flow_mock.add(connection="shop", method="GET", path="/orders", json=[...])``."""
        self.mocks.append(_Mock(MockSpec.model_validate(spec)))
        return self

    def operation(self, connection: str, operation: str) -> tuple[bool, Any]:
        """The mocked data of a SOAP or GraphQL operation: (found, data)."""
        for mock in self.mocks:
            s = mock.spec
            if (
                s.operation == operation
                and s.connection == connection
                and (s.repeat or not mock.used)
            ):
                mock.used += 1
                self.calls.append(f"{connection} {operation}")
                return True, s.data
        return False, None

    def unused(self) -> list[str]:
        return [_describe(m.spec) for m in self.mocks if not m.used and not m.spec.repeat]

    # -- the transport's handler ----------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        name, path = locate(self.connections, request.url)
        call = f"{request.method} {name or request.url.host} {path}"
        if request.url.query:
            call += f"?{request.url.query.decode()}"
        self.calls.append(call)
        answered_before = False
        for mock in self.mocks:
            if not _fits(mock.spec, name, path, request):
                continue
            if mock.used and not mock.spec.repeat:
                answered_before = True
                continue
            mock.used += 1
            return _answer(mock.spec, request)
        self.unmatched.append(call)
        outbound = request.extensions.get(OUTBOUND)
        attempt = outbound.view.call if outbound is not None else None
        self.misses.append(Miss(call, attempt, answered_before))
        raise httpx.ConnectError(f"no mock matches {call}", request=request)


@dataclass(frozen=True)
class Miss:
    """An unmatched call; ``attempt`` is the ``Call`` of the attempt that made it (one each)."""

    call: str
    attempt: Any
    answered_before: bool

    @property
    def step(self) -> str | None:
        return getattr(self.attempt, "step", None)


def _fits(s: MockSpec, name: str | None, path: str, request: httpx.Request) -> bool:
    if s.operation is not None or s.connection != name:
        return False
    if (s.method or "GET").upper() != request.method or _norm(s.path) != _norm(path):
        return False
    return not s.query or all(str(request.url.params.get(k)) == str(v) for k, v in s.query.items())


def _norm(path: str | None) -> str:
    return "/" + (path or "").strip("/")


def _answer(spec: MockSpec, request: httpx.Request) -> httpx.Response:
    if spec.error == "timeout":
        raise httpx.ReadTimeout("mocked timeout", request=request)
    if spec.error == "connect":
        raise httpx.ConnectError("mocked connection failure", request=request)
    headers = dict(spec.headers)
    if spec.json_ is not None:
        headers.setdefault("Content-Type", "application/json")
        content = json.dumps(spec.json_).encode()
    elif spec.xml is not None:
        headers.setdefault("Content-Type", "application/xml")
        content = spec.xml.encode()
    else:
        content = (spec.body or "").encode()
    return httpx.Response(spec.status, headers=headers, content=content, request=request)


def _describe(spec: MockSpec) -> str:
    if spec.operation:
        return f"{spec.connection} {spec.operation}"
    return f"{(spec.method or 'GET').upper()} {spec.connection} {spec.path}"
