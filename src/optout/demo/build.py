"""Build the demo workspace through the real services, along a two-week story.

Fourteen days ago the CRM data arrived; rules, audiences and sequences were set up;
people were enrolled; then life happened: a reply, a new deal, opt-outs, a manual
unenroll, a new rule saved with unenroll-on-save, a new lead. Every step goes
through the services, so the events (R35) tell that story back.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.demo import crm, setup
from optout.demo import generate as g
from optout.demo.setup import CUSTOMERS, OUTBOUND, PEOPLE_INTRO, PEOPLE_TEAMS, WEBINAR
from optout.errors import Conflict, NotFound
from optout.services import workspaces
from optout.services.directory import opportunities, people
from optout.services.enforcement import end_enrollments
from optout.services.enrollments import enrolling, refresh
from optout.services.exclusions import saves
from optout.services.sequences import definitions
from optout.services.suppression import optouts

DEMO_NAME = workspaces.DEMO_NAME
STORY_DAYS = 14


@dataclass(frozen=True)
class Story:
    """What the tour points at."""

    slug: str
    workspace_id: int
    blocked: str  # blocked from OUTBOUND through a linked company
    allowed: str  # eligible for OUTBOUND, not yet enrolled
    replier: str
    colleague: str  # unenrolled company-wide when the replier replied (R6)
    cooling_down: str  # manually unenrolled: in the 7-day cooldown (R9)
    opted_out: str  # opted out while enrolled (R1)
    complained: str  # reported our email as spam while enrolled (R36)
    customer: str  # at an excluded customer; allowed where a ruleset turns exclusions off
    sequence: str = OUTBOUND
    audience: str = PEOPLE_TEAMS
    near_miss_rule: str = CUSTOMERS


class _Clock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def wipe(db: Connection, *, slug: str) -> None:
    """Delete a workspace made by the demo, every row of it, children first."""
    try:
        found = workspaces.get(db, slug=slug)
    except NotFound:
        return
    if found.name != DEMO_NAME:
        raise Conflict(
            f"workspace {slug!r} was not made by `optout demo`, so it is left alone; "
            "build the demo in another one: `optout --workspace demo2 demo`"
        )
    for table in reversed(t.metadata.sorted_tables):
        if "workspace_id" in table.c:
            db.execute(table.delete().where(table.c.workspace_id == found.id))
    db.execute(t.workspaces.delete().where(t.workspaces.c.id == found.id))


def build(db: Connection, *, slug: str, now: datetime, seed: int, actor: str) -> Story:
    wipe(db, slug=slug)
    clock = _Clock(now.replace(microsecond=0) - timedelta(days=STORY_DAYS))
    ws = workspaces.create(db, slug=slug, name=DEMO_NAME, now=clock.now).id
    roster = g.generate(seed)
    rng = random.Random(seed + 1)
    company_ids, person_ids = crm.load(db, ws, rng, roster, clock.now)

    clock.advance(hours=1)
    setup.configure(db, ws, actor, clock.now)

    clock.advance(days=1)
    _enroll(db, ws, roster, person_ids, actor, clock.now)

    clock.advance(days=3)  # Sofia replies: her enrollment ends, her colleagues' too (R5, R6)
    _reply(db, ws, person_ids[g.REPLIER.email], clock.now)

    clock.advance(days=2)  # a new deal at Pioneer Freight: its people leave sequences (R14)
    deal = opportunities.create(
        db,
        workspace_id=ws,
        company_id=company_ids["pioneerfreight.com"],
        now=clock.now,
        name="Pioneer Freight - platform pilot",
        stage="Discovery",
        amount=48_000,
        actor="crm-sync",
    )
    opportunities.add_contact(
        db,
        workspace_id=ws,
        opportunity_id=deal,
        person_id=person_ids[g.IN_NEW_DEAL.email],
        role="Decision maker",
        now=clock.now,
        actor="crm-sync",
    )

    clock.advance(days=2)
    opted_out = _opt_outs(db, ws, rng, clock.now)
    complained = _complaint(db, ws, clock.now)

    clock.advance(days=1)  # a manual unenroll starts the 7-day cooldown (R8, R9)
    enrolling.unenroll(
        db,
        workspace_id=ws,
        sequence_id=_sequence_id(db, ws, OUTBOUND),
        person_ids=[person_ids[g.COOLING_DOWN.email]],
        actor="priya@yourteam",
        now=clock.now,
        reason="asked to reconnect next quarter",
    )

    clock.advance(days=1)  # a CRM status rule saved with unenroll-on-save (R13)
    saves.create(
        db,
        workspace_id=ws,
        name="CRM: Do Not Contact",
        level="people",
        filter='person.status = "do not contact"',
        actor=actor,
        now=clock.now,
        exclude_from_sequences=True,
        unenroll_existing_on_save=True,
        confirm=True,
    )

    clock.advance(days=3)  # a new lead arrives after the audience enrollment ran
    lead = g.NEW_LEAD
    people.create(
        db,
        workspace_id=ws,
        email=lead.email,
        first_name=lead.first_name,
        last_name=lead.last_name,
        title=lead.title,
        company_id=company_ids["brightwave.io"],
        status=lead.status,
        fields={"lead_source": lead.lead_source},
        now=clock.now,
    )
    return Story(
        slug=slug,
        workspace_id=ws,
        blocked=g.BLOCKED.email,
        allowed=lead.email,
        replier=g.REPLIER.email,
        colleague=g.COLLEAGUE.email,
        cooling_down=g.COOLING_DOWN.email,
        opted_out=opted_out,
        complained=complained,
        customer=next(
            p.email
            for p in roster.people
            if p.email.endswith("@acme.com") and p.lead_source != "webinar"
        ),
    )


def _sequence_id(db: Connection, ws: int, name: str) -> int:
    return definitions.spec_by_name(db, workspace_id=ws, name=name).id


def _enroll(
    db: Connection, ws: int, roster: g.Roster, person_ids: dict[str, int], actor: str, now: datetime
) -> None:
    """Audience-driven sequences enroll their audience (keeping who was left out and why,
    R30); the webinar follow-up takes the attendees by hand."""
    for sequence in (OUTBOUND, PEOPLE_INTRO):
        refresh.refresh(db, workspace_id=ws, sequence=sequence, actor=actor, now=now)
    attendees = [person_ids[p.email] for p in roster.people if p.lead_source == "webinar"]
    enrolling.enroll(
        db,
        workspace_id=ws,
        sequence_id=_sequence_id(db, ws, WEBINAR),
        people=attendees,
        actor=actor,
        now=now,
    )


def _reply(db: Connection, ws: int, person_id: int, now: datetime) -> None:
    e = t.enrollments
    end_enrollments(
        db,
        workspace_id=ws,
        status="replied",
        reason="replied",
        rule="reply",
        actor="inbox",
        now=now,
        targets=sa.select(e.c.id.label("enrollment_id")).where(
            e.c.person_id == person_id, e.c.status.in_(t.ACTIVE_STATUSES)
        ),
    )
    people.record_activity(
        db,
        workspace_id=ws,
        person_id=person_id,
        kind="reply",
        source="mailbox",
        now=now,
        actor="inbox",
    )


def _opt_outs(db: Connection, ws: int, rng: random.Random, now: datetime) -> str:
    """Three enrolled people opt out through different channels, and one address with no
    record yet is suppressed ahead of time (R1). Returns the first of the three."""
    e, p = t.enrollments, t.people
    active = list(
        db.scalars(
            sa.select(p.c.email)
            .join(e, e.c.person_id == p.c.id)
            .where(
                e.c.workspace_id == ws,
                e.c.status.in_(t.ACTIVE_STATUSES),
                p.c.email.not_in([person.email for person in g.STORY_PEOPLE]),
            )
            .distinct()
            .order_by(p.c.email)
        )
    )
    channels = (
        ("manual", "priya@yourteam", "asked on a discovery call to stop all email"),
        ("unsubscribe_link", "unsubscribe-page", "one-click unsubscribe"),
        ("reply", "inbox", 'replied "please take me off your list"'),
    )
    chosen: list[str] = rng.sample(active, len(channels))
    for email, (channel, who, reason) in zip(chosen, channels, strict=True):
        optouts.opt_out(
            db, workspace_id=ws, email=email, actor=who, channel=channel, now=now, reason=reason
        )
    optouts.opt_out(
        db,
        workspace_id=ws,
        email="j.novak.private@gmail.com",
        actor="priya@yourteam",
        channel="manual",
        now=now,
        reason="asked by phone; not in the CRM yet",
    )
    return chosen[0]


def _complaint(db: Connection, ws: int, now: datetime) -> str:
    """An enrolled person reports our email as spam through a mailbox provider's feedback
    loop (R36). Returns the address."""
    e, p = t.enrollments, t.people
    email = db.scalar(
        sa.select(p.c.email)
        .join(e, e.c.person_id == p.c.id)
        .where(
            e.c.workspace_id == ws,
            e.c.status.in_(t.ACTIVE_STATUSES),
            p.c.email.not_in([person.email for person in g.STORY_PEOPLE]),
        )
        .order_by(p.c.email)
        .limit(1)
    )
    assert email is not None, "the demo enrolls people before anyone complains"
    optouts.complain(
        db,
        workspace_id=ws,
        email=email,
        actor="feedback-loop",
        now=now,
        feedback_type="abuse",
        reporting_domain="fbl.mailprovider.example",
        reason="matched by the email's feedback id",
    )
    return str(email)
