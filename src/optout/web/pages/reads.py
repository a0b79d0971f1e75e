"""Read-only lookups the pages show that `services.reads.listing` does not offer: counts per
day, rows joined the way a page shows them, name search. No business rule and no write
lives here (writes go through the services); if another entry point needs one of these,
it belongs in `services.reads.listing`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.services.exclusions.reached import people_reached


def _count(db: Connection, query: sa.Select[Any]) -> int:
    return int(db.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0)


# --- dashboard ---------------------------------------------------------------------------


def totals(db: Connection, *, workspace_id: int) -> dict[str, int]:
    p, c, e, s, x = t.people, t.companies, t.enrollments, t.suppressions, t.exclusions
    return {
        "people": _count(db, sa.select(p.c.id).where(p.c.workspace_id == workspace_id)),
        "companies": _count(db, sa.select(c.c.id).where(c.c.workspace_id == workspace_id)),
        "active_enrollments": _count(
            db,
            sa.select(e.c.id).where(
                e.c.workspace_id == workspace_id, e.c.status.in_(t.ACTIVE_STATUSES)
            ),
        ),
        "opt_outs": _count(
            db,
            sa.select(s.c.id).where(s.c.workspace_id == workspace_id, s.c.kind == "opt_out"),
        ),
        "exclusions": _count(
            db,
            sa.select(x.c.id).where(
                x.c.workspace_id == workspace_id,
                x.c.enabled.is_(True),
                x.c.archived_at.is_(None),
            ),
        ),
    }


@dataclass(frozen=True)
class Day:
    day: date
    opt_outs: int
    blocks: int  # enrollments ended or whose email was cancelled (distinct enrollments)
    sends: int


def _day(value: Any) -> date:
    """SQLite's date() answers text, PostgreSQL's a date."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def daily_activity(
    db: Connection, *, workspace_id: int, now: datetime, days: int = 30
) -> list[Day]:
    """Opt-outs, blocks and sends per UTC day over the last `days` days, oldest first."""
    first = (now - timedelta(days=days - 1)).date()
    since = datetime(first.year, first.month, first.day)
    e, g = t.events, t.suppression_ledger
    on = sa.func.date(e.c.at)
    sends = {
        _day(d): int(n)
        for d, n in db.execute(
            sa.select(on, sa.func.count())
            .where(e.c.workspace_id == workspace_id, e.c.at >= since, e.c.kind == "email_sent")
            .group_by(on)
        )
    }
    blocks = {
        _day(d): int(n)
        for d, n in db.execute(
            sa.select(on, sa.func.count(sa.distinct(e.c.enrollment_id)))
            .where(
                e.c.workspace_id == workspace_id,
                e.c.at >= since,
                e.c.kind.in_(("enrollment_ended", "email_cancelled")),
            )
            .group_by(on)
        )
    }
    opted = sa.func.date(g.c.at)
    opt_outs = {
        _day(d): int(n)
        for d, n in db.execute(
            sa.select(opted, sa.func.count())
            .where(
                g.c.workspace_id == workspace_id,
                g.c.at >= since,
                g.c.kind == "opt_out",
                g.c.action == "added",
            )
            .group_by(opted)
        )
    }
    out = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        out.append(Day(day, opt_outs.get(day, 0), blocks.get(day, 0), sends.get(day, 0)))
    return out


def people_matched(
    db: Connection, *, workspace_id: int, exclusion: ExclusionSpec, now: datetime
) -> int:
    """How many people an exclusion reaches now (the count of its impact preview)."""
    return _count(db, people_reached(exclusion, workspace_id=workspace_id, now=now))


# --- audiences and sequences ------------------------------------------------------------


