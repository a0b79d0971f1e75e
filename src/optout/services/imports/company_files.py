"""The companies CSV import (R12, R23): create or update companies by domain, link each
under the parent the file names.

The file is read and checked before anything is written: its cells, a company named as
its own parent, and every link `companies.link` would refuse (a company already under
another parent, a cycle), read from the groups involved in a transaction that only reads.
A file with any such row writes nothing. A good file is then applied in parts
(`apply.apply_file_in_parts`), each its own short transaction, listed parents before their
children, so a part finds every parent it links to: listed in an earlier part, stored
already, or created by the part as a company only named (a missing parent).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.normalize import domain_label
from optout.services.directory import association
from optout.services.imports.apply import FileSteps, apply_whole
from optout.services.imports.csv_files import (
    CsvFile,
    Kind,
    Parsed,
    RowError,
    custom_fields,
    domain_value,
    parse_rows,
    read_csv,
    text_value,
)
from optout.services.imports.reporting import ImportReport, Progress, rejected
from optout.services.imports.write import (
    group_members,
    recheck_ids,
    staged_companies,
    staged_company_ids,
    write_companies,
)
from optout.services.staging import stage_rows

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


@dataclass(frozen=True)
class CompanyFile:
    """A companies CSV read and checked on its own (no database yet)."""

    name: str | None
    parsed: Parsed
    rows: list[dict[str, Any]]  # the staged row of each listed company, parents first
    errors: list[RowError]  # cells that cannot be used, companies their own parent

    @property
    def size(self) -> int:
        return len(self.rows)

    @property
    def mapped(self) -> frozenset[str]:
        return frozenset(self.parsed.columns)


@dataclass(frozen=True)
class CompaniesApplied:
    """What the parts of a companies import applied so far, added up part by part. A
    listed company is applied in exactly one part, so the counts never overlap."""

    created: int = 0  # listed companies created
    parents_created: int = 0  # companies created only because a listed one names them
    updated: int = 0
    linked_by_email_domain: int = 0
    enrollments_ended: int = 0

    def __add__(self, other: CompaniesApplied) -> CompaniesApplied:
        return CompaniesApplied(
            *(a + b for a, b in zip(astuple(self), astuple(other), strict=True))
        )


def read_companies(
    *, source: TextIO | CsvFile, mapping: Mapping[str, str], progress: Progress | None = None
) -> CompanyFile:
    """Read and check a companies CSV (InvalidInput for a file-level problem). No database
    is touched; the links are checked by `companies_rejected`."""
    data = read_csv(source)
    parsed = parse_rows(COMPANIES, data, mapping, progress)
    rows = [_company_row(domain, record) for domain, record in parsed.records.items()]
    return CompanyFile(
        data.name, parsed, _parents_first(rows), [*parsed.errors, *_self_parents(parsed)]
    )


def companies_rejected(
    db: Connection, *, workspace_id: int, file: CompanyFile, progress: Progress | None = None
) -> ImportReport | None:
    """The report refusing the whole file when any row cannot be used, else None. Reads
    the groups the file's links touch (it stages the file in a temporary table only, so a
    transaction that only reads will do)."""
    errors = list(file.errors)
    if "parent_domain" in file.parsed.columns:
        listed = {row["domain"] for row in file.rows}
        parents = {row["parent_domain"] for row in file.rows if row["parent_domain"]} - listed
        stage_rows(db, staged_companies, [*file.rows, *map(named_company, sorted(parents))])
        errors += _link_errors(db, workspace_id=workspace_id, parsed=file.parsed)
    if not errors:
        return None
    return rejected("companies", file.parsed.rows, errors, progress)


def apply_companies_part(
    db: Connection,
    *,
    workspace_id: int,
    file: CompanyFile,
    start: int,
    stop: int,
    actor: str,
    now: datetime,
) -> CompaniesApplied:
    """Apply the listed companies `start:stop` of a checked file, whole: the companies,
    their missing parents, their links (R12), the people linked to new companies by email
    domain, and the re-check of everyone in a changed group (R14) commit together."""
    part = file.rows[start:stop]
    here = {row["domain"] for row in part}
    parents = {row["parent_domain"] for row in part if row["parent_domain"]} - here
    stage_rows(db, staged_companies, [*part, *map(named_company, sorted(parents))])
    custom = any(field.startswith("fields.") for field in file.mapped)
    written = write_companies(
        db, workspace_id=workspace_id, mapped=file.mapped, custom=custom, now=now
    )
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
    changed = list(written.updated.values())
    rechecked = recheck_ids(
        db,
        workspace_id=workspace_id,
        ids=db.scalars(group_members(db, workspace_id=workspace_id, ids=changed)).all(),
        actor=actor,
        now=now,
        cause="company import",
    )
    created = written.created.keys() & here
    return CompaniesApplied(
        created=len(created),
        parents_created=len(written.created) - len(created),
        updated=len(written.updated),
        linked_by_email_domain=linked.linked,
        enrollments_ended=rechecked.enrollments_ended + linked.removal.enrollments_ended,
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
    """Create or update companies by domain, in one transaction; `parent_domain` links a
    company under its parent (R12; a missing parent is created), never re-parents one
    already linked elsewhere and never makes a cycle. People of changed groups are
    re-checked (R14). A large file is better read with `read_companies`, checked with
    `companies_rejected` and applied with `apply.apply_file_in_parts`."""
    file = read_companies(source=source, mapping=mapping, progress=progress)
    refused = companies_rejected(db, workspace_id=workspace_id, file=file, progress=progress)
    if refused is not None:
        return refused
    return apply_whole(
        db, COMPANY_STEPS, file=file, progress=progress, workspace_id=workspace_id, actor=actor,
        now=now,
    )  # fmt: skip


COMPANY_STEPS = FileSteps(
    "companies", lambda db, **kw: apply_companies_part(db, **kw), CompaniesApplied()
)


# --- helpers -----------------------------------------------------------------------------------


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


def named_company(domain: str) -> dict[str, Any]:
    return {
        "domain": domain,
        "domain_label": domain_label(domain),
        "name": None,
        "fields": {},
        "crm_id": None,
        "parent_domain": None,
        "listed": False,
    }


def _parents_first(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows in file order, except that a company the file also lists as a parent comes
    before its children (by depth below the file's top-most listed company): a part then
    never links to a listed company that a later part creates. A cycle (refused by the
    check) leaves its rows where they are."""
    parent_of = {row["domain"]: row["parent_domain"] for row in rows}
    depth: dict[str, int] = {}
    for row in rows:
        chain: list[str] = []
        node: str | None = row["domain"]
        while node is not None and node in parent_of and node not in depth and node not in chain:
            chain.append(node)
            node = parent_of[node]
        below = depth.get(node, -1) if node is not None and node not in chain else -1
        for domain in reversed(chain):
            below += 1
            depth[domain] = below
    return sorted(rows, key=lambda row: depth[row["domain"]])


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
