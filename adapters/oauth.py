"""OAuth 2 for a connection: client credentials, or a refresh token (§6).

The token is cached per connection, shared by every run and every event loop, and renewed
before it expires (10% of its lifetime early, at most 30 s). A 401 renews it once and sends
the call once more. Concurrent runs share one renewal: the first run that needs a token
starts one task per event loop and every other run awaits that same task, shielded, so a run
cut off by its own deadline does not throw the renewal away for the others. (A lock would:
its holder's cancellation is everybody's.)

Across processes the token lives in the shared state (``adapters.shared``; Redis with
``CSFLOW_REDIS``), under a key that names the connection and a hash of the token URL, client
id, scope and audience, never a secret. A renewal first looks there; else it takes the
state's lock (with a time to live, so that a holder that dies only delays the others) and
asks the token endpoint, while every other process polls the state for the token the holder
puts there. One token endpoint request across all processes. A state that is unavailable
fails open: this process asks for its own token (the state logs that once). A refresh token
that the server rotates is kept in the state too (and in memory), for the next renewal,
wherever it runs. The synchronous flow (a WSDL fetched at load) stays in this process.

The token endpoint is asked through authlib's httpx client (``AsyncOAuth2Client``), over the
connection's transport and timeout, with no redirects, https unless loopback, and its answer
capped. Every token obtained is added to the connection's redactor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import warnings
import weakref
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from authlib.deprecate import AuthlibDeprecationWarning  # it sets an "always" filter

from csflow.adapters.shared import SharedState, StateUnavailable, fingerprint
from csflow.adapters.transport import CappedTransport, make_transport, translate
from csflow.engine.errors import StepError
from csflow.engine.redaction import Redactor
from csflow.engine.urls import is_loopback

with warnings.catch_warnings():  # authlib warns that it would rather have "httpx2"
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import OAuthError
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuth2Client

TOKEN_BODY_CAP = 256 * 1024
MAX_EARLY = 30.0  # seconds: renew at most this long before the token expires
LOCK_MARGIN = 2.0  # seconds a renewal lock outlives the token request's timeout
POLL = 0.05  # seconds between two looks at the shared state while another process renews


@dataclass(frozen=True, slots=True)
class Token:
    access: str
    renew_at: float | None  # time.monotonic(); None: renewed only when refused
    # The same instants on the wall clock, which other processes (and machines) share.
    renew_wall: float | None = None
    expires_wall: float | None = None

    @classmethod
    def lasting(cls, access: str, expires_in: Any) -> Token:
        try:
            lifetime = float(expires_in)
        except (TypeError, ValueError):
            return cls(access, None)
        early = lifetime - min(MAX_EARLY, lifetime / 10)
        wall = time.time()
        return cls(access, time.monotonic() + early, wall + early, wall + lifetime)

    @classmethod
    def shared(cls, access: str, renew_wall: float | None, expires_wall: float | None) -> Token:
        if renew_wall is None:
            return cls(access, None)
        return cls(access, time.monotonic() + renew_wall - time.time(), renew_wall, expires_wall)


class OAuth2Auth(httpx.Auth):
    """Bearer tokens from a token endpoint, renewed before expiry and once on a 401."""

    requires_request_body = True  # a call refused with 401 is sent again, body and all

    def __init__(
        self,
        *,
        name: str,
        grant: Literal["client_credentials", "refresh_token"],
        token_url: str,
        client_id: str,
        client_secret: str | None,
        refresh_token: str | None,
        scope: str | None,
        audience: str | None,
        redactor: Redactor,
        timeout: float,
        transport: Callable[[], httpx.AsyncBaseTransport] | None,
        allow_insecure_http: bool,
        state: SharedState | None = None,
    ) -> None:
        self.name = name
        self.grant = grant
        self.token_url = token_url
        self._client_id, self._client_secret = client_id, client_secret
        self._refresh_token = refresh_token
        self._scope, self._audience = scope, audience
        self._redactor = redactor
        self._timeout = timeout
        self._transport = transport or (lambda: make_transport(2))
        self._allow_http = allow_insecure_http
        self._token: Token | None = None
        self._renewals: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, asyncio.Task[Token]
        ] = weakref.WeakKeyDictionary()
        self._sync_lock = threading.Lock()
        self.requests = 0  # token endpoint calls made: for tests and the curious
        self._state = state
        identity = (grant, token_url, client_id, scope or "", audience or "")
        self.key = f"oauth:{name}:{fingerprint(*identity)}"

    # -- the flow ---------------------------------------------------------------------------

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.token()
        request.headers["Authorization"] = f"Bearer {token.access}"
        response = yield request
        if response.status_code == 401:
            await _discard(response)
            token = await self.token(stale=token)
            request.headers["Authorization"] = f"Bearer {token.access}"
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """For synchronous clients (a WSDL fetched at load): the same rules, a thread lock."""
        token = self.token_sync()
        request.headers["Authorization"] = f"Bearer {token.access}"
        response = yield request
        if response.status_code == 401:
            response.close()
            token = self.token_sync(stale=token)
            request.headers["Authorization"] = f"Bearer {token.access}"
            yield request

    # -- the token --------------------------------------------------------------------------

    def _usable(self, stale: Token | None) -> Token | None:
        token = self._token
        if token is None or token is stale:
            return None
        if token.renew_at is not None and time.monotonic() >= token.renew_at:
            return None
        return token

    async def token(self, stale: Token | None = None) -> Token:
        """A token to send: the cached one, or the one renewal every caller shares."""
        token = self._usable(stale)
        if token is not None:
            return token
        loop = asyncio.get_running_loop()
        task = self._renewals.get(loop)
        if task is None or task.done():
            task = loop.create_task(self._renew(stale))
            task.add_done_callback(_retrieve)
            self._renewals[loop] = task
        try:
            return await asyncio.shield(task)
        except StepError as err:  # every waiter gets its own copy to record
            raise StepError(err.kind, err.message, status=err.status) from None

    def token_sync(self, stale: Token | None = None) -> Token:
        with self._sync_lock:
            token = self._usable(stale)
            return token if token is not None else self._take(self._ask_sync())

    async def _renew(self, stale: Token | None) -> Token:
        if self._state is not None:
            try:
                return await self._renew_shared(self._state, stale)
            except StateUnavailable:
                pass  # fail open: this process asks for its own (the state logged it once)
        return self._take(await self._ask())

    async def _renew_shared(self, state: SharedState, stale: Token | None) -> Token:
        """The token another process put in the state, or one asked for under its lock."""
        ttl = self._timeout + LOCK_MARGIN
        give_up = time.monotonic() + 2 * ttl  # the lock of a holder that died has run out
        while True:
            found = await self._from_state(state, stale)
            if found is not None:
                return found
            held = await state.try_lock(self.key + ":renewing", ttl)
            if held is not None:
                try:
                    found = await self._from_state(state, stale)  # put while we took the lock
                    if found is not None:
                        return found
                    token = self._take(await self._ask())
                    with contextlib.suppress(StateUnavailable):  # ours is good all the same
                        await state.put(self.key, self._shared_value(token), self._keep(token))
                    return token
                finally:
                    await held.release()
            if time.monotonic() > give_up:
                return self._take(await self._ask())
            await asyncio.sleep(POLL)  # another process is asking: its token comes to the state

    async def _from_state(self, state: SharedState, stale: Token | None) -> Token | None:
        raw = await state.get(self.key)
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            access, renew, expires = value["access"], value["renew"], value["expires"]
        except (ValueError, KeyError, TypeError):
            return None  # not a value this version wrote: ask for a new one
        rotated = value.get("refresh")
        if isinstance(rotated, str) and rotated:
            self._redactor.add(rotated)
            self._refresh_token = rotated  # the latest, wherever it was obtained
        if not isinstance(access, str) or (stale is not None and access == stale.access):
            return None
        if renew is not None and time.time() >= renew:
            return None
        self._redactor.add(access)
        token = Token.shared(access, renew, expires)
        self._token = token
        return token

    def _shared_value(self, token: Token) -> bytes:
        refresh = self._refresh_token if self.grant == "refresh_token" else None
        value = {
            "access": token.access,
            "renew": token.renew_wall,
            "expires": token.expires_wall,
            "refresh": refresh,
        }
        return json.dumps(value).encode()

    def _keep(self, token: Token) -> float | None:
        """How long the state keeps the token: until it expires; a rotated refresh token in
        it is kept until replaced, since the one in the configuration is spent."""
        if self.grant == "refresh_token" or token.expires_wall is None:
            return None
        return max(1.0, token.expires_wall - time.time())

    async def _ask(self) -> dict[str, Any]:
        client = AsyncOAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method=self._method(),
            scope=self._scope,
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            transport=CappedTransport(self._transport(), TOKEN_BODY_CAP),
            event_hooks={"request": [self._check]},
        )
        self.requests += 1
        try:
            async with client:
                if self.grant == "client_credentials":
                    raw = await client.fetch_token(
                        self.token_url, grant_type="client_credentials", **self._extra()
                    )
                else:
                    raw = await client.refresh_token(
                        self.token_url, refresh_token=self._refresh_token
                    )
        except BaseException as exc:
            raise self._error(exc) from None
        return dict(raw)

    def _ask_sync(self) -> dict[str, Any]:
        client = OAuth2Client(
            client_id=self._client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method=self._method(),
            scope=self._scope,
            timeout=self._timeout,
            follow_redirects=False,
            trust_env=False,
            event_hooks={"request": [self._check_sync]},
        )
        self.requests += 1
        try:
            with client:
                if self.grant == "client_credentials":
                    raw: dict[str, Any] = client.fetch_token(
                        self.token_url, grant_type="client_credentials", **self._extra()
                    )
                else:
                    raw = client.refresh_token(self.token_url, refresh_token=self._refresh_token)
        except BaseException as exc:
            raise self._error(exc) from None
        return raw

    def _method(self) -> str:
        return "client_secret_basic" if self._client_secret else "none"

    def _extra(self) -> dict[str, str]:
        return {"audience": self._audience} if self._audience else {}

    def _take(self, raw: dict[str, Any]) -> Token:
        access = raw.get("access_token")
        kind = str(raw.get("token_type") or "bearer").lower()
        if not isinstance(access, str) or not access:
            raise StepError("auth", f"the token endpoint of '{self.name}' gave no access_token")
        if kind != "bearer":
            raise StepError(
                "auth", f"the token endpoint of '{self.name}' gave a '{kind}' token, not bearer"
            )
        self._redactor.add(access)
        rotated = raw.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            self._redactor.add(rotated)
            self._refresh_token = rotated  # kept in memory: a restart begins from the config
        token = Token.lasting(access, raw.get("expires_in"))
        self._token = token
        return token

    # -- the token endpoint's rules and errors ------------------------------------------------

    def _check_url(self, url: httpx.URL) -> None:
        want = httpx.URL(self.token_url)
        if (url.scheme, url.host, url.port) != (want.scheme, want.host, want.port):
            raise StepError("auth", f"the token request of '{self.name}' left {want.host}")
        if url.scheme != "https" and not is_loopback(url.host) and not self._allow_http:
            raise StepError("auth", f"the token endpoint of '{self.name}' must be https")

    async def _check(self, request: httpx.Request) -> None:
        self._check_url(request.url)

    def _check_sync(self, request: httpx.Request) -> None:
        self._check_url(request.url)

    def _error(self, exc: BaseException) -> BaseException:
        what = f"the token endpoint of '{self.name}'"
        if isinstance(exc, StepError):
            return exc.replace(message=f"{what}: {exc.message}").redacted(self._redactor.text)
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            return StepError("auth", f"{what} answered {status}", status=status)
        if isinstance(exc, httpx.HTTPError):
            error, _ = translate(exc, what=what)
            if error.kind == "parse":  # a token answer too large or undecodable: auth failed
                error = StepError("auth", error.message, retryable=error.retryable)
            return error.redacted(self._redactor.text)
        if isinstance(exc, OAuthError):
            return StepError("auth", f"{what} refused: {self._redactor.text(str(exc.error))}")
        if isinstance(exc, ValueError):
            return StepError("auth", f"{what} did not answer with a token")
        return exc  # cancellation and the like go on as they are


async def _discard(response: httpx.Response) -> None:
    """Close a refused answer unread: httpx would read it whole before the retry."""
    await response.aclose()
    response._content = b""


def _retrieve(task: asyncio.Task[Token]) -> None:
    if not task.cancelled():
        task.exception()  # every waiter may have gone: no "never retrieved" warning