def audience_rows(db: Connection, *, workspace_id: int) -> list[dict[str, Any]]:
    """Every audience with its persona's name and the sequences it feeds."""
    a, p, s = t.audiences, t.personas, t.sequences
    rows = db.execute(
        sa.select(a.c.id, a.c.name, a.c.filter, p.c.name.label("persona"))
        .select_from(a.outerjoin(p, p.c.id == a.c.persona_id))
        .where(a.c.workspace_id == workspace_id)
        .order_by(a.c.name)
    ).mappings()
    audiences = [dict(r) for r in rows]
    feeds: dict[int, list[dict[str, Any]]] = {}
    for row in db.execute(
        sa.select(s.c.audience_id, s.c.id, s.c.name)
        .where(s.c.workspace_id == workspace_id, s.c.audience_id.is_not(None))
        .order_by(s.c.name)
    ):
        feeds.setdefault(int(row.audience_id), []).append({"id": row.id, "name": row.name})
    for audience in audiences:
        audience["sequences"] = feeds.get(audience["id"], [])
    return audiences


def sequence_rows(db: Connection, *, workspace_id: int) -> list[dict[str, Any]]:
    """Every sequence with its ruleset, audience, number of steps and enrollment counts."""
    s, r, a, st, e = t.sequences, t.rulesets, t.audiences, t.sequence_steps, t.enrollments
    steps = (
        sa.select(sa.func.count())
        .where(st.c.sequence_id == s.c.id, st.c.kind == "email")
        .scalar_subquery()
    )
    rows = [
        dict(row)
        for row in db.execute(
            sa.select(
                s.c.id,
                s.c.name,
                s.c.status,
                r.c.name.label("ruleset"),
                a.c.name.label("audience"),
                steps.label("emails"),
            )
            .join(r, r.c.id == s.c.ruleset_id)
            .outerjoin(a, a.c.id == s.c.audience_id)
            .where(s.c.workspace_id == workspace_id)
            .order_by(s.c.name)
        ).mappings()
    ]
    counts: dict[int, dict[str, int]] = {}
    for sequence_id, status, n in db.execute(
        sa.select(e.c.sequence_id, e.c.status, sa.func.count())
        .where(e.c.workspace_id == workspace_id)
        .group_by(e.c.sequence_id, e.c.status)
    ):
        counts.setdefault(int(sequence_id), {})[str(status)] = int(n)
    for row in rows:
        row["counts"] = counts.get(row["id"], {})
    return rows


def sequence_choices(db: Connection, *, workspace_id: int) -> list[str]:
    s = t.sequences
    return list(
        db.scalars(sa.select(s.c.name).where(s.c.workspace_id == workspace_id).order_by(s.c.name))
    )


# --- people -----------------------------------------------------------------------------


def suppressions_of(db: Connection, *, workspace_id: int, email: str) -> dict[str, dict[str, Any]]:
    """The address's opt-out and bounce, by kind, when there are any."""
    s = t.suppressions
    rows = db.execute(
        sa.select(s).where(s.c.workspace_id == workspace_id, s.c.email == email)
    ).mappings()
    return {str(r["kind"]): dict(r) for r in rows}


def recent_imports(db: Connection, *, workspace_id: int, limit: int = 10) -> list[dict[str, Any]]:
    """The latest applied imports (their `import_applied` events), newest first."""
    e = t.events
    rows = db.execute(
        sa.select(e.c.at, e.c.actor, e.c.detail)
        .where(e.c.workspace_id == workspace_id, e.c.kind == "import_applied")
        .order_by(e.c.id.desc())
        .limit(limit)
    ).mappings()
    return [dict(r) for r in rows]


# --- personas and rulesets ---------------------------------------------------------------


def sequences_of_ruleset(db: Connection, *, workspace_id: int, ruleset_id: int) -> list[Any]:
    """The sequences that use a ruleset, by name."""
    s = t.sequences
    return list(
        db.execute(
            sa.select(s.c.id, s.c.name, s.c.status)
            .where(s.c.workspace_id == workspace_id, s.c.ruleset_id == ruleset_id)
            .order_by(s.c.name)
        )
    )


def users_of_persona(
    db: Connection, *, workspace_id: int, persona_id: int
) -> tuple[list[Any], list[Any]]:
    """The audiences built on a persona, and the sequences those audiences feed."""
    a, s = t.audiences, t.sequences
    built_on = sa.and_(a.c.workspace_id == workspace_id, a.c.persona_id == persona_id)
    found = list(db.execute(sa.select(a.c.id, a.c.name).where(built_on).order_by(a.c.name)))
    fed = list(
        db.execute(
            sa.select(s.c.id, s.c.name, s.c.status, a.c.name.label("audience"))
            .join(a, a.c.id == s.c.audience_id)
            .where(built_on)
            .order_by(s.c.name)
        )
    )
    return found, fed


