"""The one door of the console: sessions, CSRF and the security headers, for every request.

Deny by default: every path but the sign-in page and the static files needs a signed-in
session, and every request that may change something (any method but GET and HEAD) needs
the session's CSRF token, in the form (``csrf``) or in an ``X-CSRF-Token`` header (htmx).
Being here rather than in each page means a new page or form cannot forget either.

The form is read here too (bounded, ``application/x-www-form-urlencoded``), and handed to
the page as ``request.state.form``; the console needs no multipart parser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import Response

from csflow.serve.console.auth import COOKIE, Session, csrf_matches

if TYPE_CHECKING:
    from csflow.serve.console.app import Console

PUBLIC = frozenset({"/login"})
STATIC = "/static/"
SAFE_METHODS = frozenset({"GET", "HEAD"})
MAX_FORM_BYTES = 64 * 1024

# Scripts and styles from this server only: the page can reach nothing else, which is also
# what the browser tests check. Mermaid writes <style> into its SVGs, hence inline styles.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")  # pages hold customers' data: keep no copy


def route_path(scope: dict[str, Any]) -> str:
    """The path under the mount: ``/runs`` for ``/console/runs``; ``""`` for the mount itself."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def login_url(base: str, wanted: str | None) -> str:
    return f"{base}/login" + (f"?next={quote(wanted, safe='/')}" if wanted else "")


class _Refused(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


class Guard:
    """ASGI middleware around the console's routes."""

    def __init__(self, app: Any, console: Console) -> None:
        self.app = app
        self.console = console

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = route_path(scope)
        send = _with_headers(send, static=route.startswith(STATIC))
        if route == "":  # /console: the flows page lives at /console/
            await Response(status_code=307, headers={"location": self.console.base + "/"})(
                scope, receive, send
            )
            return
        if route.startswith(STATIC):
            await self.app(scope, receive, send)
            return
        console = self.console
        request = Request(scope, receive)
        session = console.sessions.load(request.cookies.get(COOKIE))
        signed_in = session is not None and console.users.current(session)
        if signed_in and session is not None and await console.signed_out.revoked(session):
            signed_in = False  # signed out, in this browser or another: a copy is worth nothing
        if not signed_in and session is not None and session.user is not None:
            session = None  # signed out, a user removed, or a password changed: it is over
        scope["state"] = {**scope.get("state", {}), "session": session, "form": {}}
        if route not in PUBLIC and not signed_in:
            await self._to_login(request, route)(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS:
            try:
                scope["state"]["form"] = await _checked_form(request, session)
            except _Refused as refused:
                page = console.render(
                    request, "error.html", refused.status, title=refused.title,
                    message=refused.message,
                )  # fmt: skip
                await page(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _to_login(self, request: Request, route: str) -> Response:
        base = self.console.base
        query = request.url.query
        wanted = base + route + (f"?{query}" if query else "") if request.method == "GET" else None
        location = login_url(base, wanted)
        if request.headers.get("hx-request"):  # htmx: a redirect would land inside a fragment
            return Response(status_code=401, headers={"hx-redirect": location})
        return Response(status_code=303, headers={"location": location})


async def _checked_form(request: Request, session: Session | None) -> dict[str, str]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise _Refused(413, "Too large", "This form is over 64 KiB.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _Refused(413, "Too large", "This form is over 64 KiB.")
    form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if not csrf_matches(session, form.get("csrf") or request.headers.get("x-csrf-token")):
        raise _Refused(
            403,
            "Form refused",
            "This form did not carry the console's token: it is old, or it did not come from "
            "this console. Reload the page and try again.",
        )
    return form


def _with_headers(send: Any, *, static: bool) -> Any:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            extra = _HEADERS if static else [*_HEADERS, _NO_STORE]
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


__all__ = ["CSP", "MAX_FORM_BYTES", "Guard", "login_url", "route_path"]
