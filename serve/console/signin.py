"""Signing in and out. The guard has checked the CSRF token of both forms before these run."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from csflow.serve.console.auth import COOKIE, SESSION_AGE, Session

if TYPE_CHECKING:
    from csflow.serve.console.app import Console

WRONG = "Wrong user name or password."


def safe_next(base: str, wanted: str | None) -> str:
    """Where to go after signing in: a path of this console, else its first page.

    Only a path under ``base`` with no scheme and no host: ``//evil.example``,
    ``https://evil.example`` and ``/\\evil.example`` all go to the flows page instead.
    """
    home = base + "/"
    if not wanted or "\\" in wanted or wanted.startswith("//"):
        return home
    parts = urlsplit(wanted)
    if parts.scheme or parts.netloc or not parts.path.startswith(home):
        return home
    if parts.path.startswith(f"{base}/login"):
        return home
    return wanted


class SignIn:
    def __init__(self, console: Console) -> None:
        self.console = console

    def _keep(self, request: Request, response: Response, session: Session | None) -> Response:
        if session is None:
            response.delete_cookie(COOKIE, path=self.console.base)
            return response
        response.set_cookie(
            COOKIE,
            self.console.sessions.dump(session),
            max_age=SESSION_AGE,
            path=self.console.base,  # the channels beside it never see it
            httponly=True,
            samesite="lax",  # a link from a mail into a run page still finds the session
            secure=request.url.scheme == "https",
        )
        return response

    def _form(
        self, request: Request, wanted: str, status: int = 200, **context: object
    ) -> Response:
        return self.console.render(
            request, "login.html", status, next=wanted, **{"error": None, "given": "", **context}
        )

    async def page(self, request: Request) -> Response:
        session: Session | None = request.state.session
        wanted = safe_next(self.console.base, request.query_params.get("next"))
        if session is not None and session.user is not None:
            return RedirectResponse(wanted, 303)
        if session is None:
            session = request.state.session = self.console.sessions.fresh()
        return self._keep(request, self._form(request, wanted), session)

    async def login(self, request: Request) -> Response:
        console = self.console
        form: dict[str, str] = request.state.form
        name, password = form.get("user", "").strip(), form.get("password", "")
        address = request.client.host if request.client else "unknown"
        wanted = safe_next(console.base, form.get("next"))
        wait = console.throttle.wait(name, address)
        if wait is not None:
            seconds = max(math.ceil(wait), 1)
            message = (
                f"Too many failed sign-ins for this user from this address. "
                f"Try again in {seconds} s."
            )
            response = self._form(request, wanted, 429, error=message, given=name)
            response.headers["retry-after"] = str(seconds)
            return response
        if not console.users.check(name, password):
            console.throttle.failed(name, address)
            return self._form(request, wanted, 401, error=WRONG, given=name)
        console.throttle.succeeded(name, address)
        session = console.sessions.fresh(name, console.users.fingerprint(name))
        return self._keep(request, RedirectResponse(wanted, 303), session)

    async def logout(self, request: Request) -> Response:
        session: Session | None = request.state.session
        if session is not None and session.user is not None:
            await self.console.signed_out.revoke(session)
        login = RedirectResponse(f"{self.console.base}/login", 303)
        return self._keep(request, login, None)


__all__ = ["SignIn", "safe_next"]
