"""The ``console`` entry of channels.yaml (§13): its users, its signing key, its project.

``ConsoleMount.build`` is what ``serve.config.platforms()`` calls for ``type: console``.
Problems go into the load context like every channel's, placed at their key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from csflow.serve.console.auth import KEY_ENV, MIN_KEY_LENGTH, Users
from csflow.serve.models import ConsoleChannel
from csflow.serve.mount import ASGIApp, Mount

if TYPE_CHECKING:
    from csflow.serve.config import LoadContext

GENERATED_KEY_WARNING = (
    f"{KEY_ENV} is not set: the console signs its sessions with a key made for this process, "
    "so a restart signs everyone out and each worker has its own sessions; set it to a random "
    f"value of {MIN_KEY_LENGTH}+ characters"
)


@dataclass
class ConsoleMount(Mount):
    platform: ClassVar[str] = "console"
    name: str
    path: str
    app: ASGIApp
    warnings: tuple[str, ...] = ()

    @classmethod
    def build(cls, name: str, model: Any, ctx: LoadContext) -> ConsoleMount | None:
        from csflow.serve.config import DEFAULT_TENANT
        from csflow.serve.console.app import Console, console_app

        assert isinstance(model, ConsoleChannel)
        passwords: dict[str, bytes] = {}
        for user, ref in model.users.items():
            value = ctx.secret(ref, (name, "users", user))
            if value is not None:
                passwords[user] = value
        key, warnings = _signing_key(ctx, name)
        tenant = ctx.tenants.get(DEFAULT_TENANT)
        if key is None or tenant is None or len(passwords) != len(model.users):
            return None  # the project's own problems are reported where it loaded
        console = Console(
            base=model.path,
            users=Users(passwords, key),
            key=key,
            project=tenant.project,
            shared=ctx.shared,
        )
        return cls(name, model.path, console_app(console), warnings)


def _signing_key(ctx: LoadContext, name: str) -> tuple[bytes | None, tuple[str, ...]]:
    value = ctx.environ.get(KEY_ENV, "")
    if not value:
        return secrets.token_bytes(32), (GENERATED_KEY_WARNING,)
    if len(value) < MIN_KEY_LENGTH:
        ctx.problem(
            (name, "type"),
            f"environment variable '{KEY_ENV}' (the console's signing key) has "
            f"{len(value)} characters: give it {MIN_KEY_LENGTH} or more, random",
        )
        return None, ()
    ctx.secrets.append(value)
    return value.encode(), ()


__all__ = ["GENERATED_KEY_WARNING", "ConsoleMount"]
