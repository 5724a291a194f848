"""The console's Starlette app: its state (``Console``), its templates and its routes.

Pages are rendered on the server by Jinja2 with autoescaping on; the only scripts are the
vendored htmx and Mermaid and ``static/console.js``. Every link is built from ``base`` (the
entry's ``path``), never from the request's Host, so no answer echoes what a client sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from csflow.adapters.shared import LocalState, SharedState
from csflow.engine.redaction import EVERYWHERE
from csflow.serve.console.auth import Session, Sessions, SignedOut, Throttle, Users
from csflow.serve.console.data import Records
from csflow.serve.console.present import FILTERS, pretty, with_query

if TYPE_CHECKING:
    from csflow import Project

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


@dataclass
class Console:
    """One console: where it is served, who may sign in, and the project it shows."""

    base: str  # the entry's path, e.g. /console
    users: Users
    key: bytes
    project: Project
    # What every server shares (CSFLOW_REDIS): here, the sessions signed out.
    shared: SharedState = field(default_factory=LocalState)
    throttle: Throttle = field(default_factory=Throttle)

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.key)
        self.signed_out = SignedOut(self.shared)
        self.records = Records(self.project.store)
        self.templates = _environment(self.redact)

    def redact(self, text: str) -> str:
        """``text`` with every secret this process knows as ``***``: connections' and channels'."""
        return EVERYWHERE.text(self.project.connections.redact(text))

    def render(
        self, request: Request, template: str, status: int = 200, /, **context: Any
    ) -> HTMLResponse:
        """``template`` rendered with ``context`` and what every page has (base, user, csrf)."""
        session: Session | None = request.state.session
        page = self.templates.get_template(template).render(
            base=self.base,
            user=session.user if session else None,
            csrf=session.csrf if session else "",
            path=request.url.path,
            fragment=request.headers.get("hx-request") == "true",
            **{"section": None, **context},
        )
        return HTMLResponse(page, status)


def _environment(redact: Any) -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        # Store records are dicts whose keys come and go (outcome, flow, dry_run): a missing
        # one shows as nothing, as a page should show what it can.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["pretty"] = pretty(redact)
    env.globals["with_query"] = with_query
    return env


def console_app(console: Console) -> Starlette:
    """The ASGI app of ``console``, to be served under ``console.base``."""
    from csflow.serve.console.guard import Guard
    from csflow.serve.console.pages import Pages
    from csflow.serve.console.signin import SignIn
    from csflow.serve.console.talk import Talk

    pages, signin, talk = Pages(console), SignIn(console), Talk(console)
    routes = [
        Route("/", pages.flows, name="flows"),
        Route("/flows/{name}", pages.flow, name="flow"),
        Route("/runs", pages.runs, name="runs"),
        Route("/runs/{run_id}", pages.run, name="run"),
        Route("/conversations", talk.conversations, name="conversations"),
        Route("/conversations/{conversation_id}", talk.conversation, name="conversation"),
        Route("/chat", talk.chat, name="chat"),
        Route("/chat", talk.say, methods=["POST"], name="say"),
        Route("/login", signin.page, name="login"),
        Route("/login", signin.login, methods=["POST"]),
        Route("/logout", signin.logout, methods=["POST"], name="logout"),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/{rest:path}", pages.not_found),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, console=console)])
    app.router.redirect_slashes = False  # its redirect echoes the Host: ours are fixed paths
    return app


__all__ = ["Console", "console_app"]
