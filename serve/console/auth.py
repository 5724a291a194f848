"""Who may use the console: users and passwords, the signed session cookie, CSRF, throttling.

- A password is compared in constant time (``hmac.compare_digest`` over SHA-256 digests, so
  that neither the length nor a prefix leaks), and an unknown user costs the same compare.
- The session is a cookie signed with itsdangerous (HttpOnly, SameSite=Lax, Secure over
  https): the user, a CSRF token, and a fingerprint of the user's password, so that changing
  a password (or removing the user) ends that user's sessions. It holds no secret.
- Before sign-in the same cookie carries only a CSRF token, so the login form has one too.
- Failed sign-ins are counted per user and client address: ``MAX_FAILURES`` within
  ``WINDOW`` seconds, then 429 until the oldest failure leaves the window.

Signing out clears the cookie in this browser and revokes the session everywhere
(``SignedOut``): its CSRF token, unique to the session, is kept in the shared state
(``CSFLOW_REDIS``, else this process) until the cookie would have expired, so a copy taken
before is refused on every server that shares that state.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer

from csflow.adapters.shared import SharedState, StateUnavailable

log = logging.getLogger("csflow.console")

KEY_ENV = "CSFLOW_CONSOLE_KEY"  # the signing key, shared by every worker and restart
MIN_KEY_LENGTH = 32
COOKIE = "csflow_console"
SESSION_AGE = 12 * 3600  # seconds: a working day, then sign in again
MAX_FAILURES = 5
WINDOW = 60.0  # seconds
MAX_TRACKED = 10_000  # (user, address) pairs remembered; the oldest is dropped past it


def _digest(text: bytes) -> bytes:
    return hashlib.sha256(text).digest()


_NOBODY = _digest(secrets.token_bytes(32))  # what an unknown user's password is compared to


@dataclass(frozen=True, slots=True)
class Session:
    """What the cookie says: ``user`` is None before sign-in (the login form's token only)."""

    csrf: str
    user: str | None = None
    fingerprint: str | None = None


class Users:
    """The console's users: name -> password (from the environment or a file, never YAML)."""

    def __init__(self, passwords: Mapping[str, bytes], key: bytes) -> None:
        self._digests = {name: _digest(pw) for name, pw in passwords.items()}
        # A password's fingerprint in the session: keyed, so it says nothing of the password.
        self._fingerprints = {
            name: hmac.new(key, b"password:" + pw, hashlib.sha256).hexdigest()[:32]
            for name, pw in passwords.items()
        }

    def check(self, user: str, password: str) -> bool:
        """Whether ``password`` is ``user``'s; as slow for an unknown user as for a known one."""
        expected = self._digests.get(user, _NOBODY)
        same = hmac.compare_digest(expected, _digest(password.encode("utf-8", "replace")))
        return same and user in self._digests

    def fingerprint(self, user: str) -> str:
        return self._fingerprints[user]

    def current(self, session: Session) -> bool:
        """Whether a signed-in session still stands: its user exists with the same password."""
        if session.user is None or session.fingerprint is None:
            return False
        known = self._fingerprints.get(session.user)
        return known is not None and hmac.compare_digest(known, session.fingerprint)


class Sessions:
    """The session cookie's signing and reading; a bad or old cookie reads as no session."""

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="csflow.console.session")

    @staticmethod
    def fresh(user: str | None = None, fingerprint: str | None = None) -> Session:
        # A new CSRF token on every sign-in and sign-out: a token seen before is worth nothing.
        return Session(secrets.token_urlsafe(32), user, fingerprint)

    def dump(self, session: Session) -> str:
        data = {"c": session.csrf, "u": session.user, "p": session.fingerprint}
        return self._serializer.dumps(data)

    def load(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_AGE)
        except BadSignature:  # SignatureExpired is one
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        user, fingerprint = data.get("u"), data.get("p")
        if not (user is None or isinstance(user, str)):
            return None
        return Session(data["c"], user, fingerprint if isinstance(fingerprint, str) else None)


class SignedOut:
    """The sessions signed out before their cookie expired, in the state servers share.

    A session is known by a hash of its CSRF token, never the token. A shared state that does
    not answer is logged and passed over (fails open): the console stays usable while Redis is
    away, and the cookie still ends at ``SESSION_AGE``.
    """

    def __init__(self, shared: SharedState) -> None:
        self.shared = shared

    @staticmethod
    def _key(session: Session) -> str:
        return "console:signed-out:" + hashlib.sha256(session.csrf.encode()).hexdigest()[:32]

    async def revoke(self, session: Session) -> None:
        try:
            await self.shared.put(self._key(session), b"1", SESSION_AGE)
        except StateUnavailable as exc:
            log.warning("a console session signed out but could not be revoked: %s", exc)

    async def revoked(self, session: Session) -> bool:
        try:
            return await self.shared.get(self._key(session)) is not None
        except StateUnavailable as exc:
            log.warning("could not check whether a console session was signed out: %s", exc)
            return False


def csrf_matches(session: Session | None, sent: str | None) -> bool:
    return session is not None and sent is not None and hmac.compare_digest(session.csrf, sent)


class Throttle:
    """Failed sign-ins per (user, address) in a sliding window. In memory: per process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float] | None:
        failures = self._failures.get(key)
        if failures is None:
            return None
        horizon = self._clock() - WINDOW
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
            return None
        return failures

    def wait(self, user: str, address: str) -> float | None:
        """Seconds until ``user`` may try again from ``address``; None when they may now."""
        failures = self._recent((user, address))
        if failures is None or len(failures) < MAX_FAILURES:
            return None
        return max(failures[0] + WINDOW - self._clock(), 0.0)

    def failed(self, user: str, address: str) -> None:
        key = (user, address)
        failures = self._recent(key)
        if failures is None:
            if len(self._failures) >= MAX_TRACKED:  # an address spraying user names
                del self._failures[next(iter(self._failures))]
            failures = self._failures[key] = deque(maxlen=MAX_FAILURES)
        failures.append(self._clock())

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop((user, address), None)


__all__ = [
    "COOKIE",
    "KEY_ENV",
    "MAX_FAILURES",
    "MIN_KEY_LENGTH",
    "SESSION_AGE",
    "WINDOW",
    "Session",
    "Sessions",
    "SignedOut",
    "Throttle",
    "Users",
    "csrf_matches",
]
