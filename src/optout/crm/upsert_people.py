"""Writing a staged page of CRM companies or people, set-based.

Companies are keyed by their domain (HubSpot `domain`, Salesforce Account `Website`); a
record without a usable domain becomes a company of its own, found again through its CRM
id. People are keyed by their normalized address: a Lead and a Contact with one address,
or several contacts sharing one, update the same person and the same suppression (R1).
Only values that differ are written, so re-reading a page changes nothing. An opt-out
from the CRM suppresses the address (`suppress.py`); "not opted out" never clears one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crm.staged import changed, touch
from optout.db import tables as t
from optout.normalize import domain_label
from optout.services.directory.association import CRM
from optout.services.enforcement import Removal
from optout.services.imports.json_merge import import_json_covers, import_json_merge
from optout.services.imports.write import PERSON_TEXT, upsert_people
from optout.services.staging import stage_rows
from optout.services.suppression import optouts

_md = sa.MetaData()

staged_companies = sa.Table(
    "optout_crm_companies",
    _md,
    sa.Column("key", sa.String(300), primary_key=True),  # domain, or `crm:<id>` without one
    sa.Column("domain", sa.String(255)),
    sa.Column("domain_label", sa.String(255)),
    sa.Column("name", sa.String(300)),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("crm_id", sa.String(64), nullable=False),
    sa.Column("company_id", sa.Integer),
    prefixes=["TEMPORARY"],
)

staged_people = sa.Table(
    "optout_crm_people",
    _md,
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("email_domain", sa.String(255), nullable=False),
    sa.Column("first_name", sa.String(200)),  # NULL: not mapped, keep what is there
    sa.Column("last_name", sa.String(200)),
    sa.Column("title", sa.String(300)),
    sa.Column("status", sa.String(100)),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("opt_out", sa.Boolean),
    sa.Column("activity_at", sa.DateTime),
    sa.Column("company_id", sa.Integer),
    sa.Column("company_domain", sa.String(255)),  # a company named on the record (Lead)
    sa.Column("company_name", sa.String(300)),
    sa.Column("time_zone", sa.String(64)),  # NULL: not given, keep what is there
    sa.Column("crm_id", sa.String(64), nullable=False),
    prefixes=["TEMPORARY"],
)


def _in_page() -> sa.ColumnElement[bool]:
    """People whose address is staged. Joining on the address alone lets SQLite walk every
    person of the workspace per page; this IN makes it seek the page's addresses."""
    return t.people.c.email.in_(sa.select(staged_people.c.email))


@dataclass
class Written:
    created: int = 0
    updated: int = 0
    opted_out: int = 0
    removal: Removal = field(default_factory=lambda: Removal(0, 0))


def write_companies(
    db: Connection, *, workspace_id: int, rows: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[Written, dict[str, int]]:
    """Apply staged companies; returns the counts and the company id per key."""
    s, c = staged_companies, t.companies
    stage_rows(db, s, rows)
    by_domain = sa.and_(c.c.workspace_id == workspace_id, c.c.domain == s.c.domain)
    db.execute(s.update().where(s.c.company_id.is_(None), by_domain).values(company_id=c.c.id))
    created = db.scalars(
        c.insert()
        .from_select(
            [
                "workspace_id",
                "domain",
                "domain_label",
                "name",
                "fields",
                "crm_id",
                "created_at",
                "updated_at",
            ],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                s.c.domain,
                s.c.domain_label,
                sa.func.coalesce(s.c.name, s.c.domain, ""),
                s.c.fields,
                s.c.crm_id,
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
            ).where(s.c.company_id.is_(None)),
        )
        .returning(c.c.id)
    ).all()
    if created:
        db.execute(
            c.update()
            .where(c.c.workspace_id == workspace_id, c.c.group_id.is_(None))
            .values(group_id=c.c.id)
        )
        newest = (
            sa.select(sa.func.max(c.c.id))
            .where(c.c.workspace_id == workspace_id, c.c.crm_id == s.c.crm_id)
            .scalar_subquery()
        )
        db.execute(s.update().where(s.c.company_id.is_(None)).values(company_id=newest))
    updated = db.scalars(
        c.update()
        .where(
            c.c.id.in_(sa.select(s.c.company_id)),
            c.c.id == s.c.company_id,
            sa.or_(
                changed(c.c.name, s.c.name),
                c.c.crm_id.is_(None),
                sa.not_(import_json_covers(c.c.fields, s.c.fields)),
            ),
        )
        .values(
            name=sa.func.coalesce(s.c.name, c.c.name),
            crm_id=sa.func.coalesce(c.c.crm_id, s.c.crm_id),
            fields=import_json_merge(c.c.fields, s.c.fields),
            updated_at=now,
        )
        .returning(c.c.id)
    ).all()
    if updated:
        touch(db, group_people(workspace_id, sa.select(c.c.id).where(c.c.id.in_(updated))))
    ids = {key: int(cid) for key, cid in db.execute(sa.select(s.c.key, s.c.company_id))}
    return Written(created=len(created), updated=len(updated)), ids


