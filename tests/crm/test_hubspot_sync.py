"""HubSpot sync end to end over real HTTP (R14, R20, R21, R31, R32, R33)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.crm import sync
from optout.crm.connections import CrmConnection
from optout.crm.protocol import Connector
from optout.db import tables as t
from optout.services.suppression import optouts, writebacks
from tests.crm.conftest import hubspot_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.factories import World

StartHubSpot = Callable[..., HubSpot]


def _portal(hubspot: HubSpot) -> dict[str, str]:
    acme = hubspot.company("acme.com", "Acme")
    globex = hubspot.company("https://www.Globex.io/", "Globex")
    return {
        "acme": acme,
        "globex": globex,
        "ann": hubspot.contact("Ann@Acme.com", company=acme, firstname="Ann", jobtitle="CTO"),
        "bob": hubspot.contact("bob@acme.com", company=acme, firstname="Bob"),
        "cy": hubspot.contact("cy@globex.io", company=globex, firstname="Cy"),
    }


def test_R32_first_sync_brings_companies_people_and_deals(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    hubspot.deal("Acme platform", "contractsent", company=ids["acme"], contacts=(ids["ann"],),
                 amount=12000)  # fmt: skip
    crm = hubspot_workspace(fresh_engine, clock, hubspot)

    report = crm.sync()

    assert report.status == "ok", report.error
    assert report.applied.by_object == {"companies": 2, "contacts": 3, "deals": 1}
    p, c, o = t.people, t.companies, t.opportunities
    with crm.db() as db:
        rows = db.execute(
            sa.select(p.c.email, p.c.first_name, p.c.title, c.c.domain)
            .join(c, c.c.id == p.c.company_id)
            .where(p.c.workspace_id == crm.ws)
            .order_by(p.c.email)
        ).all()
        deal = db.execute(sa.select(o.c.stage, o.c.amount, o.c.is_closed)).one()
    assert [tuple(r) for r in rows] == [
        ("ann@acme.com", "Ann", "CTO", "acme.com"),
        ("bob@acme.com", "Bob", "", "acme.com"),
        ("cy@globex.io", "Cy", "", "globex.io"),
    ]
    assert tuple(deal) == ("contractsent", 12000.0, False)


def test_R32_contact_opted_out_in_hubspot_is_unenrolled_after_the_next_sync(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com")

    hubspot.update("contacts", ids["ann"], hs_email_optout=True)
    report = crm.sync()

    assert report.applied.opted_out == 1
    assert report.applied.unenrolled == 1
    assert crm.status("ann@acme.com") == "opted_out"
    assert crm.status("bob@acme.com") == "not_started"
    with crm.db() as db:
        [entry] = optouts.ledger(db, workspace_id=crm.ws, email="ann@acme.com")
    assert (entry["channel"], entry["actor"], entry["action"]) == ("crm", "crm-sync", "added")


def test_R33_hubspot_saying_not_opted_out_never_clears_our_opt_out(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.sync()
    with crm.db() as db:
        optouts.opt_out(
            db, workspace_id=crm.ws, email="bob@acme.com", actor="rep@acme", channel="manual",
            now=utcnow(),
        )  # fmt: skip

    hubspot.update("contacts", ids["bob"], hs_email_optout=False, firstname="Robert")
    crm.sync()
    crm.sync(full=True)

    assert crm.opted_out("bob@acme.com")
    with crm.db() as db:
        actions = [
            e["action"] for e in optouts.ledger(db, workspace_id=crm.ws, email="bob@acme.com")
        ]
    assert actions == ["added"]
    assert crm.scalar(
        sa.select(t.people.c.first_name).where(t.people.c.email == "bob@acme.com")
    ) == ("Robert")


def test_R33_R36_hubspot_saying_not_opted_out_never_clears_a_spam_complaint(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.sync()
    with crm.db() as db:
        optouts.complain(db, workspace_id=crm.ws, email="cy@globex.io", actor="feedback-loop",
                         now=utcnow(), reporting_domain="fbl.mail.example")  # fmt: skip

    hubspot.update("contacts", ids["cy"], hs_email_optout=False, firstname="Cyrus")
    crm.sync()
    crm.sync(full=True)

    p = t.people
    assert crm.scalar(sa.select(p.c.complained).where(p.c.email == "cy@globex.io")) is True
    with crm.db() as db:
        ledger = optouts.ledger(db, workspace_id=crm.ws, email="cy@globex.io")
    assert [(e["kind"], e["action"]) for e in ledger] == [("complaint", "added")]
    assert crm.scalar(sa.select(p.c.first_name).where(p.c.email == "cy@globex.io")) == "Cyrus"


def test_R31_unsubscribe_here_reaches_hubspot_only_in_read_write_mode(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(comm_prefs_path="/communication-preferences/2026-03")
    ids = _portal(hubspot)
    crm = hubspot_workspace(
        fresh_engine, clock, hubspot,
        settings={"comm_prefs_path": "/communication-preferences/2026-03"},
    )  # fmt: skip
    crm.sync()

    def unsubscribe(email: str) -> None:
        with crm.db() as db:
            optouts.opt_out(db, workspace_id=crm.ws, email=email, actor="recipient",
                            channel="unsubscribe_link", now=utcnow())  # fmt: skip
            writebacks.record_opt_out_writeback(db, workspace_id=crm.ws, email=email, now=utcnow())

    unsubscribe("ann@acme.com")
    read_only = crm.sync()
    assert read_only.writebacks.skipped == 1
    assert hubspot.unsubscribed == set()
    assert hubspot.prop("contacts", ids["ann"], "hs_email_optout") is None

    crm.map("contacts", "hs_email_optout", "email_opt_out", "read_write")
    unsubscribe("bob@acme.com")
    written = crm.sync()

    assert written.writebacks.written == 1
    assert hubspot.unsubscribed == {"bob@acme.com"}
    assert hubspot.prop("contacts", ids["bob"], "hs_email_optout") == "true"
    w = t.crm_writebacks
    with crm.db() as db:
        statuses = dict(db.execute(sa.select(w.c.email, w.c.status)).all())
    assert statuses == {"ann@acme.com": "skipped", "bob@acme.com": "done"}
    # The echo of our own write comes back as "opted out": nothing new is recorded.
    echo = crm.sync()
    assert echo.applied.opted_out == 0


def test_R31_a_custom_opt_out_property_is_written_by_email(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.map("contacts", "do_not_email", "email_opt_out", "read_write")
    crm.sync()
    with crm.db() as db:
        for email in ("cy@globex.io", "nobody@nowhere.example"):
            writebacks.record_opt_out_writeback(db, workspace_id=crm.ws, email=email, now=utcnow())

    report = crm.sync()

    assert hubspot.prop("contacts", ids["cy"], "do_not_email") == "true"
    assert report.writebacks.failed == 0  # an address HubSpot does not know is no failure
    hubspot.update("contacts", ids["ann"], do_not_email=True)
    crm.sync()
    assert crm.opted_out("ann@acme.com")


def test_R32_many_pages_never_reach_the_search_cap(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(search_cap=50)
    for n in range(230):
        hubspot.contact(f"p{n:03d}@bulk.example", firstname=f"P{n}")
    crm = hubspot_workspace(fresh_engine, clock, hubspot, settings={"search_page_size": 20})

    report = crm.sync()

    assert report.status == "ok", report.error
    assert crm.scalar(sa.select(sa.func.count()).select_from(t.people)) == 230
    assert hubspot.max_after_requested < 50
    # Keyset paging re-reads the one record at each page boundary: 230 / 19 pages.
    searches = hubspot.calls["POST /crm/v3/objects/contacts/search"]
    assert searches <= 230 // 19 + 2


def test_R32_a_bulk_update_at_one_instant_larger_than_the_cap_is_walked_by_id(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(search_cap=50)
    instant = utcnow().replace(microsecond=0) - timedelta(minutes=1)
    for n in range(120):
        hubspot.contact(f"same{n:03d}@bulk.example")
    for record_id in list(hubspot.objects["contacts"]):
        hubspot.update("contacts", record_id, at=instant, hs_lead_status="NEW")
    hubspot.contact("after@bulk.example")
    crm = hubspot_workspace(fresh_engine, clock, hubspot, settings={"search_page_size": 20})

    report = crm.sync()

    assert report.status == "ok", report.error
    assert crm.scalar(sa.select(sa.func.count()).select_from(t.people)) == 121
    assert (
        crm.scalar(
            sa.select(sa.func.count()).select_from(t.people).where(t.people.c.status == "NEW")
        )
        == 120
    )
    assert hubspot.max_after_requested < 50


def test_R32_rate_limits_are_waited_out_not_failed(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(burst=4, window=10.0)
    for n in range(60):
        hubspot.contact(f"r{n:02d}@rate.example")
    crm = hubspot_workspace(fresh_engine, clock, hubspot, settings={"search_page_size": 10})

    report = crm.sync()

    assert report.status == "ok", report.error
    assert crm.scalar(sa.select(sa.func.count()).select_from(t.people)) == 60
    assert hubspot.rate_limited >= 1  # HubSpot said 429 ...
    assert clock.slept >= 10.0  # ... and we waited for its window (on the test's clock)


def test_R32_our_own_limit_keeps_requests_inside_the_window(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(burst=5, window=10.0)
    for n in range(60):
        hubspot.contact(f"w{n:02d}@rate.example")
    crm = hubspot_workspace(
        fresh_engine, clock, hubspot, settings={"search_page_size": 10, "requests_per_10s": 5}
    )

    report = crm.sync()

    assert report.status == "ok", report.error
    assert hubspot.rate_limited == 0


def test_R32_incremental_sync_reads_only_changes_and_bookmarks_no_later_than_its_start(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    before = utcnow()
    first = crm.sync()
    assert first.applied.read == 5
    assert crm.bookmark("contacts") is not None
    assert crm.bookmark("contacts") <= utcnow()
    assert crm.bookmark("contacts") >= before - timedelta(seconds=1)

    hubspot.update("contacts", ids["cy"], jobtitle="VP Sales")
    second = crm.sync()

    # The overlap re-reads recent records, but only the changed one is applied.
    assert second.applied.updated == 1
    assert second.applied.read - second.applied.unchanged == 1
    assert crm.scalar(sa.select(t.people.c.title).where(t.people.c.email == "cy@globex.io")) == (
        "VP Sales"
    )


def test_R32_a_sync_that_fails_midway_resumes_from_its_last_committed_page(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    old = utcnow().replace(microsecond=0) - timedelta(hours=2)
    for n in range(30):
        hubspot.contact(f"c{n:02d}@resume.example", at=old + timedelta(minutes=n))
    crm = hubspot_workspace(fresh_engine, clock, hubspot, settings={"search_page_size": 10})
    # The third search of contacts fails for good (400 is not retried): two pages are in.
    hubspot.failures.add("POST", "/contacts/search", 400, times=1, skip=2)

    failed = crm.sync()

    assert failed.status == "failed"
    # Two pages of ten, the second re-reading the first one's last record (keyset paging).
    assert failed.applied.created == 19
    mark = crm.bookmark("contacts")
    assert mark is not None
    assert old + timedelta(minutes=18) <= mark < old + timedelta(minutes=19)

    resumed = crm.sync()

    assert resumed.status == "ok"
    assert resumed.applied.created == 11
    assert resumed.applied.unchanged >= 5  # the overlap re-read, skipped
    count = sa.select(sa.func.count()).select_from(t.people)
    assert crm.scalar(count) == 30
    assert crm.scalar(sa.select(sa.func.count(sa.distinct(t.people.c.email)))) == 30


def test_R20_a_deal_moved_into_a_stage_named_by_a_company_rule_unenrolls_that_company(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    deal = hubspot.deal("Acme renewal", "appointmentscheduled", company=ids["acme"])

    def rule(world: World) -> None:
        world.exclusion(
            "In contract", "company", 'opportunity.stage = "contractsent"',
            exclude_from_sequences=True,
        )  # fmt: skip

    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=rule)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com", "cy@globex.io")

    hubspot.update("deals", deal, dealstage="contractsent")
    report = crm.sync()

    assert report.applied.unenrolled == 2
    assert crm.status("ann@acme.com") == "unenrolled"
    assert crm.status("bob@acme.com") == "unenrolled"
    assert crm.status("cy@globex.io") == "not_started"


def test_R20_deal_contacts_feed_has_opportunity(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)

    def rule(world: World) -> None:
        world.exclusion("In a deal", "people", "person.has_opportunity = true",
                        exclude_from_sequences=True)  # fmt: skip

    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=rule)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com")

    deal = hubspot.deal("Acme pilot", "qualifiedtobuy", company=ids["acme"], contacts=(ids["bob"],))
    crm.sync()

    assert crm.status("bob@acme.com") == "unenrolled"
    assert crm.status("ann@acme.com") == "not_started"
    links = t.opportunity_contacts
    assert crm.scalar(sa.select(sa.func.count()).select_from(links)) == 1
    hubspot.update("deals", deal, amount=5)
    assert crm.sync().status == "ok"
    assert crm.scalar(sa.select(sa.func.count()).select_from(links)) == 1


def test_R21_crm_activity_dates_count_as_crm_activity(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)

    def rule(world: World) -> None:
        world.exclusion("Recently active", "company", "company.last_activity_at within last 7 days",
                        exclude_from_sequences=True)  # fmt: skip

    crm = hubspot_workspace(fresh_engine, clock, hubspot, build=rule)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com", "cy@globex.io")

    hubspot.update("contacts", ids["ann"], notes_last_updated=utcnow() - timedelta(days=1))
    crm.sync()

    a = t.activities
    with crm.db() as db:
        [(kind, source)] = db.execute(sa.select(a.c.kind, a.c.source)).all()
    assert (kind, source) == ("crm_activity", "crm")
    assert crm.status("ann@acme.com") == "unenrolled"
    assert crm.status("bob@acme.com") == "unenrolled"  # same company
    assert crm.status("cy@globex.io") == "not_started"


def test_R1_a_contact_without_a_valid_address_is_skipped_not_fatal(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    hubspot.contact("not-an-address")
    hubspot.create("contacts", firstname="No email")
    hubspot.contact("ok@fine.example")
    crm = hubspot_workspace(fresh_engine, clock, hubspot)

    report = crm.sync()

    assert report.status == "ok"
    assert report.applied.skipped == 2
    assert crm.scalar(sa.select(sa.func.count()).select_from(t.people)) == 1


def test_R32_the_scheduled_loop_syncs_every_interval_until_stopped(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ids = _portal(hubspot)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    stop = threading.Event()
    g = t.crm_sync_log
    runs = sa.select(sa.func.count()).select_from(g).where(g.c.trigger == "schedule")

    def factory(connection: CrmConnection, env: Mapping[str, str]) -> Connector:
        if crm.scalar(runs) >= 2:  # the third round: change something, then stop after it
            hubspot.update("contacts", ids["cy"], hs_email_optout=True)
            stop.set()
        return crm.connector()

    loop = threading.Thread(
        target=sync.run_scheduled,
        args=(fresh_engine, stop, timedelta(milliseconds=50)),
        kwargs={"factory": factory},
        daemon=True,
    )
    loop.start()
    loop.join(timeout=60)
    stop.set()

    assert not loop.is_alive()
    assert crm.scalar(runs) == 3
    assert crm.opted_out("cy@globex.io")
    with crm.db() as db:
        assert set(db.scalars(sa.select(g.c.status))) == {"ok"}
