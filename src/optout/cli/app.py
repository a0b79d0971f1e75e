"""The root command: global options, one transaction per command, errors to exit codes.

Commands parse their arguments, open one transaction here (`Env.workspace()`),
call services and format what they return. Exit codes: 0 success, 2 bad input
(malformed value, bad filter, a save that needs --confirm, usage errors), 1 for
anything else that went wrong (not found, conflict, database unreachable).

This module imports no database code at its top: `optout --help` and a command's own
help start without it, and each command's module is imported only when it is used
(`optout.cli.lazy`, `optout.cli.registry`).
"""

from __future__ import annotations

import getpass
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from optout.cli import coercion, collector
from optout.cli.lazy import LazyCommands, short_help
from optout.clock import as_stored, utcnow
from optout.config import Settings
from optout.errors import (
    ConfirmationRequired,
    Conflict,
    InvalidInput,
    NotFound,
    OptoutError,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

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
    command below the root; knows every command by name and imports one only when it
    is used (`LazyCommands`)."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = LazyCommands(self.commands, app)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, short_help(self.commands, name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        """The command named in `args`, imported if need be; start-up ends here."""
        found = super().resolve_command(ctx, args)
        collector.release()
        return found

    def invoke(self, ctx: Any) -> Any:
        from optout.db import conflicts

        try:
            return conflicts.run_unit(lambda: self._invoke_once(ctx))
        except OptoutError as exc:
            raise fail(exc.message, exit_code(exc)) from None
        except Exception as exc:
            unreachable = _database_unreachable(exc)
            if unreachable is None:
                raise
            raise fail(unreachable) from None

    def _invoke_once(self, ctx: Any) -> Any:
        """The command, with its arguments as parsed: a run again after a deadlock (nothing
        committed yet, `optout.db.conflicts`) parses them anew."""
        protected, rest = list(ctx._protected_args), list(ctx.args)
        try:
            return super().invoke(ctx)
        finally:
            ctx._protected_args, ctx.args = protected, rest


def _database_unreachable(exc: Exception) -> str | None:
    """The message for a database that cannot be used, or None for any other error."""
    if "sqlalchemy" not in sys.modules:
        return None
    import sqlalchemy as sa

    if not isinstance(exc, sa.exc.OperationalError):
        return None
    url = sa.make_url(Settings.from_env().database_url).render_as_string()
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return f"cannot use the database {url}: {reason}"


coercion.install()

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
        from optout.services import workspaces

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
    from optout.db.engine import create_engine

    return create_engine(Settings.from_env().database_url)


def shared_settings(engine: Engine) -> Settings:
    """The environment's settings, completed with what the installation keeps in its
    database (link keys, public address, mail relay), on the current schema."""
    from optout import deployment

    ensure_schema(engine)
    return deployment.completed(Settings.from_env(), engine)


# Where `optout.db.migrate` (which imports Alembic) finds the migrations.
MIGRATION_SCRIPTS = Path(__file__).resolve().parent.parent / "db" / "migrations"
_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision\s*(?::[^=]*)?=\s*(?:None|[\"']([^\"']+)[\"'])", re.MULTILINE
)


@cache
def _head_revision() -> str | None:
    """The newest migration's revision, read from the migration files' `revision` and
    `down_revision` lines: the one no other revises. Alembic itself (slower to import,
    and it loads every script) is asked only when the files do not read as one chain."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATION_SCRIPTS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        found, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if found is None or down is None:
            return _alembic_head()
        revisions.add(found.group(1))
        if down.group(1):
            revised.add(down.group(1))
    heads = revisions - revised
    return heads.pop() if len(heads) == 1 else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    from optout.db.migrate import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def ensure_schema(engine: Engine) -> None:
    """Migrate to the current schema, unless a cheap look shows the database is there
    already: every command runs this first, so none needs `optout init` beforehand."""
    import sqlalchemy as sa

    with engine.connect() as db:
        inspector = sa.inspect(db)
        if inspector.has_table("alembic_version"):
            current = set(db.scalars(sa.text("SELECT version_num FROM alembic_version")))
            if current == {_head_revision()}:
                _check_tables(engine, set(inspector.get_table_names()))
                return
    from optout.db.migrate import upgrade

    upgrade(engine)


def _check_tables(engine: Engine, present: set[str]) -> None:
    """A database stamped with the current revision but missing tables was made by an
    earlier build of the same migration: say so, instead of failing on some query."""
    from optout.db import tables as t

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
EmailArgument = Annotated[str, typer.Argument(help="The person's email address.")]
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
