"""The demo workspace's configuration: exclusions of every kind, a persona, two
audiences (one switching a rule off), three rulesets, two sender mailboxes with daily
limits and three sequences, the outbound one sending from both mailboxes on weekdays
from 09:00 to 17:00 in each recipient's time zone."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from optout.mail.windows import ANY_TIME, Schedule
from optout.services.exclusions import saves
from optout.services.mailboxes import sender_mailboxes
from optout.services.sequences import audiences, definitions, personas, rulesets

OUTBOUND = "Q4 Outbound"
PEOPLE_INTRO = "People Teams Intro"
WEBINAR = "Webinar Follow-up"
ENGINEERING = "Engineering leaders"
PEOPLE_TEAMS = "People teams"
PERSONA = "No interns or recruiters"
CUSTOMERS = "Current customers"
HR_TITLES = "HR and recruiting titles"
# address, display name, daily limit, seconds between two sends, time zone
MAILBOXES = (
    ("alex@yourteam.example", "Alex Morgan", 40, 120, "Europe/Berlin"),
    ("sam@yourteam.example", "Sam Patel", 30, 180, "America/New_York"),
)
BUSINESS_HOURS = Schedule(start_minute=9 * 60, end_minute=17 * 60, business_day_waits=True)
BODY = "Hi {{ person.first_name }},\n\nA short note about TOPIC at {{ company.name }}.\n\nAlex"

# name, level, filter, exclude_from_sequences, enabled
RULES = (
    (CUSTOMERS, "company", "company.domain in (acme.com, globex.com, vandelay.com)", True, True),
    ("Open deals", "company", "opportunity.is_closed = false", True, True),
    (
        "Replied in the last 30 days",
        "company",
        "company.last_replied_at within last 30 days",
        True,
        True,
    ),
    ("Personal addresses", "people", "person.email_domain is personal", False, True),
    (HR_TITLES, "people", "person.title contains any (hr, people, talent, recruiter)", False, True),
    ("Competitors", "company", "company.domain in (rivalsoft.com, competeco.io)", False, False),
)


def configure(db: Connection, ws: int, actor: str, now: datetime) -> None:
    for name, level, text, enforced, enabled in RULES:
        saves.create(
            db,
            workspace_id=ws,
            name=name,
            level=level,
            filter=text,
            actor=actor,
            now=now,
            exclude_from_sequences=enforced,
            enabled=enabled,
            confirm=True,
        )
    personas.create(
        db, workspace_id=ws, name=PERSONA, exclude_keywords=("intern", "recruiter"), now=now
    )
    audiences.create(
        db,
        workspace_id=ws,
        name=ENGINEERING,
        persona=PERSONA,
        now=now,
        filter='person.title contains any (cto, engineering, devops, "staff engineer")',
    )
    audiences.create(
        db,
        workspace_id=ws,
        name=PEOPLE_TEAMS,
        persona=PERSONA,
        now=now,
        filter="person.title contains any (hr, people, talent)",
    )
    audiences.switch_off(
        db, workspace_id=ws, audience=PEOPLE_TEAMS, exclusion=HR_TITLES, actor=actor, now=now
    )
    rulesets.create(
        db, workspace_id=ws, name="Standard, 7-day cooldown", reenroll_cooldown_days=7, now=now
    )
    rulesets.create(
        db,
        workspace_id=ws,
        name="Account-based, max 2 per company",
        max_active_per_company=2,
        now=now,
    )
    rulesets.create(
        db,
        workspace_id=ws,
        name="Transactional, exclusions off",
        exclusions_enabled=False,
        now=now,
    )
    for address, display_name, limit, gap, zone in MAILBOXES:
        sender_mailboxes.create(
            db,
            workspace_id=ws,
            address=address,
            display_name=display_name,
            daily_limit=limit,
            min_gap_seconds=gap,
            time_zone=zone,
            actor=actor,
            now=now,
        )
    for name, ruleset, audience, topic in (
        (OUTBOUND, "Standard, 7-day cooldown", ENGINEERING, "your release process"),
        (PEOPLE_INTRO, "Account-based, max 2 per company", PEOPLE_TEAMS, "onboarding at scale"),
        (WEBINAR, "Transactional, exclusions off", None, "the webinar recording"),
    ):
        made = definitions.create(
            db,
            workspace_id=ws,
            name=name,
            ruleset=ruleset,
            audience=audience,
            now=now,
            from_address="Alex Morgan <alex@yourteam.example>",
            steps=steps(topic),
            schedule=BUSINESS_HOURS if name == OUTBOUND else ANY_TIME,
        )
        if name == OUTBOUND:  # two reps share the outbound sequence
            sender_mailboxes.set_for_sequence(
                db,
                workspace_id=ws,
                sequence_id=made,
                addresses=[address for address, *_ in MAILBOXES],
                actor=actor,
                now=now,
            )


def steps(topic: str) -> list[definitions.Step]:
    body = BODY.replace("TOPIC", topic)
    return [
        definitions.Step(kind="email", subject=f"A question about {topic}", body_text=body),
        definitions.Step(kind="wait", wait_seconds=3 * 86_400),
        # No subject of its own: sent as "Re: " and the first subject, in its thread.
        definitions.Step(kind="email", subject="", body_text=body),
        definitions.Step(kind="wait", wait_seconds=4 * 86_400),
        definitions.Step(kind="email", subject="Closing the loop", body_text=body),
    ]
