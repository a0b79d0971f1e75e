"""The demo's CRM data: companies (one linked to its parent), people and deals with
contact roles, created through the services as a CRM sync would."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from optout.demo import generate as g
from optout.demo import names
from optout.services.directory import companies, opportunities, people

DEAL_KINDS = ("platform", "expansion", "pilot")
ROLES = ("Decision maker", "Champion", "Evaluator")


def load(
    db: Connection, ws: int, rng: random.Random, roster: g.Roster, now: datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Company ids by domain and person ids by email."""
    company_ids = _companies(db, ws, roster, now)
    person_ids = _people(db, ws, roster, company_ids, now)
    _deals(db, ws, rng, roster, company_ids, person_ids, now)
    return company_ids, person_ids


def _companies(db: Connection, ws: int, roster: g.Roster, now: datetime) -> dict[str, int]:
    ids = {
        c.domain: companies.create(
            db,
            workspace_id=ws,
            domain=c.domain,
            name=c.name,
            now=now,
            fields={"industry": c.industry, "employees": c.employees},
        )
        for c in roster.companies
    }
    companies.link(
        db, workspace_id=ws, parent_id=ids["globex.com"], child_id=ids["initrode.net"], now=now
    )
    return ids


def _people(
    db: Connection, ws: int, roster: g.Roster, company_ids: dict[str, int], now: datetime
) -> dict[str, int]:
    return {
        p.email: people.create(
            db,
            workspace_id=ws,
            email=p.email,
            first_name=p.first_name,
            last_name=p.last_name,
            title=p.title,
            status=p.status,
            company_id=company_ids[p.company] if p.company else None,
            fields={"lead_source": p.lead_source},
            now=now,
        )
        for p in roster.people
    }


def _deals(
    db: Connection,
    ws: int,
    rng: random.Random,
    roster: g.Roster,
    company_ids: dict[str, int],
    person_ids: dict[str, int],
    now: datetime,
) -> None:
    """Won deals at the customers, an open one at Umbrella Health, and a mix elsewhere."""
    plan: list[tuple[str, str, bool, bool]] = [
        ("acme.com", "Closed Won", True, True),
        ("globex.com", "Closed Won", True, True),
        ("umbrellahealth.io", "Negotiation", False, False),
    ]
    generated = [c.domain for c in roster.companies[len(g.STORY_COMPANIES) :]]
    for domain in rng.sample(generated, 12):
        kind = rng.choice(("open", "won", "lost"))
        if kind == "open":
            plan.append((domain, rng.choice(names.OPEN_STAGES), False, False))
        else:
            plan.append((domain, f"Closed {kind.title()}", True, kind == "won"))
    by_company: dict[str, list[str]] = {}
    for p in roster.people:
        if p.company and p.email.endswith("@" + p.company):
            by_company.setdefault(p.company, []).append(p.email)
    for domain, stage, closed, won in plan:
        deal = opportunities.create(
            db,
            workspace_id=ws,
            company_id=company_ids[domain],
            now=now,
            name=f"{domain.split('.')[0].title()} - {rng.choice(DEAL_KINDS)}",
            stage=stage,
            amount=float(rng.randrange(8_000, 250_000, 500)),
            is_closed=closed,
            is_won=won,
            close_date=now - timedelta(days=rng.randint(5, 200))
            if closed
            else now + timedelta(days=rng.randint(10, 90)),
            actor="crm-sync",
        )
        for email in rng.sample(
            by_company.get(domain, []), min(2, len(by_company.get(domain, [])))
        ):
            opportunities.add_contact(
                db,
                workspace_id=ws,
                opportunity_id=deal,
                person_id=person_ids[email],
                role=rng.choice(ROLES),
                now=now,
                actor="crm-sync",
            )
