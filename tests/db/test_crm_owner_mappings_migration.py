"""Migration 0021: CRM connections made before owners and time zones were read get the
mappings new connections start with (HubSpot `hubspot_owner_id` and `hs_timezone`,
Salesforce `OwnerId` on Leads and Contacts), except where something is mapped to that
field already; both databases go down and up again (R31, R37)."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crm import connections
from optout.db import tables as t
from optout.db.migrate import downgrade, upgrade
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)
BEFORE = "0020_mailbox_imap"


def _owner_and_zone(engine: Engine) -> set[tuple[str, str, str, str]]:
    m, c = t.crm_field_mappings, t.crm_connections
    with engine.connect() as db:
        return {
            (r.kind, r.crm_object, r.crm_field, r.our_field)
            for r in db.execute(
                sa.select(c.c.kind, m.c.crm_object, m.c.crm_field, m.c.our_field)
                .join(c, c.c.id == m.c.connection_id)
                .where(m.c.our_field.in_(("owner", "time_zone")))
            )
        }


@pytest.mark.filterwarnings("ignore:.*expression-based index")
def test_R37_existing_crm_connections_come_to_read_owners_and_time_zones(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        world = World(db, NOW)
        for kind, url in (
            ("hubspot", "https://api.hubapi.com"),
            ("salesforce", "https://acme.my.salesforce.com"),
        ):
            connections.connect(db, workspace_id=world.ws, kind=kind, base_url=url, now=NOW)
    made_now = _owner_and_zone(fresh_engine)
    assert made_now == {
        ("hubspot", "contacts", "hubspot_owner_id", "owner"),
        ("hubspot", "contacts", "hs_timezone", "time_zone"),
        ("salesforce", "Lead", "OwnerId", "owner"),
        ("salesforce", "Contact", "OwnerId", "owner"),
    }

    downgrade(fresh_engine, BEFORE)
    assert _owner_and_zone(fresh_engine) == set()
    m, c = t.crm_field_mappings, t.crm_connections
    with fresh_engine.begin() as db:
        salesforce = db.scalar(sa.select(c.c.id).where(c.c.kind == "salesforce"))
        # A team that keeps its reps' addresses in a field of its own on Contacts.
        db.execute(
            m.insert().values(
                connection_id=salesforce,
                crm_object="Contact",
                crm_field="Rep_Email__c",
                our_field="owner",
                mode="read",
            )
        )
        others = db.scalar(sa.select(sa.func.count()).select_from(m))
    upgrade(fresh_engine)
    assert _owner_and_zone(fresh_engine) == {
        ("hubspot", "contacts", "hubspot_owner_id", "owner"),
        ("hubspot", "contacts", "hs_timezone", "time_zone"),
        ("salesforce", "Lead", "OwnerId", "owner"),
        ("salesforce", "Contact", "Rep_Email__c", "owner"),
    }
    with fresh_engine.connect() as db:
        assert db.scalar(sa.select(sa.func.count()).select_from(m)) == int(others or 0) + 3
