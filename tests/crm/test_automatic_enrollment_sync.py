"""A CRM sync applies everything it read before a sequence that enrolls by itself asks
about anyone (R41, R14, R32): a new contact and, in the same sync, an open deal on their
company that an exclusion names: the contact is never enrolled, with no delay step."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.crm.protocol import Connector, Page, Record
from optout.db import tables as t
from optout.services.enrollments import automatic, refresh
from optout.services.sequences import auto_enroll
from tests.crm.conftest import Crm, hubspot_workspace, salesforce_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World


def _enrolling_ctos(world: World) -> None:
    world.audience("CTOs", filter='person.title contains "cto"')
    world.sequence("Tech", audience="CTOs")
    world.exclusion(
        "Open deal in contract",
        "company",
        'opportunity.stage in ("contractsent", "negotiation")',
    )
    auto_enroll.switch(
        world.db, workspace_id=world.ws, sequence="Tech", on=True, actor="admin", now=world.now
    )


class WorkerBetweenPages:
    """The CRM's connector, with the worker's enrollment pass run after each page the
    sync applied, as a worker running beside the sync would."""

    def __init__(self, inner: Connector, engine: Engine, ws: int) -> None:
        self.inner, self.engine, self.ws = inner, engine, ws
        self.objects = inner.objects
        self.passes: list[tuple[str, int, int]] = []  # object, queued then, enrolled

    @property
    def calls(self) -> int:
        return self.inner.calls

    def changes(self, obj: str, *, since: datetime | None, full: bool = False) -> Iterator[Page]:
        for page in self.inner.changes(obj, since=since, full=full):
            yield page
            with self.engine.begin() as db:
                queued = db.scalar(sa.select(sa.func.count()).select_from(t.enrollment_queue))
                enrolled = automatic.run(db, workspace_id=self.ws, now=utcnow())
            self.passes.append((obj, int(queued or 0), enrolled))

    def fetch(self, obj: str, ids: Sequence[str]) -> list[Record]:
        return self.inner.fetch(obj, ids)

    def write(self, obj: str, crm_field: str, emails: Sequence[str], value: Any) -> dict[str, str]:
        return self.inner.write(obj, crm_field, emails, value)

    def close(self) -> None:
        self.inner.close()


def _sync_with_worker_beside(crm: Crm) -> WorkerBetweenPages:
    connector = WorkerBetweenPages(crm.connector(), crm.engine, crm.ws)
    try:
        report = crm.sync(connector=connector)  # type: ignore[arg-type]
    finally:
        connector.close()
    assert report.status == "ok", report.error
    return connector


def _after_the_sync(crm: Crm, email: str) -> tuple[int, str | None, dict[str, str]]:
    with crm.engine.begin() as db:
        enrolled = automatic.run(db, workspace_id=crm.ws, now=utcnow())
        e, p, s = t.enrollments, t.people, t.sequences
        status = db.scalar(
            sa.select(e.c.status)
            .join(p, p.c.id == e.c.person_id)
            .join(s, s.c.id == e.c.sequence_id)
            .where(p.c.email == email, s.c.name == "Tech")
        )
        rows = refresh.not_enrolled(db, workspace_id=crm.ws, sequence="Tech")
    return enrolled, status, {row.email: row.reason for row in rows}


def _check(connector: WorkerBetweenPages, crm: Crm, email: str) -> None:
    contacts = [entry for entry in connector.passes if entry[0] in ("contacts", "Contact")]
    assert contacts, connector.passes
    assert any(queued for _, queued, _ in contacts), connector.passes
    assert all(enrolled == 0 for _, _, enrolled in connector.passes), connector.passes
    enrolled, status, reasons = _after_the_sync(crm, email)
    assert (enrolled, status) == (0, None)
    assert reasons == {email: "excluded by 'Open deal in contract'"}


def test_R41_R32_hubspot_a_contact_and_the_deal_that_excludes_them_in_one_sync(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: Callable[..., HubSpot]
) -> None:
    hubspot = start_hubspot()
    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=_enrolling_ctos)
    initech = hubspot.company("initech.net", "Initech")
    hubspot.contact("pat@initech.net", company=initech, firstname="Pat", jobtitle="CTO")
    hubspot.deal("Initech platform", "contractsent", company=initech)

    connector = _sync_with_worker_beside(crm)

    _check(connector, crm, "pat@initech.net")


def test_R41_R32_salesforce_a_contact_and_the_deal_that_excludes_them_in_one_sync(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: Callable[..., Salesforce]
) -> None:
    salesforce = start_salesforce()
    crm = salesforce_workspace(fresh_engine, clock, salesforce, build=_enrolling_ctos)
    initech = salesforce.create("Account", Name="Initech", Website="initech.net")
    salesforce.create("Contact", Email="pat@initech.net", AccountId=initech, FirstName="Pat",
                      Title="CTO", HasOptedOutOfEmail=False)  # fmt: skip
    salesforce.create("Opportunity", Name="Initech platform", StageName="Negotiation",
                      IsClosed=False, IsWon=False, AccountId=initech,
                      CloseDate="2026-12-31")  # fmt: skip

    connector = _sync_with_worker_beside(crm)

    _check(connector, crm, "pat@initech.net")
