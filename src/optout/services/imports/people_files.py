"""People CSV imports (R23, R34), and the one door for a people or companies file: read
and checked (`check_import`), then applied in parts (`apply_checked`).

Every row is validated before anything is written. When any row cannot be used the
report lists each problem (row, column, value, reason) and nothing is written at all;
otherwise the rows are applied set-based (`write`), followed by one
`import_applied` event. A large people or companies file is read and checked before
any write (`check_import`) and applied in parts of at most CHUNK_ROWS rows, each part
its own short transaction sized by how long the last one held the write lock
(`apply_checked`), so no import holds the lock for long (an unsubscribe waits behind
one part at most). Identity is
the normalized email (people; every person with it) or domain (companies). An empty
cell never erases a stored value, custom fields merge into the existing ones (the file
wins for its keys), and a re-import of the same file changes nothing. No import clears
an opt-out or a bounce (R33).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.country_zones import zone_of_country
from optout.errors import InvalidInput
from optout.services.directory import association
from optout.services.enforcement import Removal
from optout.services.imports.apply import FileSteps, apply_file_in_parts, apply_whole, finish_file
from optout.services.imports.company_files import (
    COMPANY_STEPS,
    CompanyFile,
    companies_rejected,
    named_company,
    read_companies,
)
from optout.services.imports.csv_files import (
    Kind,
    Parsed,
    custom_fields,
    domain_value,
    email_value,
    opt_out_value,
    parse_rows,
    read_csv,
    text_value,
    zone_value,
)
from optout.services.imports.reporting import ImportReport, Progress, rejected
from optout.services.imports.write import (
    recheck_ids,
    staged_companies,
    staged_company_ids,
    staged_people,
    staged_people_ids,
    write_companies,
    write_people,
)
from optout.services.in_parts import LEAST_ROWS, MOST_ROWS
from optout.services.staging import stage_rows
from optout.services.suppression import optouts

PEOPLE = Kind(
    name="people",
    identity="email",
    fields={
        "email": email_value,
        "first_name": text_value(200),
        "last_name": text_value(200),
        "title": text_value(300),
        "status": text_value(100),
        "company_domain": domain_value,
        "company_name": text_value(300),
        "email_opt_out": opt_out_value,
        "crm_id": text_value(64),
        # The person's time zone; else the one zone of their country, when it has one.
        "time_zone": zone_value,
        "country": text_value(100),
    },
    requires={"company_name": "company_domain"},
)

# How the mapping page names the fields a column can feed.
FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Job title",
    "status": "Lead status",
    "company_domain": "Company domain",
    "company_name": "Company name",
    "email_opt_out": "Opted out of email",
    "crm_id": "CRM record id",
    "time_zone": "Time zone",
    "country": "Country",
    "domain": "Domain",
    "name": "Name",
    "parent_domain": "Parent company's domain",
}


def parse_mapping(pairs: Sequence[str]) -> dict[str, str]:
    """`["Email=email", "Industry=fields.industry"]` as {column: field}; InvalidInput on a
    pair that is not `Column=field` or a column given twice. Fields are checked by the
    import that uses the mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, field = pair.rpartition("=")
        column, field = column.strip(), field.strip()
        if not sep or not column or not field:
            raise InvalidInput(f"mapping {pair!r}: write Column=field, e.g. Email=email")
        if column in mapping:
            raise InvalidInput(f"mapping: column {column!r} is mapped twice")
        mapping[column] = field
    return mapping


CHUNK_ROWS = MOST_ROWS  # addresses applied per transaction at most
MIN_PART_ROWS = LEAST_ROWS


@dataclass(frozen=True)
class PeopleFile:
    """A people CSV read and checked, nothing written yet: reading happens before any
    transaction opens, so no lock is held while a large file is parsed."""

    name: str | None
    parsed: Parsed
    people: list[dict[str, Any]]  # the staged row of each address, in file order
    companies: dict[str, dict[str, Any]]  # domain -> the staged row of each company named

    @property
    def size(self) -> int:
        """How many addresses there are to apply (one record per address)."""
        return len(self.parsed.records)


