"""Writing a staged page of CRM deals (HubSpot deals, Salesforce Opportunities) and
contact roles, set-based (R20).

A deal belongs to a company and may name the people in it: HubSpot's deal-to-contact
associations replace a deal's links as a whole; Salesforce's OpportunityContactRole
records add or (when deleted) remove one link each. Everyone at the deal's company group
before and after the change, and everyone linked before and after, is re-checked, so a
deal moved into a stage that a company rule names unenrolls that company's people (R14).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crm.staged import changed, touch
from optout.crm.upsert_people import Written, group_people
from optout.db import tables as t
from optout.services.imports.json_merge import import_json_covers, import_json_merge
from optout.services.staging import stage_rows

_md = sa.MetaData()

staged_deals = sa.Table(
    "optout_crm_deals",
    _md,
    sa.Column("crm_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(300)),
    sa.Column("stage", sa.String(100)),
    sa.Column("amount", sa.Float),
    sa.Column("is_closed", sa.Boolean),
    sa.Column("is_won", sa.Boolean),
    sa.Column("close_date", sa.DateTime),
    sa.Column("fields", sa.JSON, nullable=False),
    sa.Column("company_id", sa.Integer, nullable=False),
    sa.Column("opportunity_id", sa.Integer),
    sa.Column("contacts_given", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)

staged_links = sa.Table(
    "optout_crm_deal_links",
    _md,
    sa.Column("crm_id", sa.String(64), primary_key=True),
    sa.Column("person_id", sa.Integer, primary_key=True),
    prefixes=["TEMPORARY"],
)

staged_roles = sa.Table(
    "optout_crm_roles",
    _md,
    sa.Column("crm_id", sa.String(64), primary_key=True),
    sa.Column("opportunity_id", sa.Integer, nullable=False),
    sa.Column("person_id", sa.Integer, nullable=False),
    sa.Column("role", sa.String(100)),
    sa.Column("deleted", sa.Boolean, nullable=False),
    prefixes=["TEMPORARY"],
)

DEAL_VALUES = ("name", "stage", "amount", "is_closed", "is_won", "close_date")


def write_deals(
    db: Connection,
    *,
    workspace_id: int,
    rows: Sequence[Mapping[str, Any]],
    links: Sequence[Mapping[str, Any]],
    now: datetime,
) -> tuple[Written, dict[str, int]]:
    """Apply staged deals and their links; returns the counts and the id per CRM id."""
    s, o = staged_deals, t.opportunities
    stage_rows(db, s, rows)
    stage_rows(db, staged_links, links)
    # A remembered opportunity deleted here since: create it again.
    db.execute(
        s.update()
        .where(
            s.c.opportunity_id.is_not(None),
            s.c.opportunity_id.not_in(sa.select(o.c.id).where(o.c.workspace_id == workspace_id)),
        )
        .values(opportunity_id=None)
    )
    _touch_around(db, workspace_id)  # as things were
    updated = db.scalars(
        o.update()
        .where(
            o.c.workspace_id == workspace_id,
            o.c.id.in_(sa.select(s.c.opportunity_id)),
            o.c.id == s.c.opportunity_id,
            sa.or_(
                *(changed(o.c[k], s.c[k]) for k in DEAL_VALUES),
                o.c.company_id != s.c.company_id,
                sa.not_(import_json_covers(o.c.fields, s.c.fields)),
            ),
        )
        .values(
            **{k: sa.func.coalesce(s.c[k], o.c[k]) for k in DEAL_VALUES},
            company_id=s.c.company_id,
            fields=import_json_merge(o.c.fields, s.c.fields),
            updated_at=now,
        )
        .returning(o.c.id)
    ).all()
    created = db.scalars(
        o.insert()
        .from_select(
            [
                "workspace_id",
                "company_id",
                *DEAL_VALUES,
                "fields",
                "crm_id",
                "created_at",
                "updated_at",
            ],
            sa.select(
                sa.literal(workspace_id, sa.Integer),
                s.c.company_id,
                sa.func.coalesce(s.c.name, ""),
                sa.func.coalesce(s.c.stage, ""),
                s.c.amount,
                sa.func.coalesce(s.c.is_closed, sa.false()),
                sa.func.coalesce(s.c.is_won, sa.false()),
                s.c.close_date,
                s.c.fields,
                s.c.crm_id,
                sa.literal(now, sa.DateTime),
                sa.literal(now, sa.DateTime),
            ).where(s.c.opportunity_id.is_(None)),
        )
        .returning(o.c.id)
    ).all()
    if created:
        newest = (
            sa.select(sa.func.max(o.c.id))
            .where(o.c.workspace_id == workspace_id, o.c.crm_id == s.c.crm_id)
            .scalar_subquery()
        )
        db.execute(s.update().where(s.c.opportunity_id.is_(None)).values(opportunity_id=newest))
    links_changed = _replace_links(db)
    _touch_around(db, workspace_id)  # as things are now
    ids = {
        crm_id: int(oid) for crm_id, oid in db.execute(sa.select(s.c.crm_id, s.c.opportunity_id))
    }
    written = Written(created=len(created), updated=len(set(updated)) + links_changed)
    return written, ids


def _replace_links(db: Connection) -> int:
    """Make each deal that names its people linked to exactly those people."""
    s, link, oc = staged_deals, staged_links, t.opportunity_contacts
    wanted = (
        sa.select(s.c.opportunity_id, link.c.person_id)
        .join(link, link.c.crm_id == s.c.crm_id)
        .where(s.c.contacts_given.is_(True))
    )
    wanted_sub = wanted.subquery()
    removed = db.execute(
        oc.delete().where(
            oc.c.opportunity_id.in_(
                sa.select(s.c.opportunity_id).where(s.c.contacts_given.is_(True))
            ),
            ~sa.exists().where(
                wanted_sub.c.opportunity_id == oc.c.opportunity_id,
                wanted_sub.c.person_id == oc.c.person_id,
            ),
        )
    ).rowcount
    added = db.execute(
        oc.insert()
        .from_select(
            ["opportunity_id", "person_id", "role"],
            sa.select(wanted_sub.c.opportunity_id, wanted_sub.c.person_id, sa.literal(""))
            .where(
                ~sa.exists().where(
                    oc.c.opportunity_id == wanted_sub.c.opportunity_id,
                    oc.c.person_id == wanted_sub.c.person_id,
                )
            )
            .distinct(),
        )
        .returning(oc.c.person_id)
    ).all()
    return max(removed or 0, 0) + len(added)


def _touch_around(db: Connection, workspace_id: int) -> None:
    """Everyone at the staged deals' company groups and everyone linked to them."""
    s, o, oc = staged_deals, t.opportunities, t.opportunity_contacts
    companies = sa.select(o.c.company_id).where(o.c.id.in_(sa.select(s.c.opportunity_id)))
    touch(db, group_people(workspace_id, sa.union(companies, sa.select(s.c.company_id))))
    touch(
        db, sa.select(oc.c.person_id).where(oc.c.opportunity_id.in_(sa.select(s.c.opportunity_id)))
    )


