"""Auth types of a connection (§6), as httpx ``Auth`` objects, so every protocol shares them.

``build_auth`` turns a connection's ``auth`` model into one ``httpx.Auth``; every secret it
reads, and every token it later obtains, goes into the connection's ``Redactor``. OAuth 2
lives in ``adapters.oauth``. A ``custom`` function is imported when the project loads, and
an import that fails is a load error (``CustomAuthError``), not a surprise at the first call.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import importlib.util
import inspect
import sys
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from csflow.adapters.secrets import read_secret
from csflow.adapters.shared import SharedState
from csflow.engine.redaction import Redactor
from csflow.engine.registry import import_file


class AuthSetupError(Exception):
    """An auth that cannot be set up. Adapter-internal: the connection turns it into its
    calls' kind ``auth`` error (or a placed load problem), so it never leaves the adapters."""


class CustomAuthError(AuthSetupError):
    """A ``custom`` auth function that cannot be imported or used: a load-time problem."""

    key = "function"


class BearerAuth(httpx.Auth):
    def __init__(self, token: str) -> None:
        self._header = f"Bearer {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request


class ApiKeyAuth(httpx.Auth):
    def __init__(self, key: str, header: str | None, query: str | None) -> None:
        self._key, self._header, self._query = key, header, query

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._header:
            request.headers[self._header] = self._key
        else:
            assert self._query is not None
            request.url = request.url.copy_merge_params({self._query: self._key})
        yield request


class HmacAuth(httpx.Auth):
    """HMAC-SHA256 of the raw body, hex, after ``prefix`` (seed 003: ``sha256=<hex>``).

    With ``timestamp_header``, the Unix time in seconds goes in that header, so the receiver
    can refuse old requests; the signature covers the body only, as seed 003 specifies.
    """

    requires_request_body = True

    def __init__(self, secret: str, header: str, prefix: str, timestamp_header: str | None) -> None:
        self._secret = secret.encode()
        self._header, self._prefix, self._timestamp = header, prefix, timestamp_header

    def sign(self, body: bytes) -> str:
        return self._prefix + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._header] = self.sign(request.content)
        if self._timestamp:
            request.headers[self._timestamp] = str(int(time.time()))
        yield request


class FunctionAuth(httpx.Auth):
    """A custom function of the request (it sets headers, say) as an httpx ``Auth``."""

    def __init__(self, func: Callable[[httpx.Request], Any]) -> None:
        self._func = func

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        made = self._func(request)
        yield made if isinstance(made, httpx.Request) else request


class WatchedAuth(httpx.Auth):
    """A custom auth whose header values are learnt as secrets, so they are redacted too."""

    def __init__(self, inner: httpx.Auth, redactor: Redactor) -> None:
        self.inner = inner
        self._redactor = redactor
        self.requires_request_body = inner.requires_request_body
        self.requires_response_body = inner.requires_response_body

    def _learn(self, before: dict[str, str], request: httpx.Request) -> None:
        for key, value in request.headers.items():
            if before.get(key) != value:
                self._redactor.add(value)
                scheme, _, credential = value.partition(" ")
                if credential and scheme.isalpha():
                    self._redactor.add(credential)

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        before = dict(request.headers)
        flow = self.inner.sync_auth_flow(request)
        outgoing = next(flow)
        while True:
            self._learn(before, outgoing)
            response = yield outgoing
            try:
                outgoing = flow.send(response)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        before = dict(request.headers)
        flow = self.inner.async_auth_flow(request)
        outgoing = await flow.__anext__()
        while True:
            self._learn(before, outgoing)
            response = yield outgoing
            try:
                outgoing = await flow.asend(response)
            except StopAsyncIteration:
                return


def _text(value: Any, root: Path, redactor: Redactor, environ: Mapping[str, str]) -> str:
    if isinstance(value, str):
        return value
    secret = read_secret(value, root, environ).reveal()
    redactor.add(secret)
    return secret


