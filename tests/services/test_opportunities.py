"""Deals and their contact roles (R20, R34)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import Conflict
from optout.services.directory import opportunities
from tests.factories import World


def test_R34_adding_a_contact_role_twice_is_a_conflict_and_keeps_the_first(
    world: World,
) -> None:
    ann = world.person("ann@acme.com", company="acme.com")
    deal = world.opportunity("acme.com", stage="negotiation")
    opportunities.add_contact(
        world.db, workspace_id=world.ws, opportunity_id=deal, person_id=ann, now=world.now,
        role="champion",
    )  # fmt: skip

    with pytest.raises(Conflict, match="already"):
        opportunities.add_contact(
            world.db, workspace_id=world.ws, opportunity_id=deal, person_id=ann, now=world.now,
            role="buyer",
        )  # fmt: skip

    oc = t.opportunity_contacts
    rows = world.db.execute(sa.select(oc.c.person_id, oc.c.role)).all()
    assert [tuple(row) for row in rows] == [(ann, "champion")]
