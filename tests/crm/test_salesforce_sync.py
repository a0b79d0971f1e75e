"""Salesforce sync end to end over real HTTP (R1, R14, R20, R31, R32, R33)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.suppression import optouts, writebacks
from tests.crm.conftest import Crm, salesforce_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.salesforce import Salesforce
from tests.factories import World

StartSalesforce = Callable[..., Salesforce]


def _org(sf: Salesforce) -> dict[str, str]:
    acme = sf.create("Account", Name="Acme", Website="https://www.acme.com/")
    return {
        "acme": acme,
        "ann": sf.create(
            "Contact",
            Email="ann@acme.com",
            FirstName="Ann",
            LastName="A",
            Title="CTO",
            AccountId=acme,
            HasOptedOutOfEmail=False,
        ),
        "bob": sf.create(
            "Contact",
            Email="bob@acme.com",
            FirstName="Bob",
            AccountId=acme,
            HasOptedOutOfEmail=False,
        ),
        # The same address as a Lead (not converted) and as a Contact.
        "ann_lead": sf.create(
            "Lead",
            Email="ANN@acme.com",
            FirstName="Ann",
            Company="Acme",
            Website="acme.com",
            Status="Working",
            HasOptedOutOfEmail=False,
            IsConverted=False,
        ),
        "dee": sf.create(
            "Lead",
            Email="dee@initech.example",
            Company="Initech",
            Website="initech.example",
            Status="Open",
            HasOptedOutOfEmail=False,
            IsConverted=False,
        ),
    }


def _unsubscribe(crm: Crm, email: str) -> None:
    with crm.db() as db:
        optouts.opt_out(db, workspace_id=crm.ws, email=email, actor="recipient",
                        channel="unsubscribe_link", now=utcnow())  # fmt: skip
        writebacks.record_opt_out_writeback(db, workspace_id=crm.ws, email=email, now=utcnow())


def test_R32_jwt_bearer_sync_brings_accounts_leads_contacts(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    rsa_key: tuple[Path, bytes],
) -> None:
    sf = start_salesforce()
    _org(sf)
    crm = salesforce_workspace(
        fresh_engine,
        clock,
        sf,
        settings={
            "auth": "jwt",
            "username": sf.username,
            "private_key_path": str(rsa_key[0]),
            "login_url": sf.base_url,
        },
    )
    crm.env["OPTOUT_CRM_KEY_FOLDER"] = str(rsa_key[0].parent)

    report = crm.sync()

    assert report.status == "ok", report.error
    assert sf.tokens_issued == 1
    # The login host is the audience, not the org's own address asked for the token.
    assert sf.audiences == ["https://login.salesforce.com"]
    p, c = t.people, t.companies
    with crm.db() as db:
        rows = db.execute(
            sa.select(p.c.email, p.c.status, c.c.domain)
            .join(c, c.c.id == p.c.company_id)
            .order_by(p.c.email)
        ).all()
    # One person per address: the Lead and the Contact for ann@acme.com are one.
    assert [tuple(r) for r in rows] == [
        ("ann@acme.com", "Working", "acme.com"),
        ("bob@acme.com", "", "acme.com"),
        ("dee@initech.example", "Open", "initech.example"),
    ]


def test_R1_a_lead_opted_out_suppresses_the_contact_with_the_same_address(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com")

    sf.update("Lead", ids["ann_lead"], HasOptedOutOfEmail=True)
    report = crm.sync()

    assert report.applied.opted_out == 1
    assert crm.status("ann@acme.com") == "opted_out"
    assert crm.status("bob@acme.com") == "not_started"


def test_R33_salesforce_saying_not_opted_out_never_clears_ours(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    sf.update("Contact", ids["bob"], HasOptedOutOfEmail=True)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.sync()
    assert crm.opted_out("bob@acme.com")

    sf.update("Contact", ids["bob"], HasOptedOutOfEmail=False)
    crm.sync()
    crm.sync(full=True)

    assert crm.opted_out("bob@acme.com")


def test_R31_unsubscribe_lands_on_every_lead_and_contact_only_in_read_write_mode(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.sync()

    _unsubscribe(crm, "ann@acme.com")
    read_only = crm.sync()
    assert read_only.writebacks.skipped == 1
    assert sf.composite_requests == []

    crm.map("Lead", "HasOptedOutOfEmail", "email_opt_out", "read_write")
    crm.map("Contact", "HasOptedOutOfEmail", "email_opt_out", "read_write")
    _unsubscribe(crm, "bob@acme.com")
    with crm.db() as db:  # and the skipped one again, now that writing is allowed
        writebacks.record_opt_out_writeback(db, workspace_id=crm.ws, email="ann@acme.com",
                                            now=utcnow())  # fmt: skip
    written = crm.sync()

    assert written.writebacks.failed == 0
    assert sf.records["Contact"][ids["ann"]]["HasOptedOutOfEmail"] is True
    assert sf.records["Lead"][ids["ann_lead"]]["HasOptedOutOfEmail"] is True
    assert sf.records["Contact"][ids["bob"]]["HasOptedOutOfEmail"] is True
    assert sf.records["Lead"][ids["dee"]]["HasOptedOutOfEmail"] is False


def test_R31_a_custom_do_not_email_field_can_be_the_master_flag(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    for record in sf.records["Contact"].values():
        record["Do_Not_Email__c"] = False
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.map("Contact", "Do_Not_Email__c", "email_opt_out", "read_write")
    crm.sync()

    sf.update("Contact", ids["bob"], HasOptedOutOfEmail=True)  # no longer the master flag
    sf.update("Contact", ids["ann"], Do_Not_Email__c=True)
    crm.sync()
    assert crm.opted_out("ann@acme.com")
    assert not crm.opted_out("bob@acme.com")

    _unsubscribe(crm, "bob@acme.com")
    crm.sync()
    assert sf.records["Contact"][ids["bob"]]["Do_Not_Email__c"] is True


def test_R31_a_partial_failure_of_a_composite_write_is_retried_later(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.map("Contact", "HasOptedOutOfEmail", "email_opt_out", "read_write")
    crm.sync()
    _unsubscribe(crm, "ann@acme.com")
    _unsubscribe(crm, "bob@acme.com")
    sf.fail_records[ids["bob"]] = 1  # one record locked once

    first = crm.sync()

    assert (first.writebacks.written, first.writebacks.failed) == (1, 1)
    assert sf.records["Contact"][ids["ann"]]["HasOptedOutOfEmail"] is True
    assert sf.records["Contact"][ids["bob"]]["HasOptedOutOfEmail"] is False
    w = t.crm_writebacks
    with crm.db() as db:
        rows = {r.email: r for r in db.execute(sa.select(w)).all()}
    assert rows["bob@acme.com"].status == "pending"
    assert rows["bob@acme.com"].attempts == 1
    assert "UNABLE_TO_LOCK_ROW" in rows["bob@acme.com"].last_error
    # Not due yet: the backoff counts from the failed attempt.
    assert crm.sync().writebacks.written == 0
    with crm.db() as db:
        db.execute(w.update().values(updated_at=utcnow().replace(year=2000)))

    second = crm.sync()

    assert second.writebacks.written == 1
    assert sf.records["Contact"][ids["bob"]]["HasOptedOutOfEmail"] is True
    with crm.db() as db:
        assert set(db.scalars(sa.select(w.c.status))) == {"done"}


def test_R31_a_write_that_keeps_failing_is_given_up_after_the_last_attempt(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.map("Contact", "HasOptedOutOfEmail", "email_opt_out", "read_write")
    crm.sync()
    _unsubscribe(crm, "bob@acme.com")
    sf.fail_records[ids["bob"]] = 99
    w = t.crm_writebacks
    for _ in range(5):
        crm.sync()
        with crm.db() as db:
            db.execute(w.update().values(updated_at=utcnow().replace(year=2000)))
    assert crm.scalar(sa.select(w.c.status)) == "failed"
    assert crm.scalar(sa.select(w.c.attempts)) == 5


def test_R32_an_expired_session_gets_a_new_token(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce(token_ttl=30.0, default_batch=2)
    _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    connector = crm.connector()
    clock.sleep(1)
    list(connector.changes("Contact", since=None))
    clock.sleep(60)  # the session expires between two syncs of one long-lived connector

    report = crm.sync(connector=connector)
    connector.close()

    assert report.status == "ok", report.error
    assert sf.invalid_sessions == 1
    assert sf.tokens_issued == 2


def test_R32_the_sync_stops_near_the_api_allowance_and_resumes_later(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce(api_limit=20, default_batch=1)
    for n in range(12):
        sf.create("Contact", Email=f"c{n}@budget.example", HasOptedOutOfEmail=False)
    crm = salesforce_workspace(fresh_engine, clock, sf, settings={"stop_at": 0.5, "slow_at": 0.4})

    stopped = crm.sync()

    assert stopped.status == "stopped"
    assert "allowance" in stopped.error
    assert sf.api_used <= 11
    count = sa.select(sa.func.count()).select_from(t.people)
    done = crm.scalar(count)
    assert 0 < done < 12
    assert clock.slept > 0  # slowed down before stopping

    sf.api_limit = 1_000  # a new day
    resumed = crm.sync()
    assert resumed.status == "ok", resumed.error
    assert crm.scalar(count) == 12


def test_R20_opportunity_contact_roles_feed_has_opportunity_and_follow_deletions(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)

    def rule(world: World) -> None:
        world.exclusion("In a deal", "people", "person.has_opportunity = true",
                        exclude_from_sequences=True)  # fmt: skip

    crm = salesforce_workspace(fresh_engine, clock, sf, build=rule)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com")

    deal = sf.create("Opportunity", Name="Acme platform", StageName="Negotiation", Amount=50000,
                     IsClosed=False, IsWon=False, AccountId=ids["acme"])  # fmt: skip
    role = sf.create("OpportunityContactRole", OpportunityId=deal, ContactId=ids["bob"],
                     Role="Decision Maker")  # fmt: skip
    crm.sync()

    assert crm.status("bob@acme.com") == "unenrolled"
    assert crm.status("ann@acme.com") == "not_started"
    links = t.opportunity_contacts
    assert crm.scalar(sa.select(links.c.role)) == "Decision Maker"

    sf.delete("OpportunityContactRole", role)
    crm.sync()
    assert crm.scalar(sa.select(sa.func.count()).select_from(links)) == 0


def test_R20_an_opportunity_stage_change_unenrolls_the_account_people(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    ids = _org(sf)
    deal = sf.create("Opportunity", Name="Acme", StageName="Prospecting", IsClosed=False,
                     IsWon=False, AccountId=ids["acme"], CloseDate="2026-12-31")  # fmt: skip

    def rule(world: World) -> None:
        world.exclusion("Negotiating", "company", 'opportunity.stage = "negotiation"',
                        exclude_from_sequences=True)  # fmt: skip

    crm = salesforce_workspace(fresh_engine, clock, sf, build=rule)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com", "dee@initech.example")

    sf.update("Opportunity", deal, StageName="Negotiation")
    crm.sync()

    assert crm.status("ann@acme.com") == "unenrolled"
    assert crm.status("bob@acme.com") == "unenrolled"
    assert crm.status("dee@initech.example") == "not_started"


def test_R32_a_contact_whose_account_was_never_read_gets_it_fetched(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    _org(sf)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    crm.sync()
    # An account created long ago (before the bookmark), linked to a new contact now.
    old = utcnow().replace(year=2020)
    globex = sf.create("Account", at=old, Name="Globex", Website="globex.io")
    sf.create("Contact", Email="cy@globex.io", AccountId=globex, HasOptedOutOfEmail=False)

    crm.sync()

    p, c = t.people, t.companies
    assert (
        crm.scalar(
            sa.select(c.c.domain)
            .join(p, p.c.company_id == c.c.id)
            .where(p.c.email == "cy@globex.io")
        )
        == "globex.io"
    )
