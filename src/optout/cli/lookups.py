"""Read-only lookups the CLI shows but no service offers yet: names for ids, the
audiences of a workspace, row counts. No business rule lives here; if another entry
point needs one of these, it belongs in a service module (`names_by_id` moved to
`optout.services.reads.listing` for the API; it is re-exported here)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.services.reads.listing import names_by_id


def audience_rows(db: Connection, *, workspace_id: int) -> list[dict[str, Any]]:
    """Every audience with its persona's name and the sequences it feeds, by name."""
    a, p, s = t.audiences, t.personas, t.sequences
    rows = db.execute(
        sa.select(a.c.id, a.c.name, p.c.name.label("persona"))
        .select_from(a.outerjoin(p, p.c.id == a.c.persona_id))
        .where(a.c.workspace_id == workspace_id)
        .order_by(a.c.name)
    ).mappings()
    audiences = [dict(r) for r in rows]
    feeds: dict[int, list[str]] = {}
    for row in db.execute(
        sa.select(s.c.audience_id, s.c.name)
        .where(s.c.workspace_id == workspace_id, s.c.audience_id.is_not(None))
        .order_by(s.c.name)
    ):
        feeds.setdefault(int(row.audience_id), []).append(str(row.name))
    for audience in audiences:
        audience["sequences"] = feeds.get(audience["id"], [])
    return audiences


def counts(db: Connection, *, workspace_id: int) -> dict[str, int]:
    """How many rows of each kind the workspace holds (for summaries)."""
    tables = {
        "people": t.people,
        "companies": t.companies,
        "opportunities": t.opportunities,
        "exclusions": t.exclusions,
        "personas": t.personas,
        "audiences": t.audiences,
        "rulesets": t.rulesets,
        "sequences": t.sequences,
        "enrollments": t.enrollments,
        "events": t.events,
    }
    out = {
        name: int(
            db.scalar(
                sa.select(sa.func.count())
                .select_from(table)
                .where(table.c.workspace_id == workspace_id)
            )
            or 0
        )
        for name, table in tables.items()
    }
    e, s = t.enrollments, t.suppressions
    out["active_enrollments"] = int(
        db.scalar(
            sa.select(sa.func.count()).where(
                e.c.workspace_id == workspace_id, e.c.status.in_(t.ACTIVE_STATUSES)
            )
        )
        or 0
    )
    for key, kind in (("opt_outs", "opt_out"), ("complaints", "complaint")):
        out[key] = int(
            db.scalar(
                sa.select(sa.func.count()).where(s.c.workspace_id == workspace_id, s.c.kind == kind)
            )
            or 0
        )
    return out


__all__ = ["audience_rows", "counts", "names_by_id"]


# Emails not delivered yet: waiting for their time, being sent, or held in doubt.
PENDING_EMAIL_STATUSES = ("queued", "sending", "in_doubt")


def pending_emails(
    db: Connection, *, workspace_id: int, person_id: int, sequence_id: int | None = None
) -> list[dict[str, Any]]:
    """A person's emails not delivered yet, soonest first, with their sequence and step."""
    o, s, q = t.outbound_emails, t.sequence_steps, t.sequences
    query = (
        sa.select(
            o.c.id,
            q.c.name.label("sequence"),
            s.c.position.label("step"),
            s.c.subject,
            o.c.status,
            o.c.due_at,
        )
        .join(s, s.c.id == o.c.step_id)
        .join(q, q.c.id == s.c.sequence_id)
        .where(
            o.c.workspace_id == workspace_id,
            o.c.person_id == person_id,
            o.c.status.in_(PENDING_EMAIL_STATUSES),
        )
        .order_by(o.c.due_at, o.c.id)
    )
    if sequence_id is not None:
        query = query.where(q.c.id == sequence_id)
    return [dict(row) for row in db.execute(query).mappings()]
