"""Per-instance configuration and mutable state: data, outage switches, injected delay."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
from dataclasses import dataclass, field
from datetime import datetime

from csflow.demo.store import Store, utcnow

SERVICES = ("rest", "erp", "graphql")
DEFAULT_TOKEN = "demo-shop-token"
DEFAULT_ERP_USER = "erp"
DEFAULT_ERP_PASSWORD = "erp-secret"
DEFAULT_GRAPHQL_KEY = "subs-key"


@dataclass(frozen=True, slots=True)
class DemoConfig:
    token: str = DEFAULT_TOKEN  # REST: Authorization: Bearer <token>
    erp_user: str = DEFAULT_ERP_USER  # SOAP ERP: HTTP Basic
    erp_password: str = DEFAULT_ERP_PASSWORD
    graphql_key: str = DEFAULT_GRAPHQL_KEY  # GraphQL: X-API-Key
    # The anchor of every seeded date; None means "when the app is created".
    now: datetime | None = None


@dataclass(slots=True)
class ShopState:
    config: DemoConfig
    store: Store = field(init=False)
    down: set[str] = field(default_factory=set)  # services answering 503
    delays: dict[str, float] = field(default_factory=dict)  # seconds, per service
    held: int = 0  # requests in an injected delay now: tests wait on it, not on a clock

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.store = Store(self.config.now or utcnow())

    async def delay(self, service: str) -> None:
        seconds = self.delays.get(service)
        if seconds:
            self.held += 1
            try:
                await asyncio.sleep(seconds)
            finally:
                self.held -= 1


def check_bearer(header: str | None, token: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    # compare_digest: the comparison time must not reveal how much of the token matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


def check_basic(header: str | None, user: str, password: str) -> bool:
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    got_user, sep, got_password = decoded.partition(":")
    user_ok = hmac.compare_digest(got_user.encode(), user.encode())
    password_ok = hmac.compare_digest(got_password.encode(), password.encode())
    return bool(sep) and user_ok and password_ok


def check_key(header: str | None, key: str) -> bool:
    return header is not None and hmac.compare_digest(header.encode(), key.encode())
