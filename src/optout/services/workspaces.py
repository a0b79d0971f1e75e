"""Workspaces: the tenants. Every other row belongs to exactly one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import Conflict, InvalidInput, NotFound

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

DEMO_NAME = "optout demo"  # marks a workspace `optout demo` may wipe and rebuild


@dataclass(frozen=True)
class Workspace:
    id: int
    slug: str
    name: str
    mass_exclusion_share: float
    mass_unenroll_limit: int
    auto_opt_out_on_unsubscribe_reply: bool
    create_companies_from_email_domain: bool = True


def create(
    db: Connection,
    *,
    slug: str,
    name: str,
    now: datetime,
    mass_exclusion_share: float = 0.2,
    mass_unenroll_limit: int = 1000,
) -> Workspace:
    if not _SLUG.match(slug):
        raise InvalidInput(f"workspace slug {slug!r}: use lowercase letters, digits and '-'")
    if not 0 < mass_exclusion_share <= 1:
        raise InvalidInput("mass_exclusion_share must be in (0, 1]")
    if mass_unenroll_limit < 0:
        raise InvalidInput("mass_unenroll_limit must not be negative")
    if db.scalar(sa.select(t.workspaces.c.id).where(t.workspaces.c.slug == slug)) is not None:
        raise Conflict(f"workspace {slug!r} exists already")
    db.execute(
        t.workspaces.insert().values(
            slug=slug,
            name=name,
            created_at=now,
            mass_exclusion_share=mass_exclusion_share,
            mass_unenroll_limit=mass_unenroll_limit,
            auto_opt_out_on_unsubscribe_reply=True,
            create_companies_from_email_domain=True,
        )
    )
    return get(db, slug=slug)


def get(db: Connection, *, slug: str) -> Workspace:
    row = db.execute(sa.select(t.workspaces).where(t.workspaces.c.slug == slug)).mappings().first()
    if row is None:
        raise NotFound(f"no workspace {slug!r}")
    return Workspace(
        id=row["id"],
        slug=row["slug"],
        name=row["name"],
        mass_exclusion_share=row["mass_exclusion_share"],
        mass_unenroll_limit=row["mass_unenroll_limit"],
        auto_opt_out_on_unsubscribe_reply=row["auto_opt_out_on_unsubscribe_reply"],
        create_companies_from_email_domain=row["create_companies_from_email_domain"],
    )


def demo_slugs(db: Connection) -> list[str]:
    """The slugs of the workspaces `optout demo` built, for the sign-in page to name."""
    w = t.workspaces
    return list(db.scalars(sa.select(w.c.slug).where(w.c.name == DEMO_NAME).order_by(w.c.slug)))


def get_by_id(db: Connection, *, workspace_id: int) -> Workspace:
    slug = db.scalar(sa.select(t.workspaces.c.slug).where(t.workspaces.c.id == workspace_id))
    if slug is None:
        raise NotFound(f"no workspace with id {workspace_id}")
    return get(db, slug=slug)


def set_company_creation(db: Connection, *, workspace_id: int, enabled: bool) -> Workspace:
    """Whether a person whose email domain names no company yet gets that company created
    (and is linked to it), or stays unlinked until such a company appears."""
    db.execute(
        t.workspaces.update()
        .where(t.workspaces.c.id == workspace_id)
        .values(create_companies_from_email_domain=enabled)
    )
    return get_by_id(db, workspace_id=workspace_id)
