"""Asking for long work as a background job: the input is checked here, before anything
is queued (R34), so a page or the API answers a bad request at once; the job then runs
in a runner (`optout.jobs`) and its row tells how far it got."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import enrollments, imports, jobs, sequences
from optout.services.imports_csv import check_mapping
from optout.services.jobs import Job

IMPORT_KINDS = {"people": imports.PEOPLE, "companies": imports.COMPANIES}


def bulk_unenroll(
    db: Connection,
    *,
    workspace_id: int,
    statuses: Sequence[str],
    actor: str,
    now: datetime,
    sequence_id: int | None = None,
    reason: str = "bulk unenroll",
    chunk: int | None = None,
) -> Job:
    """Queue the unenrolling of every enrollment in `statuses` (of one sequence or all),
    in set-based chunks that each commit (R10); not an opt-out (R8)."""
    wanted = list(dict.fromkeys(statuses))
    wrong = set(wanted) - set(t.ACTIVE_STATUSES)
    if not wanted or wrong:
        raise InvalidInput(
            f"bulk unenroll takes active statuses ({', '.join(t.ACTIVE_STATUSES)}), "
            f"not {', '.join(sorted(wrong)) or 'nothing'}"
        )
    if chunk is not None and chunk < 1:
        raise InvalidInput("the chunk size must be at least 1")
    label = "Bulk unenroll from every sequence"
    if sequence_id is not None:
        name = sequences.spec(db, workspace_id=workspace_id, sequence_id=sequence_id).name
        label = f"Bulk unenroll from {name}"
    scope = enrollments.count_by_status(db, workspace_id=workspace_id, sequence_id=sequence_id)
    return jobs.submit(
        db,
        workspace_id=workspace_id,
        kind="bulk_unenroll",
        params={
            "label": label,
            "statuses": wanted,
            "sequence_id": sequence_id,
            "reason": reason,
            "chunk": chunk,
            "matching_when_asked": sum(scope.get(s, 0) for s in wanted),
        },
        actor=actor,
        now=now,
    )


def csv_import(
    db: Connection,
    *,
    workspace_id: int,
    kind: str,
    path: Path,
    errors_path: Path,
    mapping: Mapping[str, str],
    actor: str,
    now: datetime,
    upload: str = "",
) -> Job:
    """Queue a people or companies import of the CSV file at `path` (kept where the web
    service received it), all or nothing (R23); its error report goes to `errors_path`."""
    if kind not in IMPORT_KINDS:
        raise InvalidInput(f"unknown import kind {kind!r}; use people or companies")
    check_mapping(IMPORT_KINDS[kind], mapping)
    if not path.is_file():
        raise InvalidInput("the uploaded file is gone; upload it again")
    return jobs.submit(
        db,
        workspace_id=workspace_id,
        kind="import",
        params={
            "label": f"Import of {path.name} ({kind})",
            "kind": kind,
            "path": str(path),
            "errors_path": str(errors_path),
            "mapping": dict(mapping),
            "file_name": path.name,
            "upload": upload,
        },
        actor=actor,
        now=now,
    )
