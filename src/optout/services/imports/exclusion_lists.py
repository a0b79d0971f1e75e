"""A CSV column straight into an exclusion list (R18, R23): domains for a company-level
`company.domain in (...)`, addresses for a people-level `person.email in (...)`.

The file is read and checked before any transaction, the merged list is previewed in a
transaction that only reads, and the save is one short write. The list is one rule, so
it is saved whole (a save per part would leave several versions of one import in the
exclusion's history); what takes long after a save, ending the enrollments of an
exclusion that unenrolls on save, is done in parts after its commit.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy.engine import Connection, Engine

from optout.db.engine import read_transaction
from optout.eligibility.model import ExclusionSpec
from optout.errors import InvalidInput, NotFound
from optout.filters import Condition, Level
from optout.filters.validate import MAX_LIST
from optout.normalize import normalize_domain, normalize_email
from optout.services.exclusions import saves, unenroll
from optout.services.exclusions.preview import Preview
from optout.services.imports.csv_files import (
    CsvFile,
    RowError,
    cell,
    column_indexes,
    extra_cells,
    progress_steps,
    read_csv,
    split_values,
)
from optout.services.imports.reporting import (
    ImportReport,
    Progress,
    finished,
    record_applied,
    rejected,
)
from optout.services.naming import clean_name


@dataclass(frozen=True)
class ListFile:
    """One column of a CSV read and checked, nothing read from the database yet."""

    name: str | None
    rows: int
    values: list[str]  # distinct, normalized, in file order
    errors: list[RowError]


@dataclass(frozen=True)
class ListSave:
    """What importing a checked file into an exclusion saves: worked out in a transaction
    that only reads (the merged list and its preview, R22), saved in a short one."""

    name: str
    level: Level
    current: ExclusionSpec | None  # None: the exclusion is created
    added: list[str]
    filter: Condition
    impact: Preview | None  # None: nothing to save (every value is listed already)


def read_exclusion_list(
    *,
    source: TextIO | CsvFile,
    column: str,
    level: Level,
    progress: Progress | None = None,
) -> ListFile:
    """Read the column of domains (level company) or addresses (level people) and check
    every row; no database is touched."""
    normalize = _domain if level is Level.COMPANY else _email
    what = "domain" if level is Level.COMPANY else "email address"
    data = read_csv(source)
    index = column_indexes(data.header, [column])[column]
    values: dict[str, None] = {}
    errors: list[RowError] = []
    for number, cells in progress_steps(data.records, progress):
        misaligned = extra_cells(number, cells, data.header)
        if misaligned is not None:
            errors.append(misaligned)
            continue
        raw = cell(cells, index)
        parts = split_values(raw)
        if not parts:
            errors.append(RowError(number, column, raw, f"empty: every row needs a {what}"))
        for part in parts:
            try:
                values[normalize(part)] = None
            except InvalidInput as exc:
                errors.append(RowError(number, column, part, exc.message))
    return ListFile(data.name, len(data.records), list(values), errors)


def list_rejected(file: ListFile, progress: Progress | None = None) -> ImportReport | None:
    """The report refusing the whole file when any row cannot be used, else None."""
    if not file.errors:
        return None
    return rejected("exclusion_list", file.rows, file.errors, progress)


def level_of(level: str | Level) -> Level:
    try:
        return Level(level)
    except ValueError:
        raise InvalidInput(f"level must be 'company' or 'people', not {level!r}") from None


def existing(db: Connection, *, workspace_id: int, name: str, level: Level) -> ExclusionSpec | None:
    """The exclusion the values go into, if it exists; InvalidInput when it is not a plain
    list of the level's field (nothing could be merged into it)."""
    try:
        current = saves.get(db, workspace_id=workspace_id, name=name)
    except NotFound:
        return None
    _listed_values(current, level, _field(level))
    return current


def plan_save(
    db: Connection,
    *,
    workspace_id: int,
    file: ListFile,
    exclusion: str,
    level: Level,
    now: datetime,
    confirm: bool,
) -> ListSave:
    """The list merged with the exclusion's, and the save's preview: ConfirmationRequired
    as the save would (R22), InvalidInput when the list would be too long. Only reads."""
    name = clean_name(exclusion, what="exclusion")
    field = _field(level)
    current = existing(db, workspace_id=workspace_id, name=name, level=level)
    listed = _listed_values(current, level, field) if current is not None else ()
    already = set(listed)
    added = [value for value in file.values if value not in already]
    if len(listed) + len(added) > MAX_LIST:
        raise InvalidInput(
            f"exclusion {name!r} would list {len(listed) + len(added)} values; at most "
            f"{MAX_LIST} fit in one list: split the file over several exclusions"
        )
    node = Condition(field, "in", (*listed, *added))
    impact: Preview | None = None
    if current is None:
        draft = saves.draft_of(name=name, level=level, filter=node)
        impact = saves.impact_of_new(
            db, workspace_id=workspace_id, draft=draft, now=now, confirm=confirm
        )
    elif added:
        _, draft = saves.changed(db, workspace_id=workspace_id, name=name, filter=node)
        impact = saves.guard(db, workspace_id=workspace_id, draft=draft, now=now, confirm=confirm)
    return ListSave(name, level, current, added, node, impact)


