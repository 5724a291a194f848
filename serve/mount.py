"""A channel that is a whole ASGI app under a path prefix (the console), not one endpoint.

An ``Endpoint`` answers a platform's one request shape through the shared pipeline; a
``Mount`` owns every path under its ``path`` (pages, forms, static files) and answers them
itself. ``ChannelsApp`` hands it the request untouched but for ``root_path``, the way ASGI
says a sub-application learns where it is mounted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from csflow.serve.config import LoadContext

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class Mount(ABC):
    """A channel served as an ASGI app at ``path`` and below it."""

    platform: ClassVar[str]  # its ``type:`` in channels.yaml, for people (dispatch is on the class)
    name: str
    path: str
    app: ASGIApp
    warnings: tuple[str, ...] = ()  # what the server logs when it starts serving this mount

    def owns(self, path: str) -> bool:
        """Whether a request for ``path`` is this mount's: ``path`` itself or under it."""
        return path == self.path or path.startswith(self.path + "/")

    @classmethod
    @abstractmethod
    def build(cls, name: str, model: Any, ctx: LoadContext) -> Mount | None:
        """The mount of ``model`` (one entry of channels.yaml), problems into ``ctx``."""

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.app(
            {**scope, "root_path": scope.get("root_path", "") + self.path}, receive, send
        )


__all__ = ["ASGIApp", "Mount"]