def write_people(
    db: Connection,
    *,
    workspace_id: int,
    rows: Sequence[Mapping[str, Any]],
    crm: str,
    actor: str,
    now: datetime,
) -> tuple[Written, dict[str, int]]:
    """Apply staged people; returns the counts and the person id per address."""
    s, p = staged_people, t.people
    stage_rows(db, s, rows)
    if any(row.get("company_domain") for row in rows):
        _companies_named(db, workspace_id=workspace_id, now=now)
    upserted = upsert_people(
        db,
        s,
        workspace_id=workspace_id,
        given=(*PERSON_TEXT, "time_zone"),
        company=True,
        custom=True,
        link_source=CRM,
        now=now,
    )
    page_people = (
        sa.select(p.c.id)
        .join(s, s.c.email == p.c.email)
        .where(p.c.workspace_id == workspace_id, _in_page())
    )
    touch(db, page_people)
    if any(row.get("activity_at") for row in rows):
        _crm_activity(db, workspace_id=workspace_id)
    opted_out, removal = 0, Removal(0, 0)
    if any(row.get("opt_out") for row in rows):
        # A CRM saying "not opted out" changes nothing: only an audited clear lifts one.
        opted_out, removal = optouts.opt_out_all(
            db,
            workspace_id=workspace_id,
            emails=sa.select(s.c.email).where(s.c.opt_out.is_(True)),
            actor=actor,
            channel="crm",
            now=now,
            reason=f"opted out in {crm}",
            evidence=f"{crm} record says opted out",
        )
    ids = {
        email: int(pid)
        for email, pid in db.execute(
            sa.select(p.c.email, sa.func.min(p.c.id))
            .join(s, s.c.email == p.c.email)
            .where(p.c.workspace_id == workspace_id, _in_page())
            .group_by(p.c.email)
        )
    }
    updated = len({email for _, email in upserted.updated})
    written = Written(len(upserted.created), updated, opted_out, removal)
    return written, ids


