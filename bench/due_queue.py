"""A workspace whose queue holds many due emails, written set-based (INSERT ... SELECT over a
counting CTE, the same statements on SQLite and PostgreSQL): one company per 100 people,
every person enrolled in a one-email sequence, one queued email each.

Used by the worker scaling benchmark (`bench.workers`) and the load test
(`bench.load_service`); the services make the few rows a user would make by hand (the
workspace, a ruleset, the sequence), SQL makes the many.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.services import workspaces
from optout.services.sequences import definitions, rulesets

PEOPLE_PER_COMPANY = 100
FROM_ADDRESS = "Sam Sender <sam@sender.example>"


@dataclass(frozen=True)
class DueQueue:
    workspace_id: int
    sequence_id: int
    emails: int


def numbers(count: int) -> sa.CTE:
    """Rows n = 1..count, a recursive CTE both databases run."""
    seed = sa.select(sa.literal(1, sa.Integer).label("n")).cte("numbers", recursive=True)
    return seed.union_all(sa.select(seed.c.n + 1).where(seed.c.n < count))


def _text(value: sa.ColumnElement[int]) -> sa.ColumnElement[str]:
    return sa.cast(value, sa.String)


def build(
    engine: Engine,
    *,
    emails: int,
    now: datetime,
    due_at: datetime | None = None,
    spread: timedelta | None = None,
    slug: str = "bench",
) -> DueQueue:
    """`emails` people, each enrolled with one email due at `due_at` (default `now`); with
    `spread`, the due times are spread evenly over [due_at, due_at + spread)."""
    with engine.begin() as db:
        workspace_id = workspaces.create(db, slug=slug, name="Bench", now=now).id
        rulesets.create(db, workspace_id=workspace_id, name="Bench rules", now=now)
        sequence_id = definitions.create(
            db,
            workspace_id=workspace_id,
            name="Bench outbound",
            ruleset="Bench rules",
            from_address=FROM_ADDRESS,
            steps=[
                definitions.Step(
                    "email",
                    subject="Hello {{ person.first_name }}",
                    body_text="Hi {{ person.first_name }}, a word about {{ company.name }}.",
                )
            ],
            now=now,
        )
        companies = max(1, emails // PEOPLE_PER_COMPANY)
        _companies(db, workspace_id=workspace_id, count=companies, now=now)
        _people(db, workspace_id=workspace_id, count=emails, now=now)
        _enroll(db, workspace_id=workspace_id, sequence_id=sequence_id, now=now)
        _queue(db, sequence_id=sequence_id, due_at=due_at or now)
        if spread is not None:
            spread_due(db, sequence_id=sequence_id, start=due_at or now, spread=spread)
    return DueQueue(workspace_id, sequence_id, emails)


def pad_people(engine: Engine, *, workspace_id: int, people: int, now: datetime) -> int:
    """Add people with no enrollment (and a company per 100 of them) until the workspace
    holds `people`, set-based, in one transaction; returns how many were added.

    Their addresses (`q<n>@d<m>.example`) never meet the queue's (`p<n>@c<m>.example`)."""
    p, c = t.people, t.companies
    with engine.begin() as db:
        have = db.scalar(
            sa.select(sa.func.count()).select_from(p).where(p.c.workspace_id == workspace_id)
        )
        extra = people - (have or 0)
        if extra <= 0:
            return 0
        companies, n = max(1, extra // PEOPLE_PER_COMPANY), numbers(extra)
        label = sa.literal("d", sa.String) + _text(n.c.n - 1)
        db.execute(
            c.insert().from_select(
                ["workspace_id", "domain", "domain_label", "name", "fields", "created_at",
                 "updated_at"],
                sa.select(
                    sa.literal(workspace_id), label + ".example", label,
                    sa.literal("Padding ", sa.String) + _text(n.c.n - 1),
                    sa.literal({}, sa.JSON), sa.literal(now, sa.DateTime),
                    sa.literal(now, sa.DateTime),
                ).where(n.c.n <= companies),
            )
        )  # fmt: skip
        db.execute(
            c.update()
            .where(c.c.workspace_id == workspace_id, c.c.group_id.is_(None))
            .values(group_id=c.c.id)
        )
        domain = sa.literal("d", sa.String) + _text(n.c.n % companies) + ".example"
        db.execute(
            p.insert().from_select(
                ["workspace_id", "email", "email_domain", "first_name", "last_name",
                 "company_id", "company_link_source", "fields", "created_at", "updated_at"],
                sa.select(
                    sa.literal(workspace_id),
                    sa.literal("q", sa.String) + _text(n.c.n) + "@" + domain, domain,
                    sa.literal("Q", sa.String) + _text(n.c.n), sa.literal("Bench"), c.c.id,
                    sa.literal("email_domain"), sa.literal({}, sa.JSON),
                    sa.literal(now, sa.DateTime), sa.literal(now, sa.DateTime),
                ).join_from(n, c, sa.and_(c.c.workspace_id == workspace_id, c.c.domain == domain)),
            )
        )  # fmt: skip
    return extra


def person_email(n: int, emails: int) -> str:
    """The address `build` gives person number n (1-based), for the load test's clients."""
    return f"p{n}@c{n % max(1, emails // PEOPLE_PER_COMPANY)}.example"


def _companies(db: Connection, *, workspace_id: int, count: int, now: datetime) -> None:
    c, n = t.companies, numbers(count)
    label = sa.literal("c", sa.String) + _text(n.c.n - 1)
    db.execute(
        c.insert().from_select(
            ["workspace_id", "domain", "domain_label", "name", "fields", "created_at",
             "updated_at"],
            sa.select(
                sa.literal(workspace_id), label + ".example", label,
                sa.literal("Company ", sa.String) + _text(n.c.n - 1),
                sa.literal({}, sa.JSON), sa.literal(now, sa.DateTime), sa.literal(now, sa.DateTime),
            ),
        )
    )  # fmt: skip
    db.execute(c.update().where(c.c.workspace_id == workspace_id).values(group_id=c.c.id))


def _people(db: Connection, *, workspace_id: int, count: int, now: datetime) -> None:
    p, c, n = t.people, t.companies, numbers(count)
    companies = max(1, count // PEOPLE_PER_COMPANY)
    domain = sa.literal("c", sa.String) + _text(n.c.n % companies) + ".example"
    db.execute(
        p.insert().from_select(
            ["workspace_id", "email", "email_domain", "first_name", "last_name", "company_id",
             "company_link_source", "fields", "created_at", "updated_at"],
            sa.select(
                sa.literal(workspace_id), sa.literal("p", sa.String) + _text(n.c.n) + "@" + domain,
                domain, sa.literal("P", sa.String) + _text(n.c.n), sa.literal("Bench"), c.c.id,
                sa.literal("email_domain"), sa.literal({}, sa.JSON),
                sa.literal(now, sa.DateTime), sa.literal(now, sa.DateTime),
            ).join_from(n, c, sa.and_(c.c.workspace_id == workspace_id, c.c.domain == domain)),
        )
    )  # fmt: skip


def _enroll(db: Connection, *, workspace_id: int, sequence_id: int, now: datetime) -> None:
    e, p = t.enrollments, t.people
    db.execute(
        e.insert().from_select(
            ["workspace_id", "sequence_id", "person_id", "status", "source", "next_position",
             "next_run_at", "enrolled_at", "enrolled_by"],
            sa.select(
                sa.literal(workspace_id), sa.literal(sequence_id), p.c.id,
                sa.literal("in_progress"), sa.literal("manual"), sa.literal(0),
                sa.literal(now, sa.DateTime), sa.literal(now, sa.DateTime), sa.literal("bench"),
            ).where(p.c.workspace_id == workspace_id),
        )
    )  # fmt: skip


def _queue(db: Connection, *, sequence_id: int, due_at: datetime) -> None:
    e, o, st = t.enrollments, t.outbound_emails, t.sequence_steps
    step_id = db.scalar(
        sa.select(st.c.id).where(st.c.sequence_id == sequence_id, st.c.position == 0)
    )
    db.execute(
        o.insert().from_select(
            ["workspace_id", "enrollment_id", "step_id", "person_id", "status", "due_at",
             "attempts"],
            sa.select(
                e.c.workspace_id, e.c.id, sa.literal(step_id), e.c.person_id,
                sa.literal("queued"), sa.literal(due_at, sa.DateTime), sa.literal(0),
            ).where(e.c.sequence_id == sequence_id),
        )
    )  # fmt: skip


SPREAD_BUCKETS = 100


def spread_due(db: Connection, *, sequence_id: int, start: datetime, spread: timedelta) -> None:
    """Due times in SPREAD_BUCKETS steps over the spread: one UPDATE per step, not per row."""
    e, o = t.enrollments, t.outbound_emails
    mine = sa.select(e.c.id).where(e.c.sequence_id == sequence_id)
    for bucket in range(SPREAD_BUCKETS):
        db.execute(
            o.update()
            .where(o.c.enrollment_id.in_(mine), o.c.person_id % SPREAD_BUCKETS == bucket)
            .values(due_at=start + spread * bucket / SPREAD_BUCKETS)
        )
