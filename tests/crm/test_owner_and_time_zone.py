"""A person's owner and time zone come from the CRM (R37, R38): a HubSpot contact's
`hubspot_owner_id` is read as the owner's email through the owners API (every page of
it), a Salesforce Lead's or Contact's `OwnerId` as `Owner.Email`; a contact owned by a
user whose address is one of our mailboxes is enrolled on that mailbox. HubSpot's
`hs_timezone` becomes the person's time zone, their sending hours' clock."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.mailboxes import sender_mailboxes
from tests.crm.conftest import Crm, hubspot_workspace, salesforce_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import DEFAULT_SCOPES, OWNERS_SCOPE, HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World

REPS = ("ann@acme-sales.com", "bob@acme-sales.com")


def _two_mailboxes(world: World) -> None:
    ids = [
        sender_mailboxes.create(
            world.db, workspace_id=world.ws, address=a, actor="admin", now=world.now
        ).id
        for a in REPS
    ]
    sequence = world.db.scalar(
        sa.select(t.sequences.c.id).where(
            t.sequences.c.workspace_id == world.ws, t.sequences.c.name == "Outbound"
        )
    )
    sender_mailboxes.attach(world.db, sequence_id=sequence, mailbox_ids=ids)


def _enrolled_on(crm: Crm, emails: list[str]) -> dict[str, tuple[str | None, str | None, str]]:
    """Each person's (mailbox, time zone, owner) after enrolling them all at once."""
    crm.enroll(*emails)
    e, p, b = t.enrollments, t.people, t.mailboxes
    with crm.engine.connect() as db:
        rows = db.execute(
            sa.select(p.c.email, b.c.address, p.c.time_zone, p.c.fields)
            .join(e, e.c.person_id == p.c.id)
            .outerjoin(b, b.c.id == e.c.mailbox_id)
            .where(p.c.workspace_id == crm.ws)
        ).all()
    return {r.email: (r.address, r.time_zone, (r.fields or {}).get("owner", "")) for r in rows}


def test_R37_R38_hubspot_a_contact_is_enrolled_on_its_owner_s_mailbox_in_its_time_zone(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=_two_mailboxes)
    for n in range(130):  # more owners than one page of the owners API holds
        hubspot.owner(f"user{n}@acme-sales.com")
    ann = hubspot.owner("ann@acme-sales.com", "Ann", "Lee")
    bob = hubspot.owner("Bob@Acme-Sales.com", "Bob", "Reyes")
    nobody = hubspot.owner("carl@acme-sales.com")  # owns people, has no mailbox here
    owned = {
        "kai@nordhafen.de": (ann, "europe_slash_berlin"),
        "lea@alpenbau.de": (ann, "Europe/Berlin"),
        "mia@hamburgport.de": (ann, "europe_slash_berlin"),
        "max@brooklynbrew.com": (bob, "us_slash_eastern"),
        "ned@osakatech.jp": (nobody, "asia_slash_tokyo"),
        "ola@nowhere.io": (None, "not a zone"),
    }
    for email, (owner, zone) in owned.items():
        props = {"hs_timezone": zone}
        if owner is not None:
            props["hubspot_owner_id"] = owner
        hubspot.contact(email, firstname=email.split("@")[0].title(), **props)

    report = crm.sync()
    assert report.status == "ok", report.error

    given = _enrolled_on(crm, list(owned))
    assert given["kai@nordhafen.de"] == (
        "ann@acme-sales.com",
        "Europe/Berlin",
        "ann@acme-sales.com",
    )
    assert given["lea@alpenbau.de"] == ("ann@acme-sales.com", "Europe/Berlin", "ann@acme-sales.com")
    assert given["mia@hamburgport.de"] == (
        "ann@acme-sales.com",
        "Europe/Berlin",
        "ann@acme-sales.com",
    )
    assert given["max@brooklynbrew.com"] == (
        "bob@acme-sales.com",
        "US/Eastern",
        "bob@acme-sales.com",
    )
    # An owner without a mailbox here, or no owner: dealt over the sequence's mailboxes.
    assert given["ned@osakatech.jp"][1:] == ("Asia/Tokyo", "carl@acme-sales.com")
    assert given["ned@osakatech.jp"][0] in REPS
    assert given["ola@nowhere.io"][1:] == (None, "")
    assert given["ola@nowhere.io"][0] in REPS
    assert hubspot.calls["GET /crm/v3/owners"] == 2  # two pages, read once for the sync


def test_R37_hubspot_a_token_that_may_not_read_owners_syncs_everyone_without_one(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot(scopes=tuple(s for s in DEFAULT_SCOPES if s != OWNERS_SCOPE))
    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=_two_mailboxes)
    ann = hubspot.owner("ann@acme-sales.com")
    hubspot.contact("kai@nordhafen.de", hubspot_owner_id=ann, hs_timezone="europe_slash_berlin")

    report = crm.sync()

    assert report.status == "ok", report.error
    given = _enrolled_on(crm, ["kai@nordhafen.de"])
    assert given["kai@nordhafen.de"][1:] == ("Europe/Berlin", "")
    assert given["kai@nordhafen.de"][0] in REPS


def test_R37_salesforce_a_lead_or_contact_is_enrolled_on_its_owner_s_mailbox(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: Callable[..., Salesforce]
) -> None:
    salesforce = start_salesforce()
    crm = salesforce_workspace(fresh_engine, clock, salesforce, build=_two_mailboxes)
    ann = salesforce.create("User", Email="ann@acme-sales.com", Username="ann@acme.example")
    bob = salesforce.create("User", Email="Bob@Acme-Sales.com", Username="bob@acme.example")
    carl = salesforce.create("User", Email="carl@acme-sales.com", Username="carl@acme.example")
    account = salesforce.create("Account", Name="Nordhafen", Website="nordhafen.de")
    salesforce.create("Contact", Email="kai@nordhafen.de", AccountId=account, OwnerId=ann,
                      FirstName="Kai", LastName="Berg", HasOptedOutOfEmail=False)  # fmt: skip
    salesforce.create("Contact", Email="lea@nordhafen.de", AccountId=account, OwnerId=ann,
                      FirstName="Lea", LastName="Lund", HasOptedOutOfEmail=False)  # fmt: skip
    salesforce.create("Lead", Email="max@brooklynbrew.com", Company="Brooklyn Brew",
                      OwnerId=bob, LastName="Kane", Status="Open")  # fmt: skip
    salesforce.create("Lead", Email="ned@osakatech.jp", Company="Osaka Tech",
                      OwnerId=carl, LastName="Sato", Status="Open")  # fmt: skip

    report = crm.sync()
    assert report.status == "ok", report.error

    given = _enrolled_on(
        crm, ["kai@nordhafen.de", "lea@nordhafen.de", "max@brooklynbrew.com", "ned@osakatech.jp"]
    )
    assert given["kai@nordhafen.de"] == ("ann@acme-sales.com", None, "ann@acme-sales.com")
    assert given["lea@nordhafen.de"] == ("ann@acme-sales.com", None, "ann@acme-sales.com")
    assert given["max@brooklynbrew.com"] == ("bob@acme-sales.com", None, "bob@acme-sales.com")
    assert given["ned@osakatech.jp"][2] == "carl@acme-sales.com"
    assert given["ned@osakatech.jp"][0] in REPS
