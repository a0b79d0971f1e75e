"""Changing a person's company through the API says first which exclusions stop covering
them, as the person's page does (R12, R17): refused with 409 naming the rules, applied
only with `confirm`."""

from __future__ import annotations

import sqlalchemy as sa

from optout.db import tables as t
from tests.web.api.conftest import Api, error_of
from tests.web.api.test_flows import Committed


def test_R12_a_company_change_that_stops_an_exclusion_needs_confirm(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        ann = world.person("ann@acme.com", company="acme.com")
        globex = world.company("globex.io")
        world.exclusion("Acme is a customer", "company", "company.domain in (acme.com)")
        keys = api.keys(world)
    http = api.client(keys.member)

    refused = http.patch(f"/people/{ann}", json={"company_id": globex})
    removed = http.patch(f"/people/{ann}", json={"company_id": None})

    for answer in (refused, removed):
        assert answer.status_code == 409
        error = error_of(answer)
        assert error["code"] == "confirmation_required"
        assert "'Acme is a customer'" in error["message"]
    with api.engine.connect() as db:
        company = db.scalar(sa.select(t.people.c.company_id).where(t.people.c.id == ann))
    assert company is not None
    assert company != globex  # nothing was written

    same = http.patch(f"/people/{ann}", json={"company_id": company, "title": "CTO"})
    assert same.status_code == 200  # not a change of company: nothing to confirm
    moved = http.patch(f"/people/{ann}", json={"company_id": globex, "confirm": True})
    assert moved.status_code == 200
    assert moved.json()["person"]["company_domain"] == "globex.io"
