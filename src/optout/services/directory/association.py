"""People belong to the company of their email domain, without a manual step.

A person with no company whose email domain (normalized, R18) is not a free-mail
provider (R25) is linked to the company with exactly that domain. When none exists,
the workspace setting `create_companies_from_email_domain` (on by default) creates it;
off, the person stays unlinked until such a company appears, and a new company picks
up the unlinked people of its domain. A company set explicitly (by the CRM, a mapped
import column or a user) always wins: association only fills an empty company, and a
person a user unlinked on purpose (`manual`) is left alone.

Every function runs in the caller's transaction, set-based (a few INSERT ... SELECT
and UPDATE ... FROM statements whatever the number of people), and re-checks the
active enrollments of everyone it links against enforced exclusions (R14).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.normalize import domain_label, free_mail_domains
from optout.services import workspaces
from optout.services.enforcement import Removal
from optout.services.monitoring import recheck_people
from optout.services.staging import stage

# How a person's company was set (`people.company_link_source`).
CRM = "crm"
COLUMN = "column"
EMAIL_DOMAIN = "email_domain"
MANUAL = "manual"
LINK_SOURCES = (CRM, COLUMN, EMAIL_DOMAIN, MANUAL)

_metadata = sa.MetaData()

# The people one call links, and to which company: the UPDATE, the re-check and the
# caller all read this one set.
linked_people = sa.Table(
    "optout_assoc_linked",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("company_id", sa.Integer, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class Association:
    linked: int  # people given the company of their email domain
    companies_created: int
    removal: Removal  # enrollments ended by the re-check of the people linked


NOTHING = Association(0, 0, Removal(0, 0))


def unlinked(workspace_id: int, person: sa.TableClause | sa.Table = t.people) -> Any:
    """People association may link: no company, not unlinked by a user, and an email
    domain that is no free-mail provider."""
    return sa.and_(
        person.c.workspace_id == workspace_id,
        person.c.company_id.is_(None),
        person.c.company_link_source.is_distinct_from(MANUAL),
        person.c.email_domain.not_in(sorted(free_mail_domains())),
    )


def associate(
    db: Connection,
    *,
    workspace_id: int,
    now: datetime,
    actor: str,
    people: sa.Select[Any] | None = None,
    companies: sa.Select[Any] | None = None,
    cause: str = "company from email domain",
) -> Association:
    """Link the unlinked people among `people` (ids) to the company of their email
    domain, creating missing companies when the workspace says so; and link the
    unlinked people of the domains of `companies` (ids: new companies, or companies
    whose domain changed) to them. Then re-check everyone linked (R14)."""
    if people is None and companies is None:
        return NOTHING
    p, c = t.people, t.companies
    scope = []
    if people is not None:
        scope.append(p.c.id.in_(people))
    if companies is not None:
        scope.append(p.c.email_domain.in_(sa.select(c.c.domain).where(c.c.id.in_(companies))))
    candidates = sa.and_(unlinked(workspace_id), sa.or_(*scope))
    created = 0
    if people is not None:
        settings = workspaces.get_by_id(db, workspace_id=workspace_id)
        if settings.create_companies_from_email_domain:
            created = _create_companies(
                db,
                workspace_id=workspace_id,
                people=sa.and_(unlinked(workspace_id), p.c.id.in_(people)),
                now=now,
            )
    count = stage(
        db,
        linked_people,
        sa.select(p.c.id, c.c.id.label("company_id"))
        .join(c, sa.and_(c.c.workspace_id == workspace_id, c.c.domain == p.c.email_domain))
        .where(candidates),
    )
    if count == 0:
        return Association(0, created, Removal(0, 0))
    s = linked_people
    db.execute(
        p.update()
        .where(p.c.id == s.c.id)
        .values(company_id=s.c.company_id, company_link_source=EMAIL_DOMAIN, updated_at=now)
    )
    removal = recheck_people(
        db,
        workspace_id=workspace_id,
        people=sa.select(s.c.id),
        actor=actor,
        now=now,
        cause=cause,
    )
    return Association(count, created, removal)


def _create_companies(
    db: Connection, *, workspace_id: int, people: sa.ColumnElement[bool], now: datetime
) -> int:
    """Create a company for each email domain of `people` that no company has; one row per
    domain (the label needs the public suffix list, so it is computed here)."""
    p, c = t.people, t.companies
    missing = db.scalars(
        sa.select(p.c.email_domain)
        .where(
            people,
            ~sa.exists().where(c.c.workspace_id == workspace_id, c.c.domain == p.c.email_domain),
        )
        .distinct()
    ).all()
    if not missing:
        return 0
    db.execute(
        c.insert(),
        [
            {
                "workspace_id": workspace_id,
                "domain": domain,
                "domain_label": domain_label(domain),
                "name": domain,
                "fields": {},
                "created_at": now,
                "updated_at": now,
            }
            for domain in missing
        ],
    )
    db.execute(
        c.update()
        .where(c.c.workspace_id == workspace_id, c.c.group_id.is_(None))
        .values(group_id=c.c.id)
    )
    return len(missing)
