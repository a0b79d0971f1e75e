"""The root command: global options, one transaction per command, errors to exit codes.

Commands parse their arguments, open one transaction here (`Env.workspace()`),
call services and format what they return. Exit codes: 0 success, 2 bad input
(malformed value, bad filter, a save that needs --confirm, usage errors), 1 for
anything else that went wrong (not found, conflict, database unreachable).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine
from typer.core import TyperGroup

from optout import deployment
from optout.clock import as_stored, utcnow
from optout.config import Settings
from optout.db import conflicts
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import alembic_config, upgrade
from optout.errors import (
    ConfirmationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    OptoutError,
)
from optout.services import workspaces
from optout.services.workspaces import Workspace

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def exit_code(error: OptoutError) -> int:
    """Bad input (InvalidFilter included) and a missing confirmation are the caller's to fix."""
    return EXIT_BAD_INPUT if isinstance(error, InvalidInput | ConfirmationRequired) else EXIT_FAILED


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    """Print one error line on stderr; the caller raises what this returns."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


class OptoutGroup(TyperGroup):
    """Translates optout's errors into one stderr line and an exit code, once, for every
    command below the root."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return conflicts.run_unit(lambda: self._invoke_once(ctx))
        except OptoutError as exc:
            raise fail(exc.message, exit_code(exc)) from None
        except sa.exc.OperationalError as exc:
            url = sa.make_url(Settings.from_env().database_url).render_as_string()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise fail(f"cannot use the database {url}: {reason}") from None

    def _invoke_once(self, ctx: Any) -> Any:
        """The command, with its arguments as parsed: a run again after a deadlock (nothing
        committed yet, `optout.db.conflicts`) parses them anew."""
        protected, rest = list(ctx._protected_args), list(ctx.args)
        try:
            return super().invoke(ctx)
        finally:
            ctx._protected_args, ctx.args = protected, rest


app = typer.Typer(
    name="optout",
    cls=OptoutGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    # Help is plain text: brackets such as `[[steps]]` print as written, never as markup.
    rich_markup_mode=None,
    help=(
        "Decide, explain and enforce who may be emailed: opt-outs, exclusions, "
        "audiences and eligibility. The database comes from OPTOUT_DATABASE_URL "
        "(default: sqlite file var/optout.sqlite3)."
    ),
)


def default_actor() -> str:
    try:
        login = getpass.getuser()
    except (OSError, KeyError):
        login = "user"
    return f"{login}@cli"


@dataclass(frozen=True)
class Env:
    """What every command gets from the root: the workspace slug and who is acting."""

    workspace_slug: str
    actor: str

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One unit of work on a database brought to the current schema first (idempotent)."""
        engine = open_engine()
        try:
            ensure_schema(engine)
            with engine.begin() as db:
                yield db
        finally:
            engine.dispose()

    @contextmanager
    def workspace(self) -> Iterator[tuple[Connection, Workspace]]:
        """The transaction and the selected workspace, or NotFound saying how to create it."""
        with self.transaction() as db:
            try:
                found = workspaces.get(db, slug=self.workspace_slug)
            except NotFound:
                raise NotFound(
                    f"no workspace {self.workspace_slug!r}; create it with "
                    f"`optout init --workspace {self.workspace_slug}` (or build the demo: "
                    "`optout demo`)"
                ) from None
            yield db, found


def open_engine() -> Engine:
    return create_engine(Settings.from_env().database_url)


def shared_settings(engine: Engine) -> Settings:
    """The environment's settings, completed with what the installation keeps in its
    database (link keys, public address, mail relay), on the current schema."""
    ensure_schema(engine)
    return deployment.completed(Settings.from_env(), engine)


@cache
def _head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def ensure_schema(engine: Engine) -> None:
    """Migrate to the current schema, unless a cheap look shows the database is there
    already: every command runs this first, so none needs `optout init` beforehand."""
    with engine.connect() as db:
        inspector = sa.inspect(db)
        if inspector.has_table("alembic_version"):
            current = set(db.scalars(sa.text("SELECT version_num FROM alembic_version")))
            if current == {_head_revision()}:
                _check_tables(engine, set(inspector.get_table_names()))
                return
    upgrade(engine)


def _check_tables(engine: Engine, present: set[str]) -> None:
    """A database stamped with the current revision but missing tables was made by an
    earlier build of the same migration: say so, instead of failing on some query."""
    missing = sorted(set(t.metadata.tables) - present)
    if missing:
        url = engine.url.render_as_string(hide_password=True)
        raise Conflict(
            f"the database {url} was made by an earlier build of optout's schema (missing "
            f"tables: {', '.join(missing)}) and cannot be migrated in place; move it away or "
            "delete it (for the default file: `make clean` or rm var/optout.sqlite3), or set "
            "OPTOUT_DATABASE_URL to a new database"
        )


def env_of(ctx: typer.Context) -> Env:
    env = ctx.find_root().obj
    if not isinstance(env, Env):  # pragma: no cover - the root callback always sets it
        raise RuntimeError("optout commands run below the root command")
    return env


@app.callback()
def root(
    ctx: typer.Context,
    workspace: Annotated[
        str,
        typer.Option(
            "--workspace",
            "-w",
            envvar="OPTOUT_WORKSPACE",
            help="Workspace (tenant) slug to work in.",
            show_envvar=True,
        ),
    ] = "demo",
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            envvar="OPTOUT_ACTOR",
            help="Who is acting, as recorded in the audit log (default: your login name + @cli).",
            show_envvar=True,
        ),
    ] = None,
) -> None:
    """optout: who may be emailed, and why."""
    ctx.obj = Env(workspace_slug=workspace, actor=(actor or "").strip() or default_actor())


# Options shared by several commands.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
NowOption = Annotated[
    str | None,
    typer.Option(
        "--now",
        help="Work at this ISO time (UTC) instead of the clock, for reproducible scripts.",
    ),
]


def moment(now: str | None) -> datetime:
    """The time a command works at: the clock, or `--now` when given."""
    if now is None:
        return utcnow()
    try:
        return as_stored(datetime.fromisoformat(now))
    except ValueError:
        raise InvalidInput(f"--now {now!r} is not an ISO date or time") from None
