"""What an import did, or why it did nothing (R23): the report, its CSV error file, and the
one `import_applied` event of an applied import."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.engine import Connection

from optout.services import events, spreadsheet
from optout.services.imports.csv_files import RowError

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportReport:
    kind: str  # "people" | "companies" | "exclusion_list"
    rows: int  # data rows read (blank rows not counted)
    created: int
    updated: int
    unchanged: int
    errors: list[RowError]
    applied: bool  # False when errors made the whole import roll back (nothing written)


def write_error_report(report: ImportReport, destination: TextIO) -> None:
    """The report's errors as CSV: row, column, value, reason (a value or column name that a
    spreadsheet would run as a formula is written as text)."""
    writer = csv.writer(destination)
    writer.writerow(["row", "column", "value", "reason"])
    for error in report.errors:
        writer.writerow(
            [spreadsheet.cell(v) for v in (error.row, error.column, error.value, error.reason)]
        )


def rejected(
    kind: str, rows: int, errors: list[RowError], progress: Progress | None
) -> ImportReport:
    report = ImportReport(
        kind=kind,
        rows=rows,
        created=0,
        updated=0,
        unchanged=0,
        errors=sorted(errors, key=lambda e: (e.row, e.column)),
        applied=False,
    )
    return finished(report, progress)


def finished(report: ImportReport, progress: Progress | None) -> ImportReport:
    if progress is not None:
        progress(report.rows, report.rows)
    return report


def record_applied(
    db: Connection,
    report: ImportReport,
    file_name: str | None,
    *,
    workspace_id: int,
    actor: str,
    now: datetime,
    exclusion_id: int | None = None,
    **extra: Any,
) -> None:
    events.record(
        db,
        workspace_id=workspace_id,
        kind="import_applied",
        actor=actor,
        now=now,
        exclusion_id=exclusion_id,
        detail={
            "import": report.kind,
            "file": file_name,
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            **extra,
        },
    )
