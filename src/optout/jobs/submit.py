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
from optout.filters import Level
from optout.jobs import store
from optout.jobs.store import Job
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves
from optout.services.filters import read_filter
from optout.services.imports import company_files, people_files
from optout.services.imports.csv_files import check_mapping
from optout.services.naming import clean_name
from optout.services.sequences import definitions

IMPORT_KINDS = {"people": people_files.PEOPLE, "companies": company_files.COMPANIES}


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
        name = definitions.spec(db, workspace_id=workspace_id, sequence_id=sequence_id).name
        label = f"Bulk unenroll from {name}"
    scope = enrolling.count_by_status(db, workspace_id=workspace_id, sequence_id=sequence_id)
    return store.submit(
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
    return store.submit(
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


def exclusion_save(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    level: str,
    filter: str,
    enabled: bool,
    exclude_from_sequences: bool,
    unenroll_existing_on_save: bool,
    actor: str,
    now: datetime,
    exclusion_id: int | None = None,
) -> Job:
    """Queue a confirmed save of an exclusion that unenrolls many (R13, R22): the save and
    its unenroll run in one transaction in the background, as they would in the request.
    The name, level and filter are checked now; what only the save can tell (a name
    taken meanwhile) makes the job fail with the reason, with nothing saved."""
    clean = clean_name(name, what="exclusion") if name or exclusion_id is None else ""
    try:
        lvl = Level(level)
    except ValueError:
        raise InvalidInput(f"level must be 'company' or 'people', not {level!r}") from None
    read_filter(filter, lvl)
    if exclusion_id is not None:
        current = saves.get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
        clean = clean or current.name
    return store.submit(
        db,
        workspace_id=workspace_id,
        kind="exclusion_save",
        params={
            "label": f"Save of the exclusion {clean}",
            "exclusion_id": exclusion_id,
            "name": clean,
            "level": lvl.value,
            "filter": filter,
            "enabled": enabled,
            "exclude_from_sequences": exclude_from_sequences,
            "unenroll_existing_on_save": unenroll_existing_on_save,
        },
        actor=actor,
        now=now,
    )