def build_auth(
    spec: Any,
    root: Path,
    redactor: Redactor,
    environ: Mapping[str, str],
    *,
    name: str = "",
    timeout: float = 10.0,
    transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    allow_insecure_http: bool = False,
    state: SharedState | None = None,
) -> httpx.Auth | None:
    """The httpx auth for a connection's ``auth`` model; every secret is added to ``redactor``.

    ``timeout`` and ``transport`` are the connection's, for calls the auth makes itself (an
    OAuth 2 token endpoint); ``transport`` is called once per token request. ``state`` is
    where an OAuth 2 token is shared with the other processes (``adapters.shared``).
    """
    kind = spec.type
    if kind == "none":
        return None
    if kind == "basic":
        username = _text(spec.username, root, redactor, environ)
        password = _text(spec.password, root, redactor, environ)
        # The header carries base64(user:password): a server that echoes it must not leak it.
        redactor.add(base64.b64encode(f"{username}:{password}".encode()).decode())
        return httpx.BasicAuth(username, password)
    if kind == "bearer":
        return BearerAuth(_text(spec.token, root, redactor, environ))
    if kind == "api_key":
        return ApiKeyAuth(_text(spec.key, root, redactor, environ), spec.header, spec.query)
    if kind == "hmac":
        secret = _text(spec.secret, root, redactor, environ)
        return HmacAuth(secret, spec.header, spec.prefix, spec.timestamp_header)
    if kind in ("oauth2_client_credentials", "oauth2_refresh_token"):
        from csflow.adapters.oauth import OAuth2Auth

        secret = spec.client_secret
        return OAuth2Auth(
            name=name,
            grant="client_credentials" if kind == "oauth2_client_credentials" else "refresh_token",
            token_url=spec.token_url,
            client_id=_text(spec.client_id, root, redactor, environ),
            client_secret=_text(secret, root, redactor, environ) if secret is not None else None,
            refresh_token=(
                _text(spec.refresh_token, root, redactor, environ)
                if kind == "oauth2_refresh_token"
                else None
            ),
            scope=spec.scope,
            audience=getattr(spec, "audience", None),
            redactor=redactor,
            timeout=timeout,
            transport=transport,
            allow_insecure_http=allow_insecure_http,
            state=state,
        )
    if kind == "custom":
        return WatchedAuth(custom_auth(spec.function, root), redactor)
    raise AuthSetupError(f"auth type '{kind}' is not available in this version of csflow")


# -------------------------------------------------------------------------------- custom


def _import(module: str, root: Path) -> Any:
    """``module`` from the installed packages, else ``ROOT/module/path.py`` of the project."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise  # the module exists and imports something missing: say that
    path = root / (module.replace(".", "/") + ".py")
    if not path.is_file():
        raise CustomAuthError(
            f"cannot import '{module}': no such module (nor {path.name} in the project)"
        )
    name = "csflow_auth_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    try:
        return import_file(name, path)
    except ImportError as exc:
        raise CustomAuthError(f"cannot import '{module}' from {path}: {exc}") from None


def _required_positional(func: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return None
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)


def custom_auth(function: str, root: Path) -> httpx.Auth:
    """The auth that ``module:callable`` gives; CustomAuthError says why there is none.

    The callable is either the auth itself (an ``httpx.Auth``, an ``httpx.Auth`` class, or a
    function of the request that sets headers), or a factory with no arguments that returns
    an ``httpx.Auth`` or a function of the request.
    """
    module_name, _, attr = function.partition(":")
    try:
        module = _import(module_name, root)
    except CustomAuthError:
        raise
    except Exception as exc:
        raise CustomAuthError(
            f"cannot import '{module_name}': {type(exc).__name__}: {exc}"
        ) from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise CustomAuthError(f"'{module_name}' has no '{attr}'")
        target = getattr(target, part)
    if isinstance(target, httpx.Auth):
        return target
    if isinstance(target, type) and issubclass(target, httpx.Auth):
        try:
            return target()
        except Exception as exc:
            raise CustomAuthError(f"'{function}()' failed: {type(exc).__name__}: {exc}") from None
    if not callable(target):
        raise CustomAuthError(f"'{function}' is not callable")
    if _required_positional(target) == 1:
        return FunctionAuth(target)  # a function of the request
    try:
        made = target()
    except Exception as exc:
        raise CustomAuthError(f"'{function}()' failed: {type(exc).__name__}: {exc}") from None
    if isinstance(made, httpx.Auth):
        return made
    if callable(made) and _required_positional(made) == 1:
        return FunctionAuth(made)
    raise CustomAuthError(
        f"'{function}()' returned {type(made).__name__}, not an httpx.Auth or a function(request)"
    )
