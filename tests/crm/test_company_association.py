"""CRM contacts that carry no company belong to the company of their email domain; a
company the CRM names always wins (R12, R14, R32)."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services import workspaces
from optout.services.exclusions import saves
from tests.crm.conftest import Crm, hubspot_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World

StartHubSpot = Callable[..., HubSpot]

ACME = ("ann@acme.com", "bob@acme.com", "cy@acme.com")


def links(crm: Crm) -> dict[str, tuple[str | None, str | None]]:
    p, c = t.people, t.companies
    with crm.db() as db:
        rows = db.execute(
            sa.select(p.c.email, c.c.domain, p.c.company_link_source)
            .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
            .where(p.c.workspace_id == crm.ws)
        ).all()
    return {row.email: (row.domain, row.company_link_source) for row in rows}


def test_R12_hubspot_contacts_without_company_are_unenrolled_by_a_company_exclusion_on_save(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    for email in ACME:
        hubspot.contact(email)
    globex = hubspot.company("globex.io", "Globex")
    hubspot.contact("dan@acme.com", company=globex)  # the CRM's company wins
    hubspot.contact("eve@gmail.com")
    crm = hubspot_workspace(fresh_engine, clock, hubspot)

    report = crm.sync()

    assert report.status == "ok", report.error
    assert links(crm) == {
        "ann@acme.com": ("acme.com", "email_domain"),
        "bob@acme.com": ("acme.com", "email_domain"),
        "cy@acme.com": ("acme.com", "email_domain"),
        "dan@acme.com": ("globex.io", "crm"),
        "eve@gmail.com": (None, None),
    }
    crm.enroll(*ACME, "dan@acme.com")
    with crm.db() as db:
        saved = saves.create(
            db,
            workspace_id=crm.ws,
            name="Acme is a customer",
            level="company",
            filter="company.domain in (acme.com)",
            unenroll_existing_on_save=True,
            confirm=True,
            actor="ops@acme-sales.com",
            now=utcnow(),
        )
    assert saved.removal.enrollments_ended == 3
    assert [crm.status(email) for email in ACME] == ["unenrolled"] * 3
    assert crm.status("dan@acme.com") == "not_started"


def test_R14_a_hubspot_company_synced_later_picks_up_its_contacts_and_monitoring_follows(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    for email in ACME:
        hubspot.contact(email)

    def build(world: World) -> None:
        workspaces.set_company_creation(world.db, workspace_id=world.ws, enabled=False)
        world.exclusion(
            "Acme is a customer", "company", "company.domain in (acme.com)",
            exclude_from_sequences=True,
        )  # fmt: skip

    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=build)
    crm.sync()
    assert set(links(crm).values()) == {(None, None)}
    crm.enroll(*ACME)

    hubspot.company("acme.com", "Acme")
    report = crm.sync()

    assert report.applied.unenrolled == 3
    assert set(links(crm).values()) == {("acme.com", "email_domain")}
    assert [crm.status(email) for email in ACME] == ["unenrolled"] * 3
