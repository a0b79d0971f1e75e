"""Activity (R21): what a person did or had done to them, with its source, and the
dates it moves on the person and their company.

Any number of activities are recorded together, set-based: one insert, one update of the
dates per kind of activity, and one re-check of the enforced exclusions over everyone the
new dates may now match (the people and everyone at their companies' groups, R12, R14).
One reply and a batch of two hundred inbound messages take the same path.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import NotFound
from optout.services.enforcement import Removal
from optout.services.monitoring import recheck_people

OWN_SOURCE = "optout"  # activity written by optout itself (our sends, write-backs)


@dataclass(frozen=True)
class Activity:
    person_id: int
    kind: str  # email_sent, reply, meeting, call, crm_activity
    source: str  # who wrote it: `optout`, the CRM, email, a user (R21)
    occurred_at: datetime
    sequence_id: int | None = None


def record(
    db: Connection,
    *,
    workspace_id: int,
    activities: Sequence[Activity],
    now: datetime,
    actor: str,
) -> Removal:
    """Record `activities` and move the people's and companies' dates, then end the
    active enrollments an enforced exclusion now matches.

    Activity from optout itself moves only the `*_any_at` dates, so it never trips an
    activity-based exclusion by itself.
    """
    if not activities:
        return Removal(0, 0)
    p, c = t.people, t.companies
    wanted = sorted({a.person_id for a in activities})
    company_of: dict[int, int | None] = {
        row.id: row.company_id
        for row in db.execute(
            sa.select(p.c.id, p.c.company_id).where(
                p.c.workspace_id == workspace_id, p.c.id.in_(wanted)
            )
        )
    }
    missing = [person for person in wanted if person not in company_of]
    if missing:
        raise NotFound(f"no person with id {missing[0]}")
    db.execute(
        t.activities.insert(),
        [
            {
                "workspace_id": workspace_id,
                "person_id": a.person_id,
                "company_id": company_of[a.person_id],
                "kind": a.kind,
                "source": a.source,
                "sequence_id": a.sequence_id,
                "occurred_at": a.occurred_at,
            }
            for a in activities
        ],
    )
    for (kind, own, when), people in _by_dates(activities).items():
        companies = sorted({cid for pid in people if (cid := company_of[pid]) is not None})
        db.execute(
            p.update().where(p.c.id.in_(sorted(people))).values(**_moved(p, kind, own, when))
        )
        if companies:
            db.execute(
                c.update()
                .where(c.c.id.in_(companies))
                .values(**_moved(c, kind, own, when, person=False))
            )
    return recheck_people(
        db,
        workspace_id=workspace_id,
        people=_touched(workspace_id, company_of),
        actor=actor,
        now=now,
        cause=f"{' and '.join(sorted({a.kind for a in activities}))} activity",
    )


def _by_dates(activities: Sequence[Activity]) -> dict[tuple[str, bool, datetime], set[int]]:
    """The people whose dates move the same way (kind, own or not, moment)."""
    groups: dict[tuple[str, bool, datetime], set[int]] = defaultdict(set)
    for a in activities:
        groups[(a.kind, a.source == OWN_SOURCE, a.occurred_at)].add(a.person_id)
    return groups


def _moved(
    table: sa.Table, kind: str, own: bool, when: datetime, *, person: bool = True
) -> dict[str, Any]:
    """The date columns an activity moves forward to `when` (never back)."""

    def later(column: sa.Column[Any]) -> Any:
        return sa.case((column.is_(None), when), (column < when, when), else_=column)

    names = ["last_activity_any_at"]
    if not own:
        names.append("last_activity_at")
    if kind == "reply":
        names.append("last_replied_at")
    if kind == "email_sent" and own and person:
        names.append("last_emailed_at")
    return {name: later(table.c[name]) for name in names}


def _touched(workspace_id: int, company_of: dict[int, int | None]) -> sa.Select[Any]:
    """The people whose exclusions may now match: those without a company, and everyone
    at the companies of the group of each company touched (R12)."""
    p, c, own = t.people, t.companies.alias(), t.companies.alias()
    alone = sorted(pid for pid, cid in company_of.items() if cid is None)
    companies = sorted({cid for cid in company_of.values() if cid is not None})
    groups = sa.select(own.c.group_id).where(own.c.id.in_(companies))
    at_companies = (
        sa.select(p.c.id)
        .join(c, c.c.id == p.c.company_id)
        .where(p.c.workspace_id == workspace_id, c.c.group_id.in_(groups))
    )
    if not alone:
        return at_companies
    return sa.select(p.c.id).where(
        p.c.workspace_id == workspace_id,
        sa.or_(p.c.id.in_(alone), p.c.id.in_(at_companies)),
    )