def _companies_named(db: Connection, *, workspace_id: int, now: datetime) -> None:
    """Create the companies people name by domain (a Lead's Website) that do not exist yet,
    and link the people to them (never renaming a company that exists)."""
    s, c = staged_people, t.companies
    missing = db.execute(
        sa.select(s.c.company_domain, sa.func.max(s.c.company_name))
        .where(
            s.c.company_domain.is_not(None),
            ~sa.exists().where(c.c.workspace_id == workspace_id, c.c.domain == s.c.company_domain),
        )
        .group_by(s.c.company_domain)
    ).all()
    if missing:
        db.execute(
            c.insert(),
            [
                {
                    "workspace_id": workspace_id,
                    "domain": domain,
                    "domain_label": domain_label(domain),
                    "name": name or domain,
                    "fields": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for domain, name in missing
            ],
        )
        db.execute(
            c.update()
            .where(c.c.workspace_id == workspace_id, c.c.group_id.is_(None))
            .values(group_id=c.c.id)
        )
    db.execute(
        s.update()
        .where(
            s.c.company_id.is_(None),
            c.c.workspace_id == workspace_id,
            c.c.domain == s.c.company_domain,
        )
        .values(company_id=c.c.id)
    )


def _crm_activity(db: Connection, *, workspace_id: int) -> None:
    """A CRM activity date later than ours is activity from source `crm` (R21): it moves the
    person's and the company's dates, and everyone at a company whose date moved is
    re-checked (company-level activity rules)."""
    s, p, c = staged_people, t.people, t.companies
    later = sa.and_(
        s.c.activity_at.is_not(None),
        sa.or_(p.c.last_activity_at.is_(None), p.c.last_activity_at < s.c.activity_at),
    )
    db.execute(
        t.activities.insert().from_select(
            ["workspace_id", "person_id", "company_id", "kind", "source", "occurred_at"],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                p.c.id,
                p.c.company_id,
                sa.literal("crm_activity", sa.String),
                sa.literal("crm", sa.String),
                s.c.activity_at,
            )
            .join(s, s.c.email == p.c.email)
            .where(p.c.workspace_id == workspace_id, _in_page(), later),
        )
    )
    moved = db.scalars(
        p.update()
        .where(p.c.workspace_id == workspace_id, _in_page(), p.c.email == s.c.email, later)
        .values(
            last_activity_at=s.c.activity_at,
            last_activity_any_at=sa.case(
                (p.c.last_activity_any_at.is_(None), s.c.activity_at),
                (p.c.last_activity_any_at < s.c.activity_at, s.c.activity_at),
                else_=p.c.last_activity_any_at,
            ),
        )
        .returning(p.c.company_id)
    ).all()
    company_ids = sorted({cid for cid in moved if cid is not None})
    if not company_ids:
        return
    member = t.people.alias("crm_member")
    latest = (
        sa.select(sa.func.max(member.c.last_activity_at))
        .where(member.c.company_id == c.c.id)
        .scalar_subquery()
    )
    db.execute(
        c.update()
        .where(
            c.c.id.in_(company_ids),
            sa.or_(c.c.last_activity_at.is_(None), c.c.last_activity_at < latest),
        )
        .values(
            last_activity_at=latest,
            last_activity_any_at=sa.case(
                (c.c.last_activity_any_at.is_(None), latest),
                (c.c.last_activity_any_at < latest, latest),
                else_=c.c.last_activity_any_at,
            ),
        )
    )
    touch(db, group_people(workspace_id, sa.select(c.c.id).where(c.c.id.in_(company_ids))))


def group_people(
    workspace_id: int, company_ids: sa.Select[Any] | sa.CompoundSelect[Any]
) -> sa.Select[Any]:
    """Everyone at the companies selected or at a company linked to one of them (R12)."""
    p, c, own = t.people, t.companies.alias("crm_c"), t.companies.alias("crm_own")
    groups = sa.select(own.c.group_id).where(own.c.id.in_(company_ids))
    return (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(p.c.workspace_id == workspace_id, c.c.group_id.in_(groups))
    )


def page_people() -> sa.Select[Any]:
    """Ids of the people of the page staged last."""
    return sa.select(t.people.c.id).where(_in_page())


def page_companies() -> sa.Select[Any]:
    """Ids of the companies of the page staged last."""
    s = staged_companies
    return sa.select(s.c.company_id).where(s.c.company_id.is_not(None))


def named_companies(workspace_id: int) -> sa.Select[Any]:
    """Ids of the companies the people of the page staged last name by domain (a Lead's)."""
    c = t.companies
    return sa.select(c.c.id).where(
        c.c.workspace_id == workspace_id,
        c.c.domain.in_(sa.select(staged_people.c.company_domain)),
    )