# Gmail's sender guidelines: keep the spam rate below 0.1%, never let it reach 0.3%.
GMAIL_TARGET = 0.001
GMAIL_LIMIT = 0.003
COMPLAINT_WINDOW = 1000  # each sequence's rate counts its most recent sends


@dataclass(frozen=True)
class ComplaintRate:
    sequence_id: int
    name: str
    sends: int  # its last COMPLAINT_WINDOW sent emails, or fewer
    complaints: int  # of those, the ones a feedback-loop report complained about

    @property
    def rate(self) -> float:
        return self.complaints / self.sends if self.sends else 0.0

    @property
    def level(self) -> str:
        """ok, above_target (0.1% or more) or above_limit (0.3% or more)."""
        if self.rate >= GMAIL_LIMIT:
            return "above_limit"
        return "above_target" if self.rate >= GMAIL_TARGET else "ok"


def complaint_rates(
    db: Connection, *, workspace_id: int, window: int = COMPLAINT_WINDOW
) -> list[ComplaintRate]:
    """Spam complaints per sequence over its last `window` sent emails (R36), highest rate
    first, in one statement: the sends are ranked per sequence and joined to the emails
    that a complaint report was matched to."""
    o, e, m, s = t.outbound_emails, t.enrollments, t.inbound_messages, t.sequences
    ranked = (
        sa.select(
            o.c.id.label("email_id"),
            e.c.sequence_id,
            sa.func.row_number()
            .over(partition_by=e.c.sequence_id, order_by=(o.c.sent_at.desc(), o.c.id.desc()))
            .label("recent"),
        )
        .join(e, e.c.id == o.c.enrollment_id)
        .where(o.c.workspace_id == workspace_id, o.c.status == "sent")
        .subquery()
    )
    complained = (
        sa.select(m.c.email_id)
        .where(
            m.c.workspace_id == workspace_id,
            m.c.kind == "complaint",
            m.c.outcome == "complained",
            m.c.email_id.is_not(None),
        )
        .distinct()
        .subquery()
    )
    rows = db.execute(
        sa.select(
            ranked.c.sequence_id,
            s.c.name,
            sa.func.count().label("sends"),
            sa.func.count(complained.c.email_id).label("complaints"),
        )
        .join(s, s.c.id == ranked.c.sequence_id)
        .outerjoin(complained, complained.c.email_id == ranked.c.email_id)
        .where(ranked.c.recent <= window)
        .group_by(ranked.c.sequence_id, s.c.name)
    )
    rates = [ComplaintRate(r.sequence_id, r.name, int(r.sends), int(r.complaints)) for r in rows]
    return sorted(rates, key=lambda r: (-r.rate, -r.sends, r.name))


@dataclass(frozen=True)
class SendingRefusals:
    """Bounces that refused our own sender or server, not the recipient (R7)."""

    count: int
    recent: list[dict[str, Any]]  # the newest few: at, sequence, email, status, why, words


def sending_refusals(
    db: Connection, *, workspace_id: int, now: datetime, days: int = 7, show: int = 5
) -> SendingRefusals:
    e, s = t.events, t.sequences
    where = (
        e.c.workspace_id == workspace_id,
        e.c.kind == "sending_refused",
        e.c.at >= now - timedelta(days=days),
    )
    count = _count(db, sa.select(e.c.id).where(*where))
    rows = db.execute(
        sa.select(e.c.at, e.c.detail, s.c.name.label("sequence"))
        .outerjoin(s, s.c.id == e.c.sequence_id)
        .where(*where)
        .order_by(e.c.at.desc(), e.c.id.desc())
        .limit(show)
    ).mappings()
    recent = [
        {
            "at": row["at"],
            "sequence": row["sequence"] or "",
            "email": row["detail"].get("email", ""),
            "status": row["detail"].get("status", ""),
            "why": row["detail"].get("why", ""),
            "words": row["detail"].get("diagnostic", ""),
        }
        for row in rows
    ]
    return SendingRefusals(count, recent)
