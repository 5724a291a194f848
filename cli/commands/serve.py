"""``csflow serve``: the channels of channels.yaml (spec §9), served to chat platforms."""

from __future__ import annotations

import os
from pathlib import Path

import click

from csflow import UsageError
from csflow.adapters.shared import REDIS_ENV
from csflow.adapters.stores import KEEP_ENV
from csflow.cli.main import cli, guarded, project_option
from csflow.engine.store.retention import parse_keep


def _keep(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_keep(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


@cli.command()
@project_option
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Worker processes; each loads the project (the app keeps no state between requests).",
)
@click.option(
    "--ssl-certfile",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve https with this certificate (PEM); platforms call https endpoints only.",
)
@click.option("--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="Its key.")
@click.option(
    "--no-store",
    is_flag=True,
    help="Do not record the runs served (default: PROJECT/.csflow or CSFLOW_STORE).",
)
@click.option(
    "--keep",
    metavar="AGE|N runs",
    callback=_keep,
    help="How long finished runs and ended conversations stay in the run store: 30d, 12h, "
    "'500000 runs', or '30d, 500000 runs'; the same as CSFLOW_KEEP. Default: the newest "
    "100,000 runs.",
)
@click.option(
    "--redis",
    metavar="URL",
    help="Share OAuth tokens, Coffield's replay window and rate limits with every server on "
    "this Redis (redis://HOST:PORT/DB); the same as CSFLOW_REDIS. Default: within this process.",
)
@click.option(
    "--demo-keys",
    is_flag=True,
    help="Accept channels.yaml's demo defaults ({env: NAME, default: ...}) for keys that are "
    "not set. Never in production: the defaults are in the repository.",
)
@guarded
def serve(
    project_dir: Path,
    host: str,
    port: int,
    workers: int,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    no_store: bool,
    keep: str | None,
    redis: str | None,
    demo_keys: bool,
) -> None:
    """Serve the channels of channels.yaml until Ctrl+C or SIGTERM (graceful shutdown).

    Logs are JSON lines: the access log on stdout, the server's own lines on stderr.
    """
    from csflow.serve.app import create_app
    from csflow.serve.server import serve as serve_app
    from csflow.serve.server import serve_workers

    if workers > 1:
        _one_console_key()
    if redis is not None:
        os.environ[REDIS_ENV] = redis  # the workers, and the projects' connections, too
    if keep is not None:
        os.environ[KEEP_ENV] = keep  # the workers' stores, too
    # Loaded here first, in every case, so that a broken project prints its problems and
    # exits 2 before any worker starts.
    app = create_app(project_dir, os.environ, store=None if no_store else True)
    if app.channels.demo_keys and not demo_keys:
        names = ", ".join(app.channels.demo_keys)
        raise UsageError(
            f"not set: {names}. channels.yaml has demo defaults for them, which csflow serve "
            "does not use: set each to the key its platform sends, or pass --demo-keys to "
            "serve the demo values (never in production)"
        )
    if not no_store:
        os.environ["CSFLOW_SERVE_RECORD"] = "1"  # the workers, too
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise UsageError("--ssl-certfile and --ssl-keyfile go together")
    tls = (ssl_certfile, ssl_keyfile) if ssl_certfile and ssl_keyfile else None
    if workers > 1 and port == 0:
        raise UsageError("--workers needs a fixed --port: every worker listens on it")
    try:
        if workers == 1:
            serve_app(app, host, port, tls=tls)
        else:
            serve_workers(project_dir, host, port, workers, tls=tls)
    except OSError as exc:  # the port is taken, or the address is not ours
        raise UsageError(str(exc)) from None


def _one_console_key() -> None:
    """Workers share the console's signing key, so a session signed by one holds in all.

    Without CSFLOW_CONSOLE_KEY each would make its own; one made here for all of them lasts
    until this server stops (docs/reference/console.md, "Sessions").
    """
    import secrets

    from csflow.serve.console.auth import KEY_ENV

    os.environ.setdefault(KEY_ENV, secrets.token_urlsafe(32))
