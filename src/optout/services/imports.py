"""CSV imports (R23, R34): people, companies, or one column straight into an exclusion list.

Every row is validated before anything is written. When any row cannot be used the
report lists each problem (row, column, value, reason) and nothing is written at all;
otherwise the rows are applied set-based (`imports_write`), followed by one
`import_applied` event. A large people file is read before any transaction opens and
applied in parts of CHUNK_ROWS addresses, each part its own short transaction, so no
import holds the write lock for long (an unsubscribe waits behind none). Identity is
the normalized email (people; every person with it) or domain (companies). An empty
cell never erases a stored value, custom fields merge into the existing ones (the file
wins for its keys), and a re-import of the same file changes nothing. No import clears
an opt-out or a bounce (R33).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.country_zones import zone_of_country
from optout.db import statistics
from optout.db import tables as t
from optout.db.retry import make_way
from optout.errors import InvalidInput
from optout.normalize import domain_label
from optout.services import association
from optout.services.enforcement import Removal
from optout.services.imports_csv import (
    CsvFile,
    Kind,
    Parsed,
    RowError,
    custom_fields,
    domain_value,
    email_value,
    opt_out_value,
    parse_rows,
    read_csv,
    text_value,
    zone_value,
)
from optout.services.imports_lists import import_exclusion_list
from optout.services.imports_report import (
    ImportReport,
    Progress,
    finished,
    record_applied,
    rejected,
    write_error_report,
)
from optout.services.imports_write import (
    group_members,
    opt_out_staged,
    recheck_ids,
    stage_rows,
    staged_companies,
    staged_company_ids,
    staged_people,
    staged_people_ids,
    write_companies,
    write_people,
)

__all__ = [
    "Applied",
    "ImportReport",
    "PeopleFile",
    "RowError",
    "import_companies",
    "import_exclusion_list",
    "import_people",
    "parse_mapping",
    "write_error_report",
]

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

COMPANIES = Kind(
    name="companies",
    identity="domain",
    fields={
        "domain": domain_value,
        "name": text_value(300),
        "parent_domain": domain_value,
        "crm_id": text_value(64),
    },
    requires={},
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


CHUNK_ROWS = 2_000  # addresses applied per transaction at most
HOLD_SECONDS = 0.5  # what a part of a file applied in parts aims to hold the write lock
MIN_PART_ROWS = 50


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
        opted_out, removal = opt_out_staged(
            db,
            workspace_id=workspace_id,
            actor=actor,
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


def finish_people(
    db: Connection,
    *,
    workspace_id: int,
    file: PeopleFile,
    applied: Applied,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """After the last part: refresh the planner statistics and record one
    `import_applied` event with the totals."""
    statistics.after_bulk_load(db, applied.created + applied.updated)
    report = ImportReport(
        kind="people",
        rows=file.parsed.rows,
        created=applied.created,
        updated=applied.updated,
        unchanged=file.size - applied.created - applied.updated,
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
        companies_created=applied.companies_created,
        linked_by_email_domain=applied.linked_by_email_domain,
        opted_out=applied.opted_out,
        enrollments_ended=applied.enrollments_ended,
    )
    return finished(report, progress)


def apply_people_in_parts(
    engine: Engine,
    transaction: Callable[[], AbstractContextManager[Connection]],
    *,
    workspace_id: int,
    file: PeopleFile,
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Apply a checked file part by part, each part its own short transaction opened by
    `transaction()`, making way between parts (`db.retry.make_way`): the write lock is
    never held for long, so an unsubscribe or another workspace's write waits behind one
    part at most. A part that held the lock longer than HOLD_SECONDS makes the next ones
    smaller (a workspace with many rules re-matches each person against all of them).
    The last part records the totals."""
    applied, held, start, size = Applied(), 0.0, 0, CHUNK_ROWS
    while True:
        stop = min(start + size, file.size)
        if start:
            make_way(engine, held)
        began = time.monotonic()
        with transaction() as db:
            applied += apply_people_part(
                db,
                workspace_id=workspace_id,
                file=file,
                start=start,
                stop=stop,
                actor=actor,
                now=now,
            )
            if stop == file.size:
                return finish_people(
                    db,
                    workspace_id=workspace_id,
                    file=file,
                    applied=applied,
                    actor=actor,
                    now=now,
                    progress=progress,
                )
        held = time.monotonic() - began
        if progress is not None:
            progress(stop, file.size)
        start, size = stop, next_part_size(size, held)


