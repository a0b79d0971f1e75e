"""A CSV column straight into an exclusion list (R18, R23): domains for a company-level
`company.domain in (...)`, addresses for a people-level `person.email in (...)`."""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from sqlalchemy.engine import Connection

from optout.eligibility.model import ExclusionSpec
from optout.errors import InvalidInput, NotFound
from optout.filters import Condition, Level
from optout.filters.validate import MAX_LIST
from optout.normalize import normalize_domain, normalize_email
from optout.services import exclusions
from optout.services.imports_csv import (
    CsvFile,
    RowError,
    cell,
    column_indexes,
    extra_cells,
    progress_steps,
    read_csv,
    split_values,
)
from optout.services.imports_report import (
    ImportReport,
    Progress,
    finished,
    record_applied,
    rejected,
)
from optout.services.naming import clean_name


def import_exclusion_list(
    db: Connection,
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
    """One column of domains (level company: `company.domain in (...)`) or addresses
    (level people: `person.email in (...)`) into the named exclusion: created if missing,
    else the new values are added to its list. Counts are of distinct values: `created`
    were added, `unchanged` were listed already. The save goes through the exclusion
    service, so the R22 guard applies (ConfirmationRequired unless `confirm`)."""
    try:
        lvl = Level(level)
    except ValueError:
        raise InvalidInput(f"level must be 'company' or 'people', not {level!r}") from None
    name = clean_name(exclusion, what="exclusion")
    field = "company.domain" if lvl is Level.COMPANY else "person.email"
    normalize = _domain if lvl is Level.COMPANY else _email
    what = "domain" if lvl is Level.COMPANY else "email address"
    try:
        current: ExclusionSpec | None = exclusions.get(db, workspace_id=workspace_id, name=name)
    except NotFound:
        current = None
    listed = _listed_values(current, lvl, field) if current is not None else ()
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
    if errors:
        return rejected("exclusion_list", len(data.records), errors, progress)
    already = set(listed)
    added = [value for value in values if value not in already]
    if len(listed) + len(added) > MAX_LIST:
        raise InvalidInput(
            f"exclusion {name!r} would list {len(listed) + len(added)} values; at most "
            f"{MAX_LIST} fit in one list: split the file over several exclusions"
        )
    node = Condition(field, "in", (*listed, *added))
    if current is None:
        exclusion_id = exclusions.create(
            db,
            workspace_id=workspace_id,
            name=name,
            level=lvl,
            filter=node,
            actor=actor,
            now=now,
            confirm=confirm,
        ).exclusion.id
    else:
        exclusion_id = current.id
        if added:
            exclusions.update(
                db,
                workspace_id=workspace_id,
                name=name,
                filter=node,
                actor=actor,
                now=now,
                confirm=confirm,
            )
    report = ImportReport(
        kind="exclusion_list",
        rows=len(data.records),
        created=len(added),
        updated=0,
        unchanged=len(values) - len(added),
        errors=[],
        applied=True,
    )
    record_applied(
        db,
        report,
        data.name,
        workspace_id=workspace_id,
        actor=actor,
        now=now,
        exclusion=name,
        exclusion_created=current is None,
        exclusion_id=exclusion_id,
    )
    return finished(report, progress)


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
