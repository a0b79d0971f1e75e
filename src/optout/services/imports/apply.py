"""Applying a checked import file, whatever its kind (R23, DESIGN guarantee 6): whole, in
the caller's transaction, or in parts (`in_parts.apply_in_parts`), each its own short
transaction; either way one `import_applied` event with the totals and the same report.

A kind gives its part (`part(db, *, workspace_id, file, start, stop, actor, now)`, which
applies the items `start:stop` and returns what it did) and the totals it starts from.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Generic, Protocol

from sqlalchemy.engine import Connection, Engine

from optout.db import statistics
from optout.services.imports.csv_files import Parsed
from optout.services.imports.reporting import ImportReport, Progress, finished, record_applied
from optout.services.in_parts import MOST_ROWS, A, apply_in_parts


class CheckedFile(Protocol):
    @property
    def name(self) -> str | None: ...
    @property
    def parsed(self) -> Parsed: ...
    @property
    def size(self) -> int: ...


@dataclass(frozen=True)
class FileSteps(Generic[A]):
    """How one kind of checked file is applied: `part` applies some of its items and
    returns its counts (a dataclass with `created` and `updated`; its other counts go in
    the event's detail), added up from `nothing`."""

    kind: str
    part: Callable[..., A]
    nothing: A


def finish_file(
    db: Connection,
    steps: FileSteps[A],
    *,
    workspace_id: int,
    file: CheckedFile,
    applied: A,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """After the last part: refresh the planner statistics and record one
    `import_applied` event with the totals."""
    totals = asdict(applied)  # type: ignore[call-overload]
    created, updated = totals.pop("created"), totals.pop("updated")
    statistics.after_bulk_load(db, created + updated)
    report = ImportReport(
        kind=steps.kind,
        rows=file.parsed.rows,
        created=created,
        updated=updated,
        unchanged=file.size - created - updated,
        errors=[],
        applied=True,
    )
    record_applied(db, report, file.name, workspace_id=workspace_id, actor=actor, now=now, **totals)
    return finished(report, progress)


def apply_whole(
    db: Connection, steps: FileSteps[A], *, file: CheckedFile, progress: Progress | None = None,
    **common: Any,
) -> ImportReport:  # fmt: skip
    """The whole checked file in the caller's transaction. `common`: workspace_id, actor,
    now."""
    applied = steps.part(db, file=file, start=0, stop=file.size, **common)
    return finish_file(db, steps, file=file, applied=applied, progress=progress, **common)


def apply_file_in_parts(
    engine: Engine,
    transaction: Callable[[], AbstractContextManager[Connection]],
    steps: FileSteps[A],
    *,
    file: CheckedFile,
    progress: Progress | None = None,
    most: int = MOST_ROWS,
    **common: Any,
) -> ImportReport:
    """The checked file part by part, each its own short transaction opened by
    `transaction()`; the last part records the totals. `common`: workspace_id, actor,
    now."""
    return apply_in_parts(
        engine,
        transaction,
        total=file.size,
        part=lambda db, start, stop: steps.part(db, file=file, start=start, stop=stop, **common),
        nothing=steps.nothing,
        finish=lambda db, applied: finish_file(
            db, steps, file=file, applied=applied, progress=progress, **common
        ),
        progress=progress,
        most=most,
    )
