"""The set-based writes of the CSV imports (R23): validated rows are staged in a
temporary table with one executemany, then a few INSERT ... SELECT and UPDATE ... FROM
statements apply them, whatever the number of rows. Only rows whose values change
are updated, so re-importing a file touches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.directory.association import COLUMN
from optout.services.enforcement import Removal
from optout.services.imports.json_merge import import_json_covers, import_json_merge
from optout.services.monitoring import recheck_people
from optout.services.staging import id_table, stage, stage_ids

# --- Staging tables (per connection, emptied before each use) ------------------------------

_metadata = sa.MetaData()

staged_people = sa.Table(
    "optout_import_people",
    _metadata,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("email_domain", sa.String(255), nullable=False),
    sa.Column("first_name", sa.String(200)),  # NULL everywhere: not given, keep what is there
    sa.Column("last_name", sa.String(200)),
    sa.Column("title", sa.String(300)),
    sa.Column("status", sa.String(100)),
    sa.Column("company_domain", sa.String(255)),
    sa.Column("company_id", sa.Integer),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("opt_out", sa.Boolean, nullable=False),
    sa.Column("crm_id", sa.String(64)),
    sa.Column("time_zone", sa.String(64)),  # given, or the one zone of the given country
    prefixes=["TEMPORARY"],
)

staged_companies = sa.Table(
    "optout_import_companies",
    _metadata,
    sa.Column("domain", sa.String(255), primary_key=True),
    sa.Column("domain_label", sa.String(255), nullable=False),
    sa.Column("name", sa.String(300)),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("crm_id", sa.String(64)),
    sa.Column("parent_domain", sa.String(255)),
    # False: only named (a person's company, a parent), created if missing, never updated.
    sa.Column("listed", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)

touched_companies = id_table("optout_import_touched_companies")

touched_ids = id_table("optout_import_touched")

company_roots = sa.Table(
    "optout_import_roots",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("root", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


def _changed(target: sa.ColumnElement[Any], given: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """The file gives a value and it differs from the stored one."""
    return sa.and_(given.is_not(None), target.is_distinct_from(given))


# --- Companies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanyWrite:
    created: dict[str, int]  # domain -> id
    updated: dict[str, int]  # domain -> id, of the companies whose data or parent changed


COMPANY_COLUMNS = ("workspace_id", "domain", "domain_label", "name", "fields", "crm_id")


def write_companies(
    db: Connection,
    *,
    workspace_id: int,
    mapped: frozenset[str],
    custom: bool,
    now: datetime,
) -> CompanyWrite:
    """Apply the staged companies: update the listed ones that differ, create the missing
    ones (listed or only named), and link children to their parents (R12)."""
    s, c = staged_companies, t.companies
    updated: dict[str, int] = {}
    if "name" in mapped or "crm_id" in mapped or custom:
        changes = [_changed(c.c[k], s.c[k]) for k in ("name", "crm_id") if k in mapped]
        values: dict[str, Any] = {
            k: sa.func.coalesce(s.c[k], c.c[k]) for k in ("name", "crm_id") if k in mapped
        }
        if custom:
            changes.append(sa.not_(import_json_covers(c.c.fields, s.c.fields)))
            values["fields"] = import_json_merge(c.c.fields, s.c.fields)
        statement = (
            c.update()
            .where(
                c.c.workspace_id == workspace_id,
                c.c.domain == s.c.domain,
                s.c.listed.is_(True),
                sa.or_(*changes),
            )
            .values(**values, updated_at=now)
            .returning(c.c.domain, c.c.id)
        )
        updated.update((domain, id_) for domain, id_ in db.execute(statement))
    existing = sa.exists().where(c.c.workspace_id == workspace_id, c.c.domain == s.c.domain)
    created: dict[str, int] = dict(
        db.execute(
            c.insert()
            .from_select(
                [*COMPANY_COLUMNS, "created_at", "updated_at"],
                sa.select(
                    sa.literal(workspace_id, sa.Integer),
                    s.c.domain,
                    s.c.domain_label,
                    sa.func.coalesce(s.c.name, s.c.domain),
                    s.c.fields,
                    s.c.crm_id,
                    sa.literal(now, sa.DateTime),
                    sa.literal(now, sa.DateTime),
                ).where(~existing),
            )
            .returning(c.c.domain, c.c.id)
        ).all()
    )
    if created:
        db.execute(
            c.update()
            .where(
                c.c.workspace_id == workspace_id,
                c.c.group_id.is_(None),
                c.c.domain.in_(sa.select(s.c.domain)),
            )
            .values(group_id=c.c.id)
        )
    if "parent_domain" in mapped:
        updated.update(_link(db, workspace_id=workspace_id, now=now))
    return CompanyWrite(created, {d: i for d, i in updated.items() if d not in created})


def _link(db: Connection, *, workspace_id: int, now: datetime) -> dict[str, int]:
    """Set each staged company's parent, then recompute `group_id` (the top-most ancestor)
    of every company in the groups involved. Cycles were refused before any write."""
    s, c = staged_companies, t.companies
    parent = c.alias("import_parent")
    rows = db.execute(
        c.update()
        .where(
            c.c.workspace_id == workspace_id,
            c.c.domain == s.c.domain,
            parent.c.workspace_id == workspace_id,
            parent.c.domain == s.c.parent_domain,
            c.c.parent_id.is_distinct_from(parent.c.id),
        )
        .values(parent_id=parent.c.id, updated_at=now)
        .returning(c.c.domain, c.c.id)
    )
    linked: dict[str, int] = dict(rows.all())
    if not linked:
        return {}
    stage_ids(db, touched_companies, list(linked.values()))
    involved = sa.select(c.c.group_id).where(
        sa.or_(
            c.c.id.in_(sa.select(touched_companies.c.id)),
            c.c.id.in_(
                sa.select(c.c.parent_id).where(c.c.id.in_(sa.select(touched_companies.c.id)))
            ),
        )
    )
    region = sa.select(c.c.id).where(c.c.workspace_id == workspace_id, c.c.group_id.in_(involved))
    tree = (
        sa.select(c.c.id.label("id"), c.c.id.label("root"))
        .where(c.c.id.in_(region), c.c.parent_id.is_(None))
        .cte("import_tree", recursive=True)
    )
    below = c.alias("import_below")
    tree = tree.union_all(sa.select(below.c.id, tree.c.root).where(below.c.parent_id == tree.c.id))
    g = company_roots
    stage(db, g, sa.select(tree.c.id, tree.c.root))
    db.execute(
        c.update()
        .where(c.c.id == g.c.id, c.c.group_id.is_distinct_from(g.c.root))
        .values(group_id=g.c.root)
    )
    return linked


def group_members(db: Connection, *, workspace_id: int, ids: Sequence[int]) -> sa.Select[Any]:
    """Ids of everyone at the companies `ids` or at a company linked to them (R12)."""
    stage_ids(db, touched_companies, list(ids))
    p, c, own = t.people, t.companies, t.companies.alias("import_own")
    groups = sa.select(own.c.group_id).where(own.c.id.in_(sa.select(touched_companies.c.id)))
    return (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(p.c.workspace_id == workspace_id, c.c.group_id.in_(groups))
    )


# --- People ------------------------------------------------------------------------------------

PERSON_TEXT = ("first_name", "last_name", "title", "status")


@dataclass(frozen=True)
class PeopleWrite:
    created: int  # addresses
    updated: int  # addresses at least one of whose people changed
    updated_ids: list[int]


def write_people(
    db: Connection,
    *,
    workspace_id: int,
    mapped: frozenset[str],
    custom: bool,
    now: datetime,
) -> PeopleWrite:
    """Apply the staged people: update every person whose address is in the file and whose
    values differ (duplicates by address included), then create the addresses not found."""
    s, c = staged_people, t.companies
    company = "company_domain" in mapped
    if company:
        db.execute(
            s.update()
            .where(c.c.workspace_id == workspace_id, c.c.domain == s.c.company_domain)
            .values(company_id=c.c.id)
        )
    keys = [k for k in (*PERSON_TEXT, "crm_id") if k in mapped]
    if mapped & {"time_zone", "country"}:
        keys.append("time_zone")
    upserted = upsert_people(
        db,
        s,
        workspace_id=workspace_id,
        given=keys,
        company=company,
        custom=custom,
        link_source=COLUMN,
        now=now,
    )
    return PeopleWrite(
        created=len(upserted.created),
        updated=len({email for _, email in upserted.updated}),
        updated_ids=[id_ for id_, _ in upserted.updated],
    )


@dataclass(frozen=True)
class Upserted:
    created: list[int]  # ids of the people created
    updated: list[tuple[int, str]]  # (id, address) of the people whose values changed


def upsert_people(
    db: Connection,
    staged: sa.Table,
    *,
    workspace_id: int,
    given: Sequence[str],
    company: bool,
    custom: bool,
    link_source: str,
    now: datetime,
) -> Upserted:
    """The one write of staged people, for a CSV file and a CRM page alike: update every
    person of the workspace whose address is staged and whose given values differ (several
    people with one address included), then create the addresses not found. Two
    statements, whatever the number of rows.

    `staged` has one row per address (`email`, `email_domain`, the texts of PERSON_TEXT,
    `crm_id`, `time_zone`, `company_id`, `fields`). `given` names the columns the source
    gives (of PERSON_TEXT, `crm_id`, `time_zone`); `company` whether it gives a company,
    linked with `link_source`; `custom` whether it gives custom fields, merged into the
    stored ones. A NULL staged value keeps what is stored; a new person gets "" for a text
    not given."""
    s, p = staged, t.people
    changes = [_changed(p.c[k], s.c[k]) for k in given]
    values: dict[str, Any] = {k: sa.func.coalesce(s.c[k], p.c[k]) for k in given}
    if company:
        changes.append(_changed(p.c.company_id, s.c.company_id))
        values["company_id"] = sa.func.coalesce(s.c.company_id, p.c.company_id)
        values["company_link_source"] = sa.case(
            (s.c.company_id.is_not(None), link_source), else_=p.c.company_link_source
        )
    if custom:
        changes.append(sa.not_(import_json_covers(p.c.fields, s.c.fields)))
        values["fields"] = import_json_merge(p.c.fields, s.c.fields)
    updated: list[tuple[int, str]] = []
    if changes:
        updated = [
            (int(id_), email)
            for id_, email in db.execute(
                p.update()
                .where(
                    p.c.workspace_id == workspace_id,
                    # Joining on the address alone lets SQLite walk every person of the
                    # workspace; the IN makes it seek the staged addresses.
                    p.c.email.in_(sa.select(s.c.email)),
                    p.c.email == s.c.email,
                    sa.or_(*changes),
                )
                .values(**values, updated_at=now)
                .returning(p.c.id, p.c.email)
            )
        ]
    held = t.people.alias("staged_held")
    existing = sa.exists().where(held.c.workspace_id == workspace_id, held.c.email == s.c.email)
    names = ["workspace_id", "email", "email_domain", *PERSON_TEXT]
    names += ["company_id", "company_link_source", "fields", "crm_id", "time_zone"]
    created = db.scalars(
        p.insert()
        .from_select(
            [*names, "created_at", "updated_at"],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                s.c.email,
                s.c.email_domain,
                *(sa.func.coalesce(s.c[k], "") for k in PERSON_TEXT),
                s.c.company_id,
                sa.case((s.c.company_id.is_not(None), link_source), else_=sa.null()),
                s.c.fields,
                s.c.crm_id,
                s.c.time_zone,
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
            ).where(~existing),
        )
        .returning(p.c.id)
    ).all()
    return Upserted(created=[int(id_) for id_ in created], updated=updated)


def recheck_ids(
    db: Connection, *, workspace_id: int, ids: Sequence[int], actor: str, now: datetime, cause: str
) -> Removal:
    """Re-check the active enrollments of the people changed (R14)."""
    if not ids:
        return Removal(0, 0)
    stage_ids(db, touched_ids, list(ids))
    return recheck_people(
        db,
        workspace_id=workspace_id,
        people=sa.select(touched_ids.c.id),
        actor=actor,
        now=now,
        cause=cause,
    )


def staged_people_ids(workspace_id: int) -> sa.Select[Any]:
    """Ids of every person whose address is in the file."""
    p = t.people
    return sa.select(p.c.id).where(
        p.c.workspace_id == workspace_id, p.c.email.in_(sa.select(staged_people.c.email))
    )


def staged_company_ids(workspace_id: int) -> sa.Select[Any]:
    """Ids of the companies the file lists or names."""
    c = t.companies
    return sa.select(c.c.id).where(
        c.c.workspace_id == workspace_id, c.c.domain.in_(sa.select(staged_companies.c.domain))
    )
