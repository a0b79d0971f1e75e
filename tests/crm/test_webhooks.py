"""Pushed changes over real HTTP (R32 B): a HubSpot webhook or a Salesforce Outbound
Message is applied and enforced before the request is answered; signatures, timestamps,
organizations and redeliveries are checked."""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crm import webhooks
from optout.db import tables as t
from tests.crm.conftest import (
    HUBSPOT_SECRET,
    SF_WEBHOOK_SECRET,
    connect_workspace,
    hubspot_workspace,
    optout_web,
    salesforce_workspace,
)
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce

StartHubSpot = Callable[..., HubSpot]
StartSalesforce = Callable[..., Salesforce]


def _hubspot(engine: Engine, clock: FakeClock, start: StartHubSpot):  # type: ignore[no-untyped-def]
    hubspot = start()
    acme = hubspot.company("acme.com", "Acme")
    ids = {
        "acme": acme,
        "ann": hubspot.contact("ann@acme.com", company=acme),
        "bob": hubspot.contact("bob@acme.com", company=acme, jobtitle="AE"),
    }
    crm = hubspot_workspace(engine, clock, hubspot)
    crm.sync()
    crm.enroll("ann@acme.com", "bob@acme.com")
    return hubspot, ids, crm


def test_R32_a_hubspot_webhook_is_enforced_before_the_request_returns(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: StartHubSpot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, ids, crm = _hubspot(fresh_engine, clock, start_hubspot)
    hubspot.update("contacts", ids["ann"], hs_email_optout=True)
    event = hubspot.event("contacts", ids["ann"], propertyName="hs_email_optout",
                          propertyValue="true")  # fmt: skip
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        response = hubspot.send_webhook(url, [event], secret=HUBSPOT_SECRET)
        status_on_return = crm.status("ann@acme.com")

    assert response.status_code == 200, response.text
    assert status_on_return == "opted_out"
    assert crm.status("bob@acme.com") == "not_started"
    g = t.crm_sync_log
    assert crm.scalar(sa.select(g.c.trigger).order_by(g.c.id.desc()).limit(1)) == "webhook"


def test_R32_a_hubspot_webhook_with_a_bad_or_old_signature_is_refused(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: StartHubSpot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, ids, crm = _hubspot(fresh_engine, clock, start_hubspot)
    hubspot.update("contacts", ids["ann"], hs_email_optout=True)
    event = hubspot.event("contacts", ids["ann"])
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        forged = hubspot.send_webhook(url, [event], secret="not-the-secret")
        stale = hubspot.send_webhook(
            url, [event], secret=HUBSPOT_SECRET, timestamp_ms=int((time.time() - 301) * 1000)
        )
        garbage = hubspot.send_webhook(url, [event], secret=HUBSPOT_SECRET, signature="bm9wZQ==")

    assert [r.status_code for r in (forged, stale, garbage)] == [401, 401, 401]
    assert "five minutes" in stale.json()["error"]["message"]
    assert crm.status("ann@acme.com") == "not_started"


def test_R32_a_redelivered_hubspot_event_is_ignored(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: StartHubSpot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, ids, crm = _hubspot(fresh_engine, clock, start_hubspot)
    title = sa.select(t.people.c.title).where(t.people.c.email == "bob@acme.com")
    hubspot.update("contacts", ids["bob"], jobtitle="CFO")
    event = hubspot.event("contacts", ids["bob"])
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        first = hubspot.send_webhook(url, [event], secret=HUBSPOT_SECRET)
        assert crm.scalar(title) == "CFO"
        hubspot.update("contacts", ids["bob"], jobtitle="CEO")
        again = hubspot.send_webhook(url, [{**event, "attemptNumber": 1}], secret=HUBSPOT_SECRET)

    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json()["applied"] == 0
    assert crm.scalar(title) == "CFO"


def test_R20_a_hubspot_association_change_relinks_the_deal(
    fresh_engine: Engine,
    clock: FakeClock,
    start_hubspot: StartHubSpot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hubspot, ids, crm = _hubspot(fresh_engine, clock, start_hubspot)
    deal = hubspot.deal("Acme", "qualifiedtobuy", company=ids["acme"])
    crm.sync()
    hubspot.associate("deals", deal, "contacts", ids["ann"])  # no modification date moves
    event = hubspot.event(
        "deals",
        deal,
        kind="associationChange",
        associationType="DEAL_TO_CONTACT",
        fromObjectId=int(deal),
        toObjectId=int(ids["ann"]),
        associationRemoved=False,
    )
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/hubspot/{crm.connection_id}"
        assert hubspot.send_webhook(url, [event], secret=HUBSPOT_SECRET).status_code == 200

    oc, p = t.opportunity_contacts, t.people
    assert crm.scalar(sa.select(p.c.email).join(oc, oc.c.person_id == p.c.id)) == "ann@acme.com"


def test_R32_a_salesforce_outbound_message_is_applied_then_acknowledged(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = start_salesforce()
    acme = sf.create("Account", Name="Acme", Website="acme.com")
    ann = sf.create("Contact", Email="ann@acme.com", AccountId=acme, HasOptedOutOfEmail=False)
    crm = salesforce_workspace(
        fresh_engine, clock, sf, settings={"organization_id": sf.organization_id}
    )
    crm.sync()
    crm.enroll("ann@acme.com")
    sf.update("Contact", ann, HasOptedOutOfEmail=True)
    message = sf.outbound_message([("Contact", ann)], note_ids=["04l000000000777AAA"])

    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/salesforce/{crm.connection_id}?key={SF_WEBHOOK_SECRET}"
        response = sf.send_outbound(url, message)
        status_on_return = crm.status("ann@acme.com")
        sf.update("Contact", ann, Title="Changed after the first delivery")
        again = sf.send_outbound(url, message)

    assert response.status_code == 200
    assert "<Ack>true</Ack>" in response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert status_on_return == "opted_out"
    assert again.status_code == 200
    assert "<Ack>true</Ack>" in again.text
    assert crm.scalar(sa.select(t.people.c.title)) == ""  # the redelivery was not applied


def test_R32_an_outbound_message_from_another_org_or_malformed_is_not_acknowledged(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = start_salesforce(organization_id="00D000000000002AAA")
    ann = sf.create("Contact", Email="ann@acme.com", HasOptedOutOfEmail=True)
    crm = salesforce_workspace(
        fresh_engine, clock, sf, settings={"organization_id": "00D000000000001AAA"}
    )
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/salesforce/{crm.connection_id}?key={SF_WEBHOOK_SECRET}"
        foreign = sf.send_outbound(url, sf.outbound_message([("Contact", ann)]))
        broken = sf.send_outbound(url, b"<soapenv:Envelope")
        entity = sf.send_outbound(
            url, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
        )

    assert foreign.status_code == 403
    assert "another organization" in foreign.text
    assert broken.status_code == 403
    assert entity.status_code == 403
    assert "Ack" not in foreign.text + broken.text + entity.text
    assert not crm.opted_out("ann@acme.com")


def test_R32_a_salesforce_connection_without_a_webhook_secret_refuses_every_outbound_message(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = start_salesforce()
    ann = sf.create("Contact", Email="ann@acme.com", HasOptedOutOfEmail=True)
    crm = connect_workspace(
        fresh_engine,
        clock,
        kind="salesforce",
        base_url=sf.base_url,
        secrets={"client_secret": "OPTOUT_TEST_SF_SECRET"},
        settings={"auth": "client_credentials", "client_id": sf.client_id},
    )
    calls_before = sum(sf.calls.values())
    message = sf.outbound_message([("Contact", ann)])
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/salesforce/{crm.connection_id}"
        bare = sf.send_outbound(url, message)
        guessed = sf.send_outbound(f"{url}?key=", message)
        huge = sf.send_outbound(url, b"<x>" + b"a" * (webhooks.MAX_BODY * 2))

    assert (bare.status_code, guessed.status_code, huge.status_code) == (403, 403, 403)
    assert "webhook secret" in bare.text
    assert "Ack" not in bare.text + guessed.text + huge.text
    assert sum(sf.calls.values()) == calls_before  # the CRM was not asked anything
    assert not crm.opted_out("ann@acme.com")


def test_R32_a_salesforce_fault_never_echoes_what_the_crm_answered(
    fresh_engine: Engine,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sf = start_salesforce()
    ann = sf.create("Contact", Email="ann@acme.com", HasOptedOutOfEmail=True)
    crm = salesforce_workspace(fresh_engine, clock, sf)
    detail = "INTERNAL-CRM-DETAIL-7f3a"
    sf.failures.add(
        "GET", "/query", 400, times=50, body=[{"message": detail, "errorCode": "MALFORMED_QUERY"}]
    )
    with optout_web(fresh_engine, monkeypatch) as base:
        url = f"{base}/crm/webhooks/salesforce/{crm.connection_id}?key={SF_WEBHOOK_SECRET}"
        response = sf.send_outbound(url, sf.outbound_message([("Contact", ann)]))

    assert response.status_code == 500
    assert "<soapenv:Fault>" in response.text
    assert detail not in response.text
    assert "MALFORMED_QUERY" not in response.text
    assert not crm.opted_out("ann@acme.com")


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: text.replace("ENCODING", "utf-8").encode("utf-8"),
        lambda text: text.replace("ENCODING", "utf-16").encode("utf-16"),
        lambda text: codecs.BOM_UTF16_BE + text.replace("ENCODING", "utf-16").encode("utf-16-be"),
    ],
    ids=["utf-8", "utf-16", "utf-16-big-endian"],
)
def test_R32_an_outbound_message_declaring_a_dtd_is_refused_in_any_encoding(
    encode: Callable[[str], bytes],
) -> None:
    document = (
        '<?xml version="1.0" encoding="ENCODING"?>'
        '<!DOCTYPE soapenv:Envelope [<!ENTITY org "00D000000000001AAA">]>'
        f'<soapenv:Envelope xmlns:soapenv="{webhooks.SOAP_ENV}" xmlns:xsi="{webhooks.XSI}">'
        f'<soapenv:Body><notifications xmlns="{webhooks.OUTBOUND}">'
        "<OrganizationId>&org;</OrganizationId>"
        "<Notification><Id>04l000000000001AAA</Id>"
        f'<sObject xsi:type="sf:Contact" xmlns:sf="{webhooks.SOBJECT}">'
        "<sf:Id>003000000000001AAA</sf:Id></sObject></Notification>"
        "</notifications></soapenv:Body></soapenv:Envelope>"
    )

    with pytest.raises(webhooks.WebhookRejected, match="DTD"):
        webhooks.parse_outbound_message(encode(document))


def test_hubspot_signature_decodes_the_uri_as_hubspot_does() -> None:
    plain = webhooks.hubspot_signature(
        secret="s", method="POST", uri="https://x.example/hook?a=b:c", body=b"[]", timestamp="1"
    )
    encoded = webhooks.hubspot_signature(
        secret="s", method="POST", uri="https://x.example/hook?a=b%3Ac", body=b"[]", timestamp="1"
    )
    assert plain == encoded
    with pytest.raises(webhooks.WebhookRejected, match="five minutes"):
        webhooks.verify_hubspot(
            secret="s",
            method="POST",
            uri="https://x.example/hook",
            body=b"[]",
            timestamp=str(10_000_000),
            signature=plain,
            now_ms=10_000_000 - 301_000,
        )


def test_hubspot_deletions_are_not_applied_and_unknown_events_are_skipped() -> None:
    body = (
        b'[{"eventId": 1, "subscriptionType": "contact.deletion", "objectId": 5},'
        b' {"eventId": 2, "subscriptionType": "object.propertyChange", "objectTypeId": "0-1",'
        b' "objectId": 6}, {"eventId": 3, "subscriptionType": "ticket.creation", "objectId": 7}]'
    )
    assert webhooks.hubspot_changes(body) == [webhooks.Change("2", "contacts", "6")]