def next_part_size(size: int, held: float) -> int:
    """The next part's size after a part of `size` addresses held the lock `held` seconds:
    scaled toward HOLD_SECONDS, never above CHUNK_ROWS nor below MIN_PART_ROWS."""
    if held <= 0:
        return min(size, CHUNK_ROWS)
    return max(MIN_PART_ROWS, min(CHUNK_ROWS, int(size * HOLD_SECONDS / held)))


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
    (R14). A large file is better read with `read_people` and applied with
    `apply_people_in_parts`."""
    file = read_people(source=source, mapping=mapping, progress=progress)
    refused = people_rejected(file, progress)
    if refused is not None:
        return refused
    applied = apply_people_part(
        db, workspace_id=workspace_id, file=file, start=0, stop=file.size, actor=actor, now=now
    )
    return finish_people(
        db,
        workspace_id=workspace_id,
        file=file,
        applied=applied,
        actor=actor,
        now=now,
        progress=progress,
    )


def import_companies(
    db: Connection,
    *,
    workspace_id: int,
    source: TextIO | CsvFile,
    mapping: Mapping[str, str],
    actor: str,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Create or update companies by domain; `parent_domain` links a company under its
    parent (R12; a missing parent is created), never re-parents one already linked
    elsewhere and never makes a cycle. People of changed groups are re-checked (R14)."""
    data = read_csv(source)
    parsed = parse_rows(COMPANIES, data, mapping, progress)
    errors = list(parsed.errors)
    errors += _self_parents(parsed)
    rows = [_company_row(domain, r) for domain, r in parsed.records.items()]
    listed = set(parsed.records)
    parents = {r["parent_domain"] for r in rows if r["parent_domain"]} - listed
    rows += [_named_company(domain) for domain in sorted(parents)]
    stage_rows(db, staged_companies, rows)
    if "parent_domain" in parsed.columns:
        errors += _link_errors(db, workspace_id=workspace_id, parsed=parsed)
    if errors:
        return rejected("companies", parsed.rows, errors, progress)
    custom = any(field.startswith("fields.") for field in parsed.columns)
    written = write_companies(
        db, workspace_id=workspace_id, mapped=frozenset(parsed.columns), custom=custom, now=now
    )
    created = written.created.keys() & listed
    changed = list(written.updated.values())
    linked = (
        association.associate(
            db,
            workspace_id=workspace_id,
            companies=staged_company_ids(workspace_id),
            now=now,
            actor=actor,
            cause="company import",
        )
        if written.created
        else association.NOTHING
    )
    statistics.after_bulk_load(db, len(written.created) + len(changed))
    rechecked = recheck_ids(
        db,
        workspace_id=workspace_id,
        ids=db.scalars(group_members(db, workspace_id=workspace_id, ids=changed)).all(),
        actor=actor,
        now=now,
        cause="company import",
    )
    report = ImportReport(
        kind="companies",
        rows=parsed.rows,
        created=len(created),
        updated=len(written.updated),
        unchanged=len(listed) - len(created) - len(written.updated),
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
        parents_created=len(written.created.keys() - listed),
        linked_by_email_domain=linked.linked,
        enrollments_ended=rechecked.enrollments_ended + linked.removal.enrollments_ended,
    )
    return finished(report, progress)


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
    return {domain: {**_named_company(domain), "name": name} for domain, name in names.items()}


def _company_row(domain: str, record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "domain": domain,
        "domain_label": domain_label(domain),
        "name": record.get("name"),
        "fields": custom_fields(record),
        "crm_id": record.get("crm_id"),
        "parent_domain": record.get("parent_domain"),
        "listed": True,
    }


def _named_company(domain: str) -> dict[str, Any]:
    return {
        "domain": domain,
        "domain_label": domain_label(domain),
        "name": None,
        "fields": {},
        "crm_id": None,
        "parent_domain": None,
        "listed": False,
    }


def _self_parents(parsed: Parsed) -> list[RowError]:
    return [
        RowError(
            parsed.first_row[domain],
            parsed.columns["parent_domain"],
            domain,
            "a company cannot be its own parent",
        )
        for domain, record in parsed.records.items()
        if record.get("parent_domain") == domain
    ]


def _link_errors(db: Connection, *, workspace_id: int, parsed: Parsed) -> list[RowError]:
    """Links the file asks for that `companies.link` would refuse: a company already
    under another parent, or a link that closes a cycle. Reads the groups involved
    (staged beforehand) and plays the file's links over them in file order."""
    c, own = t.companies, t.companies.alias("import_own")
    involved = sa.select(own.c.group_id).where(
        own.c.workspace_id == workspace_id, own.c.domain.in_(sa.select(staged_companies.c.domain))
    )
    rows = db.execute(
        sa.select(c.c.id, c.c.domain, c.c.parent_id).where(
            c.c.workspace_id == workspace_id, c.c.group_id.in_(involved)
        )
    ).all()
    domain_of = {row.id: row.domain for row in rows}
    parent_of: dict[str, str] = {
        row.domain: domain_of[row.parent_id] for row in rows if row.parent_id in domain_of
    }
    column = parsed.columns["parent_domain"]
    errors: list[RowError] = []
    for domain, record in parsed.records.items():
        parent = record.get("parent_domain")
        if parent is None or parent == domain or parent_of.get(domain) == parent:
            continue
        row = parsed.first_row[domain]
        if domain in parent_of:
            reason = f"{domain} is linked to {parent_of[domain]} already; unlink it first"
            errors.append(RowError(row, column, parent, reason))
            continue
        node: str | None = parent
        seen: set[str] = set()
        while node is not None and node not in seen and node != domain:
            seen.add(node)
            node = parent_of.get(node)
        if node == domain:
            reason = f"linking {domain} under {parent} would make a cycle ({parent} is below it)"
            errors.append(RowError(row, column, parent, reason))
            continue
        parent_of[domain] = parent
    return errors
