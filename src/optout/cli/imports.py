"""`optout import ...`: people, companies, or a CSV straight into an exclusion list (R23).

Nothing is half-imported: every row is checked before anything is written, and when any
row cannot be used, the error report (row, column, value, reason) is written beside the
input, nothing is written, and the command exits 2. A file is then applied in parts, each
committed on its own, so the write lock is never held for long; an exclusion list is one
short save, and the enrollments an exclusion that unenrolls on save ends are ended after
it, in parts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.engine import Engine

from optout.cli.app import (
    EXIT_BAD_INPUT,
    Env,
    JsonOption,
    NowOption,
    app,
    env_of,
    fail,
    moment,
    open_engine,
)
from optout.cli.render import console, emit_json, plain
from optout.db.engine import read_transaction
from optout.errors import ConfirmationRequired
from optout.filters import Level
from optout.services.imports import exclusion_lists, people_files, reporting
from optout.services.imports.reporting import ImportReport

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import CSV files: people, companies, or a column straight into an exclusion.",
)
app.add_typer(import_app, name="import")

LARGE_FILE_BYTES = 256 * 1024  # from this size on, a progress bar (on a terminal)

FileArgument = Annotated[
    Path,
    typer.Argument(
        exists=True, dir_okay=False, readable=True, help="The CSV file (UTF-8, header row)."
    ),
]
MapOption = Annotated[
    list[str],
    typer.Option(
        "--map",
        help="Column=field, repeatable: --map Email=email --map Status=status "
        "--map 'Lead Source=fields.lead_source'.",
    ),
]
ErrorsOption = Annotated[
    Path | None,
    typer.Option(
        "--errors",
        dir_okay=False,
        help="Where to write the error report (default: FILE.errors.csv beside the input).",
    ),
]


def error_report_path(source: Path, errors: Path | None) -> Path:
    return errors if errors is not None else source.with_name(f"{source.stem}.errors.csv")


@contextmanager
def progress_for(source: Path, label: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress callback drawing a bar on stderr, for large files on a terminal."""
    err = console(stderr=True)
    if not err.is_terminal or source.stat().st_size < LARGE_FILE_BYTES:
        yield None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextmanager
def writing(env: Env) -> Iterator[tuple[Engine, int]]:
    """An engine of its own and the workspace's id, for an import applied in parts, each
    part committed on its own."""
    with env.workspace() as (_, ws):
        pass
    engine = open_engine()
    try:
        yield engine, ws.id
    finally:
        engine.dispose()


def _report(report: ImportReport, *, source: Path, errors: Path | None, json_output: bool) -> None:
    """Say what an import did; or write the error report and exit 2 (inside the
    transaction, which the exit rolls back)."""
    if report.errors:
        destination = error_report_path(source, errors)
        with destination.open("w", newline="", encoding="utf-8") as out:
            reporting.write_error_report(report, out)
        if json_output:
            emit_json({**_summary(report), "error_report": str(destination)})
        raise fail(
            f"{len(report.errors)} row(s) of {source.name} cannot be used; nothing was "
            f"imported. Error report: {destination}",
            EXIT_BAD_INPUT,
        )
    if json_output:
        emit_json(_summary(report))
        return
    console().print(_report_table(report, source))


def _summary(report: ImportReport) -> dict[str, Any]:
    data = dict(plain(report))
    data["error_count"] = len(report.errors)
    return data


def _report_table(report: ImportReport, source: Path) -> Table:
    table = Table(title=f"Imported {source.name} ({report.kind})", title_justify="left")
    for column in ("rows", "created", "updated", "unchanged"):
        table.add_column(column, justify="right")
    table.add_row(str(report.rows), str(report.created), str(report.updated), str(report.unchanged))
    return table


@import_app.command("people")
def import_people(
    ctx: typer.Context,
    source: FileArgument,
    mapping: MapOption,
    errors: ErrorsOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create or update people from a CSV, mapping its columns to fields with --map.

    Fields: email, first_name, last_name, title, status, company_domain, company_name,
    email_opt_out, crm_id, fields.<name>. Re-importing the same file changes nothing; no
    import clears an opt-out or a bounce.
    """
    _import_file(ctx, "people", source, mapping, errors=errors, now=now, json_output=json_output)


def _import_file(
    ctx: typer.Context,
    kind: str,
    source: Path,
    mapping: list[str],
    *,
    errors: Path | None,
    now: str | None,
    json_output: bool,
) -> None:
    """The whole file is read and checked before any write (a companies file's links in a
    transaction that only reads); then it is applied in parts, each committed on its own,
    so the write lock is never held for long (an unsubscribe waits behind one part only)."""
    fields = people_files.parse_mapping(mapping)
    env = env_of(ctx)
    at = moment(now)
    with (
        source.open(newline="", encoding="utf-8-sig") as stream,
        progress_for(source, f"importing {source.name}") as progress,
        writing(env) as (engine, ws),
    ):
        checked = people_files.check_import(
            lambda: read_transaction(engine),
            kind=kind,
            workspace_id=ws,
            source=stream,
            mapping=fields,
            progress=progress,
        )
        report = checked.refused or people_files.apply_checked(
            engine, engine.begin, checked, workspace_id=ws, actor=env.actor, now=at,
            progress=progress,
        )  # fmt: skip
    _report(report, source=source, errors=errors, json_output=json_output)


@import_app.command("companies")
def import_companies(
    ctx: typer.Context,
    source: FileArgument,
    mapping: MapOption,
    errors: ErrorsOption = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create or update companies from a CSV, mapping its columns to fields with --map.

    Fields: domain, name, parent_domain (links it under its parent), crm_id,
    fields.<name>. Re-importing the same file changes nothing.
    """
    _import_file(ctx, "companies", source, mapping, errors=errors, now=now, json_output=json_output)


@import_app.command("exclusion-list")
def import_exclusion_list(
    ctx: typer.Context,
    source: FileArgument,
    column: Annotated[str, typer.Option("--column", help="The column holding the values.")],
    exclusion: Annotated[
        str, typer.Option("--exclusion", help="The exclusion to create or add the values to.")
    ],
    level: Annotated[
        Level,
        typer.Option("--level", help="company: a list of domains; people: of addresses."),
    ],
    errors: ErrorsOption = None,
    confirm: Annotated[
        bool, typer.Option("--confirm", help="Save even when it excludes many.")
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Import one column of a CSV (domains or addresses) straight into an exclusion list.

    Every unusable row is reported and nothing is half-imported; values already listed
    are left as they are.
    """
    env = env_of(ctx)
    at = moment(now)
    try:
        with (
            source.open(newline="", encoding="utf-8-sig") as stream,
            progress_for(source, f"importing {source.name}") as progress,
            writing(env) as (engine, ws),
        ):
            report = exclusion_lists.import_exclusion_list_in_parts(
                engine,
                engine.begin,
                workspace_id=ws,
                source=stream,
                column=column,
                exclusion=exclusion,
                level=level,
                actor=env.actor,
                now=at,
                progress=progress,
                confirm=confirm,
            )
        _report(report, source=source, errors=errors, json_output=json_output)
    except ConfirmationRequired as exc:
        raise fail(f"{exc.message}; re-run with --confirm to save", EXIT_BAD_INPUT) from None
