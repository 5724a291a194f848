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
from urllib.parse import urlsplit

import httpx

from csflow.adapters.operation_mocks import use_operation_mocks
from csflow.engine.model import MockSpec


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

    bases: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (origin, base path)
    mocks: list[_Mock] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    @classmethod
    def install(cls, project: Any, mocks: Iterable[MockSpec] = ()) -> MockRouter:
        router = cls()
        for conn in project.connections:
            parts = urlsplit(conn.base_url)
            router.bases[conn.name] = (f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/"))
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
        name, path = self._locate(request.url)
        call = f"{request.method} {name or request.url.host} {path}"
        if request.url.query:
            call += f"?{request.url.query.decode()}"
        self.calls.append(call)
        for mock in self.mocks:
            s = mock.spec
            if s.operation is not None or (not s.repeat and mock.used) or s.connection != name:
                continue
            if (s.method or "GET").upper() != request.method or _norm(s.path) != _norm(path):
                continue
            if s.query and any(
                str(request.url.params.get(k)) != str(v) for k, v in s.query.items()
            ):
                continue
            mock.used += 1
            return _answer(s, request)
        self.unmatched.append(call)
        raise httpx.ConnectError(f"no mock matches {call}", request=request)

    def _locate(self, url: httpx.URL) -> tuple[str | None, str]:
        origin = f"{url.scheme}://{url.netloc.decode()}"
        best: tuple[str | None, str] = (None, url.path)
        longest = -1
        for name, (base_origin, base_path) in self.bases.items():
            if (
                origin == base_origin
                and url.path.startswith(base_path)
                and len(base_path) > longest
            ):
                best, longest = (name, url.path[len(base_path) :] or "/"), len(base_path)
        return best


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