def write_roles(db: Connection, *, rows: Sequence[Mapping[str, Any]]) -> Written:
    """Apply staged contact roles: add the live ones, drop the deleted ones."""
    s, oc = staged_roles, t.opportunity_contacts
    stage_rows(db, s, rows)
    pair = sa.and_(oc.c.opportunity_id == s.c.opportunity_id, oc.c.person_id == s.c.person_id)
    removed = db.execute(
        oc.delete().where(
            sa.exists().where(pair, s.c.deleted.is_(True)),
            ~sa.exists().where(pair, s.c.deleted.is_(False)),
        )
    ).rowcount
    renamed = db.execute(
        oc.update()
        .where(
            oc.c.opportunity_id.in_(sa.select(s.c.opportunity_id)),
            pair,
            s.c.deleted.is_(False),
            changed(oc.c.role, s.c.role),
        )
        .values(role=s.c.role)
    ).rowcount
    live = (
        sa.select(s.c.opportunity_id, s.c.person_id, sa.func.max(sa.func.coalesce(s.c.role, "")))
        .where(s.c.deleted.is_(False), ~sa.exists().where(pair))
        .group_by(s.c.opportunity_id, s.c.person_id)
    )
    added = db.execute(
        oc.insert()
        .from_select(["opportunity_id", "person_id", "role"], live)
        .returning(oc.c.person_id)
    ).all()
    touch(db, sa.select(s.c.person_id))
    return Written(created=len(added), updated=max(removed or 0, 0) + max(renamed or 0, 0))