@dataclass(frozen=True)
class Applied:
    """What the parts of a people import applied so far, added up part by part."""

    created: int = 0
    updated: int = 0
    companies_created: int = 0
    linked_by_email_domain: int = 0
    opted_out: int = 0
    enrollments_ended: int = 0

    def __add__(self, other: Applied) -> Applied:
        return Applied(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


def read_people(
    *, source: TextIO, mapping: Mapping[str, str], progress: Progress | None = None
) -> PeopleFile:
    """Read and check a people CSV (InvalidInput for a file-level problem; unusable cells
    are in `parsed.errors`). No database is touched."""
    data = read_csv(source)
    parsed = parse_rows(PEOPLE, data, mapping, progress)
    if parsed.errors:
        return PeopleFile(data.name, parsed, [], {})
    people = [_person_row(email, record) for email, record in parsed.records.items()]
    return PeopleFile(data.name, parsed, people, _companies_of_people(parsed))


def parts(file: PeopleFile, size: int = CHUNK_ROWS) -> list[tuple[int, int]]:
    """The (start, stop) of each part of a checked file, in order; the last one finishes."""
    return [(start, min(start + size, file.size)) for start in range(0, file.size, size)]


def people_rejected(file: PeopleFile, progress: Progress | None = None) -> ImportReport | None:
    """The report refusing the whole file when any row cannot be used, else None."""
    if not file.parsed.errors:
        return None
    return rejected("people", file.parsed.rows, file.parsed.errors, progress)


def apply_people_part(
    db: Connection,
    *,
    workspace_id: int,
    file: PeopleFile,
    start: int,
    stop: int,
    actor: str,
    now: datetime,
) -> Applied:
    """Apply the addresses `start:stop` of a checked file, whole: their people, companies,
    links, opt-outs (R1) and the re-check of changed people (R14) commit together. The
    parts of a file may commit one by one; each leaves the data consistent, and applying
    a part again changes nothing."""
    parsed = file.parsed
    mapped = frozenset(parsed.columns)
    custom = any(field.startswith("fields.") for field in mapped)
    part = file.people[start:stop]
    domains = dict.fromkeys(row["company_domain"] for row in part if row["company_domain"])
    stage_rows(db, staged_companies, [file.companies[domain] for domain in domains])
    stage_rows(db, staged_people, part)
    companies = write_companies(
        db, workspace_id=workspace_id, mapped=frozenset(), custom=False, now=now
    )
    written = write_people(db, workspace_id=workspace_id, mapped=mapped, custom=custom, now=now)
    linked = association.associate(
        db,
        workspace_id=workspace_id,
        people=staged_people_ids(workspace_id),
        companies=staged_company_ids(workspace_id) if companies.created else None,
        now=now,
        actor=actor,
        cause="import",
    )
    opted_out, removal = 0, Removal(0, 0)
    if "email_opt_out" in mapped:
        opted_out, removal = optouts.opt_out_all(
            db,
            workspace_id=workspace_id,
            emails=sa.select(staged_people.c.email).where(staged_people.c.opt_out.is_(True)),
            actor=actor,
            channel="import",
            now=now,
            reason=f"import of {file.name or 'a CSV file'}",
        )
    rechecked = recheck_ids(
        db, workspace_id=workspace_id, ids=written.updated_ids, actor=actor, now=now, cause="import"
    )
    return Applied(
        created=written.created,
        updated=written.updated,
        companies_created=len(companies.created) + linked.companies_created,
        linked_by_email_domain=linked.linked,
        opted_out=opted_out,
        enrollments_ended=removal.enrollments_ended
        + rechecked.enrollments_ended
        + linked.removal.enrollments_ended,
    )


def finish_people(db: Connection, **kw: Any) -> ImportReport:
    """After the last part: the planner statistics and one `import_applied` event."""
    return finish_file(db, PEOPLE_STEPS, **kw)


# Late-bound: a part is always `apply_people_part` as the module holds it.
PEOPLE_STEPS = FileSteps("people", lambda db, **kw: apply_people_part(db, **kw), Applied())


def import_people(
    db: Connection,
    *,
    workspace_id: int,
    source: TextIO,
    mapping: Mapping[str, str],
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Create or update people by address, in one transaction; `company_domain` creates
    missing companies, a true `email_opt_out` opts the address out (channel `import`), a
    false one does nothing. Changed people are re-checked against enforced exclusions
    (R14). A large file is better checked with `check_import` and applied in parts with
    `apply_checked`."""
    file = read_people(source=source, mapping=mapping, progress=progress)
    refused = people_rejected(file, progress)
    if refused is not None:
        return refused
    return apply_whole(
        db, PEOPLE_STEPS, file=file, progress=progress, workspace_id=workspace_id, actor=actor,
        now=now,
    )  # fmt: skip


# --- helpers -----------------------------------------------------------------------------------


def _person_row(email: str, record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "email": email,
        "email_domain": email.rsplit("@", 1)[1],
        "first_name": record.get("first_name"),
        "last_name": record.get("last_name"),
        "title": record.get("title"),
        "status": record.get("status"),
        "company_domain": record.get("company_domain"),
        "company_id": None,
        "fields": custom_fields(record),
        "opt_out": bool(record.get("email_opt_out")),
        "crm_id": record.get("crm_id"),
        "time_zone": record.get("time_zone") or zone_of_country(record.get("country")),
    }


def _companies_of_people(parsed: Parsed) -> dict[str, dict[str, Any]]:
    """The companies the people name, each once; the first name given for a domain names
    it if it is created. Existing companies are never renamed by a people import."""
    names: dict[str, str | None] = {}
    for record in parsed.records.values():
        domain = record.get("company_domain")
        if domain is not None and names.get(domain) is None:
            names[domain] = record.get("company_name")
    return {domain: {**named_company(domain), "name": name} for domain, name in names.items()}


@dataclass(frozen=True)
class CheckedImport:
    """A people or companies file read and checked before any write: `refused` when any
    row cannot be used (nothing is written), else applied with `steps`."""

    file: PeopleFile | CompanyFile
    refused: ImportReport | None
    steps: FileSteps[Any]


def check_import(
    reading: Callable[[], AbstractContextManager[Connection]],
    *,
    kind: str,
    workspace_id: int,
    source: TextIO,
    mapping: Mapping[str, str],
    progress: Progress | None = None,
) -> CheckedImport:
    """Read and check a people or companies file; a companies file's links are checked
    in the transaction `reading()` opens (one that only reads will do). Nothing is
    written."""
    if kind == "people":
        people = read_people(source=source, mapping=mapping, progress=progress)
        return CheckedImport(people, people_rejected(people, progress), PEOPLE_STEPS)
    companies = read_companies(source=source, mapping=mapping, progress=progress)
    with reading() as db:
        refused = companies_rejected(
            db, workspace_id=workspace_id, file=companies, progress=progress
        )
    return CheckedImport(companies, refused, COMPANY_STEPS)


def apply_checked(
    engine: Engine,
    transaction: Callable[[], AbstractContextManager[Connection]],
    checked: CheckedImport,
    **kw: Any,
) -> ImportReport:
    """A checked file part by part (`apply.apply_file_in_parts`); `kw`:
    workspace_id, actor, now, progress."""
    return apply_file_in_parts(
        engine, transaction, checked.steps, file=checked.file, most=CHUNK_ROWS, **kw
    )
