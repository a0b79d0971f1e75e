"""The demo workspace's configuration: exclusions of every kind, a persona, two
audiences (one switching a rule off), three rulesets and three sequences."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from optout.services import audiences, exclusions, personas, rulesets, sequences

OUTBOUND = "Q4 Outbound"
PEOPLE_INTRO = "People Teams Intro"
WEBINAR = "Webinar Follow-up"
ENGINEERING = "Engineering leaders"
PEOPLE_TEAMS = "People teams"
PERSONA = "No interns or recruiters"
CUSTOMERS = "Current customers"
HR_TITLES = "HR and recruiting titles"
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
        exclusions.create(
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
    for name, ruleset, audience, topic in (
        (OUTBOUND, "Standard, 7-day cooldown", ENGINEERING, "your release process"),
        (PEOPLE_INTRO, "Account-based, max 2 per company", PEOPLE_TEAMS, "onboarding at scale"),
        (WEBINAR, "Transactional, exclusions off", None, "the webinar recording"),
    ):
        sequences.create(
            db,
            workspace_id=ws,
            name=name,
            ruleset=ruleset,
            audience=audience,
            now=now,
            from_address="alex@yourteam.example",
            steps=steps(topic),
        )


def steps(topic: str) -> list[sequences.Step]:
    body = BODY.replace("TOPIC", topic)
    return [
        sequences.Step(kind="email", subject=f"A question about {topic}", body_text=body),
        sequences.Step(kind="wait", wait_seconds=3 * 86_400),
        sequences.Step(kind="email", subject=f"Re: {topic}", body_text=body),
        sequences.Step(kind="wait", wait_seconds=4 * 86_400),
        sequences.Step(kind="email", subject="Closing the loop", body_text=body),
    ]
