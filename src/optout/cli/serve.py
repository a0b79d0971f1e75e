"""`optout serve`: the web app (pages, JSON API, unsubscribe links) under uvicorn, and by
default the send worker in a background thread of the same process."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Annotated
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
import typer
import uvicorn
from rich.console import Console
from rich.text import Text
from sqlalchemy.engine import Connection, Engine

from optout import deployment
from optout.cli.app import (
    JsonOption,
    app,
    ensure_schema,
    env_of,
    open_engine,
)
from optout.cli.render import console, emit_json
from optout.config import Settings
from optout.db.retry import is_busy, when_writable
from optout.errors import DatabaseBusy, NotFound
from optout.sending.worker import Mailer, run_forever
from optout.services import workspaces
from optout.services.access import members
from optout.web.api import PREFIX
from optout.web.app import create_app
from optout.web.clients import server_config

WORKER_STOP_SECONDS = 30
DATABASE_WAIT_SECONDS = 600.0


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)
    ] = 8000,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker/--no-worker",
            help="Also run the send worker in this process (off: run `optout worker` apart).",
        ),
    ] = True,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between worker passes.")] = 5.0,
    wait_for_database: Annotated[
        float,
        typer.Option(
            "--wait-for-database",
            envvar="OPTOUT_WAIT_FOR_DATABASE",
            help=(
                "Seconds to wait at start while another command (a large import) is writing "
                "to the database, before giving up."
            ),
            min=0,
        ),
    ] = DATABASE_WAIT_SECONDS,
    json_output: JsonOption = False,
) -> None:
    """Serve the web app and the JSON API; migrate the database first.

    Mail goes where OPTOUT_TRANSPORT_URL says (default: .eml files in var/outbox); links
    in it point at OPTOUT_BASE_URL. Ctrl-C stops the server and the worker.
    """
    env = env_of(ctx)
    engine = open_engine()
    # Without OPTOUT_BASE_URL, links point where this service listens; without
    # OPTOUT_ENCRYPTION_KEYS, secrets are encrypted with a key file made on first start.
    own = Settings.from_env().served_at(host, port).with_encryption_key_file()
    settings = _started(engine, own, wait=wait_for_database)
    url = f"http://{host}:{port}"
    if json_output:
        emit_json({"url": url, "api": f"{url}{PREFIX}", "worker": worker})
    else:
        with engine.connect() as db:
            _banner(
                console(), db, settings=settings, url=url, slug=env.workspace_slug, worker=worker
            )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    mailer = Mailer.from_settings(settings) if worker else None
    thread = None
    if mailer is not None:
        thread = threading.Thread(
            target=lambda: run_forever(engine, mailer=mailer, stop=stop, poll_seconds=poll),
            name="optout-worker",
            daemon=True,
        )
        thread.start()
    server = uvicorn.Server(
        server_config(create_app(settings, engine), host=host, port=port, log_level="info")
    )
    try:
        # uvicorn shuts down gracefully on Ctrl-C or SIGTERM, then raises the signal again.
        with contextlib.suppress(KeyboardInterrupt):
            server.run()
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=WORKER_STOP_SECONDS)
        if mailer is not None:
            mailer.transport.close()
        engine.dispose()


def _started(engine: Engine, own: Settings, *, wait: float) -> Settings:
    """The database brought to the current schema and the settings published and completed,
    once the database takes writes: behind a large import on SQLite this waits (saying so
    once) up to `wait` seconds, then gives up with DatabaseBusy."""

    def start() -> Settings:
        ensure_schema(engine)
        deployment.publish(own, engine)
        return deployment.completed(own, engine)

    def waiting() -> None:
        typer.echo(
            "The database is busy: another optout command (a large import, for example) is "
            f"writing to it. Waiting for it to finish before starting (at most {_span(wait)})...",
            err=True,
        )

    try:
        return when_writable(engine, start, limit=wait, waiting=waiting)
    except sa.exc.DBAPIError as exc:
        if not is_busy(exc):
            raise
        raise DatabaseBusy(
            f"the database was still busy after {_span(wait)}: another optout command is "
            "writing to it. Start the service again once it has finished, or let it wait "
            "longer with --wait-for-database SECONDS."
        ) from None


def _span(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:g} minutes"
    return f"{seconds:g} seconds"


def _banner(
    out: Console, db: Connection, *, settings: Settings, url: str, slug: str, worker: bool
) -> None:
    """Where to go and how to sign in."""
    database = sa.make_url(settings.database_url).render_as_string(hide_password=True)
    out.print(Text.assemble(("optout", "bold"), f" on {url}  (database {database})"))
    try:
        workspace = workspaces.get(db, slug=slug)
    except NotFound:
        out.print(
            Text(
                f"No workspace {slug!r} yet: create it with `optout init --workspace {slug}` "
                "(or `optout demo`), then add a user.",
                "yellow",
            )
        )
        workspace = None
    if workspace is not None:
        people = members.members(db, workspace_id=workspace.id)
        out.print(Text.assemble("  Sign in:  ", (f"{url}/login", "bold"), f"  workspace {slug!r}"))
        if people:
            listed = ", ".join(f"{m.email} ({m.role.value})" for m in people[:5])
            more = f" and {len(people) - 5} more" if len(people) > 5 else ""
            out.print(Text(f"            as {listed}{more}"))
        else:
            out.print(
                Text(
                    "            nobody can sign in yet: `optout user add EMAIL --role admin "
                    "--password-env VAR`",
                    "yellow",
                )
            )
    out.print(
        Text(
            f"  JSON API: {url}{PREFIX}  (OpenAPI: {url}/openapi.json; a key: "
            "`optout api-key create NAME --role admin`)"
        )
    )
    if worker:
        out.print(
            Text(f"  Sending:  worker on, mail to {_without_password(settings.transport_url)}")
        )
    else:
        out.print(Text("  Sending:  worker off (--no-worker): run `optout worker` to send"))
    if settings.base_url.rstrip("/") != url:
        out.print(Text(f"  Links in emails point at {settings.base_url} (OPTOUT_BASE_URL)", "dim"))
    if settings.encryption_key_file is not None:
        out.print(
            Text(
                f"  Secrets:  encrypted with the key in {settings.encryption_key_file}: "
                "back it up with the database",
                "dim",
            )
        )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