def save_list(
    db: Connection,
    *,
    workspace_id: int,
    file: ListFile,
    plan: ListSave,
    actor: str,
    now: datetime,
    confirm: bool,
    unenroll_now: bool = True,
) -> tuple[ImportReport, ExclusionSpec]:
    """Save the planned list (created, or the new values added) with its stored matches,
    and record the `import_applied` event; the report and the exclusion as saved."""
    common: dict[str, Any] = {
        "workspace_id": workspace_id,
        "filter": plan.filter,
        "actor": actor,
        "now": now,
        "confirm": confirm,
        "impact": plan.impact,
        "unenroll_now": unenroll_now,
    }
    if plan.current is None:
        saved = saves.create(db, name=plan.name, level=plan.level, **common).exclusion
    elif plan.added:
        saved = saves.update(db, name=plan.name, **common).exclusion
    else:
        saved = plan.current
    report = ImportReport(
        kind="exclusion_list",
        rows=file.rows,
        created=len(plan.added),
        updated=0,
        unchanged=len(file.values) - len(plan.added),
        errors=[],
        applied=True,
    )
    record_applied(
        db,
        report,
        file.name,
        workspace_id=workspace_id,
        actor=actor,
        now=now,
        exclusion=plan.name,
        exclusion_created=plan.current is None,
        exclusion_id=saved.id,
    )
    return report, saved


def import_exclusion_list(db: Connection, **kw: Any) -> ImportReport:
    """One column of domains (level company: `company.domain in (...)`) or addresses
    (level people: `person.email in (...)`) into the named exclusion, in one transaction:
    created if missing, else the new values are added to its list. Counts are of
    distinct values: `created` were added, `unchanged` were listed already. The save goes
    through the exclusion service, so the R22 guard applies (ConfirmationRequired unless
    `confirm`). `kw`: as `import_exclusion_list_in_parts`, which holds the write lock for
    less."""
    return _import_list(lambda: nullcontext(db), lambda: nullcontext(db), None, **kw)


def import_exclusion_list_in_parts(
    engine: Engine, transaction: Callable[[], AbstractContextManager[Connection]], **kw: Any
) -> ImportReport:
    """As `import_exclusion_list`, holding the write lock briefly: the file is read and
    checked, and the merged list previewed, before any write; the save is one short
    transaction, from whose commit the exclusion is in force; when the exclusion
    unenrolls on save, the enrollments it ends are ended after it, in parts
    (`exclusions.unenroll.unenroll_in_parts`)."""
    return _import_list(lambda: read_transaction(engine), transaction, engine, **kw)


def _import_list(
    reading: Callable[[], AbstractContextManager[Connection]],
    writing: Callable[[], AbstractContextManager[Connection]],
    engine: Engine | None,  # None: unenroll in the save's transaction
    *,
    workspace_id: int,
    source: TextIO | CsvFile,
    column: str,
    exclusion: str,
    level: str | Level,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
    confirm: bool = False,
) -> ImportReport:
    lvl = level_of(level)
    name = clean_name(exclusion, what="exclusion")
    with reading() as db:
        existing(db, workspace_id=workspace_id, name=name, level=lvl)
    file = read_exclusion_list(source=source, column=column, level=lvl, progress=progress)
    refused = list_rejected(file, progress)
    if refused is not None:
        return refused
    with reading() as db:
        plan = plan_save(
            db, workspace_id=workspace_id, file=file, exclusion=name, level=lvl, now=now,
            confirm=confirm,
        )  # fmt: skip
    with writing() as db:
        report, saved = save_list(
            db, workspace_id=workspace_id, file=file, plan=plan, actor=actor, now=now,
            confirm=confirm, unenroll_now=engine is None,
        )  # fmt: skip
    if engine is not None and plan.added:
        unenroll.unenroll_in_parts(
            engine, writing, workspace_id=workspace_id, exclusion=saved, actor=actor, now=now
        )
    return finished(report, progress)


def _field(level: Level) -> str:
    return "company.domain" if level is Level.COMPANY else "person.email"


def _domain(raw: str) -> str:
    return normalize_domain(raw)


def _email(raw: str) -> str:
    return normalize_email(raw).address


def _listed_values(current: ExclusionSpec, level: Level, field: str) -> tuple[str, ...]:
    """The values of an existing exclusion that is a plain `field in (...)` list."""
    if current.level is not level:
        raise InvalidInput(
            f"exclusion {current.name!r} is {current.level.value}-level; a {level.value}-level "
            "list cannot be merged into it: import into another exclusion"
        )
    node = current.filter
    if not (isinstance(node, Condition) and node.field == field and node.op == "in"):
        raise InvalidInput(
            f"exclusion {current.name!r} is not a plain '{field} in (...)' list, so the file "
            "cannot be merged into it: import into another exclusion"
        )
    value = node.value
    return tuple(str(v) for v in value) if isinstance(value, tuple) else (str(value),)
