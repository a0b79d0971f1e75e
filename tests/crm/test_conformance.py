"""The CRM emulators are held to the real APIs (R31, R32): every request they receive and
every answer they give is checked against HubSpot's official SDK models and Salesforce's
documented REST shapes, and a deviation fails the test that caused it (conftest). These
tests prove the check catches what the real APIs would refuse, that the emulators behave
as the real APIs do where they used to be looser, and that the connectors hold up against
the stricter emulators (the primary company, paged associations, the JWT audience, the
write scope)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hubspot.crm.associations.v4 import models as associations
from hubspot.crm.objects import models as objects
from sqlalchemy.engine import Engine

from optout.crm.hubspot import HubSpotConnector, write_scope_missing
from optout.crm.salesforce import SalesforceConnector, SalesforceSettings, jwt_audience
from optout.db import tables as t
from optout.errors import ConnectorError
from tests.crm.conftest import HUBSPOT_TOKEN, hubspot_workspace, salesforce_workspace
from tests.crm.emulators.common import FakeClock
from tests.crm.emulators.hubspot import HubSpot
from tests.crm.emulators.salesforce import Salesforce
from tests.crm.schemas import salesforce as sf_schema
from tests.crm.schemas.shapes import check
from tests.web.conftest import serving

StartHubSpot = Callable[..., HubSpot]
StartSalesforce = Callable[..., Salesforce]
AUTH = {"Authorization": f"Bearer {HUBSPOT_TOKEN}"}


def _post(hubspot: HubSpot, path: str, body: Any, **params: str) -> httpx.Response:
    return httpx.post(f"{hubspot.url}{path}", json=body, params=params, headers=AUTH, timeout=30)


# --- the check itself ------------------------------------------------------------------


def test_R32_the_check_finds_what_the_hubspot_sdk_models_refuse() -> None:
    answer = {
        "status": "COMPLETE",
        "results": [
            {
                "from": {"id": "7"},
                "to": [
                    {
                        "toObjectId": 42,
                        "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": 5}],
                    }
                ],
            }
        ],
    }
    found = check(answer, associations.BatchResponsePublicAssociationMultiWithLabel)
    assert any("toObjectId: expected str, got int" in f for f in found), found
    assert any("completed_at" in f for f in found), found  # no completedAt, the SDK says
    assert any("started_at" in f for f in found), found

    request = {"properties": ["email"], "inputs": [{"id": "1"}]}
    found = check(request, objects.BatchReadInputSimplePublicObjectId)
    assert found == [
        "$: BatchReadInputSimplePublicObjectId: Invalid value for `properties_with_history`, "
        "must not be `None`"
    ]
    assert (
        check({**request, "propertiesWithHistory": []}, objects.BatchReadInputSimplePublicObjectId)
        == []
    )

    search = {"filterGroups": [{"filters": [{"propertyName": "x", "operator": "AFTER"}]}]}
    found = check(search, objects.PublicObjectSearchRequest)
    [fault] = found
    assert "operator" in fault
    assert "AFTER" in fault
    assert check(
        {"sorts": [{"propertyName": "x"}], "invented": 1}, objects.PublicObjectSearchRequest
    )


def test_R32_the_check_finds_what_salesforce_documents_otherwise() -> None:
    page = {"totalSize": 3, "done": False, "records": [{"Id": "003", "Email": "a@x.com"}]}
    assert check(page, sf_schema.QUERY_RESULT) == [
        "$.records[0]: sObject lacks its required 'attributes'"
    ]
    errors = [{"message": "bad", "code": "X"}]
    assert check(errors, sf_schema.ERRORS) == [
        "$[0]: Error lacks its required 'errorCode'",
        "$[0]: 'code' is not a field of Error",
    ]
    too_many = {"records": [{"attributes": {"type": "Contact"}, "id": "003"}] * 201}
    assert check(too_many, sf_schema.COLLECTION_UPDATE) == [
        "$.records: 201 items, at most 200 allowed"
    ]


def test_R32_a_request_the_real_api_would_refuse_is_recorded_against_the_emulator(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot()
    contact = hubspot.contact("ann@acme.com")

    good = _post(
        hubspot,
        "/crm/v3/objects/contacts/batch/read",
        {"properties": ["email"], "propertiesWithHistory": [], "inputs": [{"id": contact}]},
    )
    assert good.status_code == 200
    assert hubspot.conformance.take() == []

    _post(
        hubspot,
        "/crm/v3/objects/contacts/batch/read",
        {"properties": ["email"], "inputs": [{"id": contact}]},
    )
    [deviation] = hubspot.conformance.take()
    assert deviation.request == "POST /crm/v3/objects/contacts/batch/read"
    assert "properties_with_history" in deviation.problem


# --- HubSpot: where the emulator was looser than HubSpot ------------------------------


def test_R32_hubspot_search_takes_the_documented_string_form_of_sorts(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot()
    for email in ("cy@acme.com", "ann@acme.com", "bob@acme.com"):
        hubspot.contact(email)
    filters = [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}]

    by_name = _post(
        hubspot,
        "/crm/v3/objects/contacts/search",
        {"sorts": ["email"], "properties": ["email"], "limit": 10},
    )
    by_modified = _post(
        hubspot,
        "/crm/v3/objects/contacts/search",
        {"filterGroups": filters, "sorts": ["lastmodifieddate"], "properties": ["email"]},
    )

    assert by_name.status_code == 200, by_name.text
    assert [r["properties"]["email"] for r in by_name.json()["results"]] == [
        "ann@acme.com",
        "bob@acme.com",
        "cy@acme.com",
    ]
    assert by_modified.status_code == 200, by_modified.text
    assert [r["properties"]["email"] for r in by_modified.json()["results"]] == [
        "cy@acme.com",
        "ann@acme.com",
        "bob@acme.com",
    ]


def test_R32_hubspot_batch_answers_say_when_they_ran_and_name_what_was_not_found(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot()
    contact = hubspot.contact("ann@acme.com")

    answer = _post(
        hubspot,
        "/crm/v3/objects/contacts/batch/read",
        {
            "properties": ["email"],
            "propertiesWithHistory": [],
            "inputs": [{"id": contact}, {"id": "9"}],
        },
    )

    assert answer.status_code == 207
    body = answer.json()
    assert body["startedAt"] <= body["completedAt"]
    assert [r["id"] for r in body["results"]] == [contact]
    assert body["errors"][0]["context"] == {"ids": ["9"]}


def test_R20_hubspot_associations_are_string_ids_in_pages_and_none_answers_207(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot(association_page=2)
    acme = hubspot.company("acme.com", "Acme")
    people = [hubspot.contact(f"p{n}@acme.com") for n in range(5)]
    deal = hubspot.deal("Acme platform", "qualifiedtobuy", company=acme, contacts=tuple(people))
    lonely = hubspot.create("deals", dealname="No one", dealstage="qualifiedtobuy")
    path = "/crm/v4/associations/deals/contacts/batch/read"

    first = _post(hubspot, path, {"inputs": [{"id": deal}, {"id": lonely}]})

    assert first.status_code == 207
    body = first.json()
    [result] = body["results"]
    assert [to["toObjectId"] for to in result["to"]] == people[:2]
    after = result["paging"]["next"]["after"]
    [error] = body["errors"]
    assert error["subCategory"] == "crm.associations.NO_ASSOCIATIONS_FOUND"
    assert error["context"] == {"fromObjectId": [lonely]}
    rest = _post(hubspot, path, {"inputs": [{"id": deal, "after": after}]})
    assert [to["toObjectId"] for to in rest.json()["results"][0]["to"]] == people[2:4]


def test_R31_hubspot_refuses_a_subscription_status_that_does_not_exist(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot()
    path = "/communication-preferences/v4/statuses/batch/write"

    def write(status: str, subscription: int = 1_001) -> httpx.Response:
        item = {
            "channel": "EMAIL",
            "statusState": status,
            "subscriberIdString": "ann@acme.com",
            "subscriptionId": subscription,
        }
        return _post(hubspot, path, {"inputs": [item]})

    invented = write("UNSUBSCRIBED")
    no_such_subscription = write("NOT_SUBSCRIBED", subscription=999)
    real = write("NOT_SUBSCRIBED")

    assert invented.status_code == 400
    assert invented.json()["category"] == "VALIDATION_ERROR"
    assert no_such_subscription.status_code == 400
    assert hubspot.unsubscribed == {"ann@acme.com"}
    assert real.json()["results"][0]["status"] == "NOT_SUBSCRIBED"
    # The invented status is also what the check reports against the request.
    [deviation] = hubspot.conformance.take()
    assert "'UNSUBSCRIBED' is not one of" in deviation.problem


def test_R31_hubspot_unsubscribe_all_answers_every_subscription_with_its_status(
    start_hubspot: StartHubSpot,
) -> None:
    hubspot = start_hubspot()

    answer = _post(
        hubspot,
        "/communication-preferences/v4/statuses/batch/unsubscribe-all",
        {"inputs": ["Ann@Acme.com"]},
        channel="EMAIL",
    )

    assert answer.status_code == 200
    body = answer.json()
    assert body["startedAt"] <= body["completedAt"]
    [result] = body["results"]
    assert {(s["subscriptionName"], s["status"]) for s in result["statuses"]} == {
        ("Marketing Information", "NOT_SUBSCRIBED"),
        ("One to One", "NOT_SUBSCRIBED"),
    }


# --- HubSpot: the connector against the stricter emulator -------------------------------


def test_R20_a_hubspot_deal_belongs_to_its_primary_company_not_its_first(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    reseller = hubspot.company("reseller.example", "Reseller")
    acme = hubspot.company("acme.com", "Acme")
    deal = hubspot.create("deals", dealname="Acme via reseller", dealstage="qualifiedtobuy")
    hubspot.associate("deals", deal, "companies", reseller)  # first, not primary
    hubspot.associate("deals", deal, "companies", acme, primary=True)
    crm = hubspot_workspace(fresh_engine, clock, hubspot)

    report = crm.sync()

    assert report.status == "ok", report.error
    o, c = t.opportunities, t.companies
    domain = crm.scalar(
        sa.select(c.c.domain).join(o, o.c.company_id == c.c.id).where(o.c.crm_id == deal)
    )
    assert domain == "acme.com"


def test_R20_every_page_of_a_hubspot_deals_contacts_is_read(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot(association_page=2)
    acme = hubspot.company("acme.com", "Acme")
    people = tuple(hubspot.contact(f"p{n}@acme.com", company=acme) for n in range(5))
    hubspot.deal("Acme platform", "qualifiedtobuy", company=acme, contacts=people)
    hubspot.create("deals", dealname="No company yet", dealstage="qualifiedtobuy")
    crm = hubspot_workspace(fresh_engine, clock, hubspot)

    report = crm.sync()

    assert report.status == "ok", report.error
    links = t.opportunity_contacts
    assert crm.scalar(sa.select(sa.func.count()).select_from(links)) == 5


def test_R32_hubspot_batch_reads_ask_for_property_history_as_the_api_requires(
    fresh_engine: Engine, clock: FakeClock, start_hubspot: StartHubSpot
) -> None:
    hubspot = start_hubspot()
    ann = hubspot.contact("ann@acme.com", firstname="Ann")
    crm = hubspot_workspace(fresh_engine, clock, hubspot)
    crm.map("contacts", "firstname", "first_name")
    connector = crm.connector()
    try:
        [record] = connector.fetch("contacts", [ann, "404"])
    finally:
        connector.close()

    assert (record.id, record.values["firstname"]) == (ann, "Ann")
    assert hubspot.calls["POST /crm/v3/objects/contacts/batch/read"] == 1
    assert hubspot.conformance.take() == []  # the request had propertiesWithHistory


@pytest.mark.parametrize("token", [HUBSPOT_TOKEN, "CJSP5qf1KhICAQEYs-gDIIGOBii1hQIyGQ"])
def test_R31_the_hubspot_write_scope_is_checked_before_any_write_back(
    stack: ExitStack, clock: FakeClock, token: str
) -> None:
    """A private app's token (pat-) and an OAuth access token each tell their scopes."""
    granted = HubSpot(token=token, clock=clock)
    granted.url = stack.enter_context(serving(granted.app))
    read_only = HubSpot(
        token=token, clock=clock, scopes=("crm.objects.contacts.read", "crm.objects.deals.read")
    )
    read_only.url = stack.enter_context(serving(read_only.app))

    def connector(emulator: HubSpot) -> HubSpotConnector:
        made = HubSpotConnector(
            base_url=emulator.url,
            token=token,
            fields={},
            settings={"requests_per_10s": None, "search_per_second": None},
            clock=clock,
            sleep=clock.sleep,
            allowed_hosts=frozenset({"127.0.0.1"}),
        )
        stack.callback(made.close)
        return made

    assert write_scope_missing(connector(granted)) is None
    missing = write_scope_missing(connector(read_only))
    assert missing is not None
    assert "communication_preferences.write" in missing
    # Without the check, the first write-back is where it would show:
    with pytest.raises(ConnectorError, match="HTTP 403"):
        connector(read_only).write("contacts", "hs_email_optout", ["ann@acme.com"], True)
    assert read_only.unsubscribed == set()


# --- Salesforce ------------------------------------------------------------------------


def test_R32_salesforce_jwt_audience_is_the_login_host_never_the_my_domain_address(
    stack: ExitStack,
    clock: FakeClock,
    start_salesforce: StartSalesforce,
    rsa_key: tuple[Path, bytes],
) -> None:
    production = start_salesforce()
    sandbox = start_salesforce(sandbox=True)

    def sign_in(org: Salesforce, **settings: Any) -> list[Any]:
        connector = SalesforceConnector(
            base_url=org.base_url,
            fields={},
            settings={
                "auth": "jwt",
                "client_id": org.client_id,
                "username": org.username,
                "private_key_path": rsa_key[0].name,
                "login_url": org.base_url,  # the org's own (My Domain) address
                **settings,
            },
            clock=clock,
            sleep=clock.sleep,
            allowed_hosts=frozenset({"127.0.0.1"}),
            key_folder=rsa_key[0].parent,
        )
        stack.callback(connector.close)
        return list(connector.changes("Contact", since=None))

    production.create("Contact", Email="ann@acme.com")
    sandbox.create("Contact", Email="ann@acme.com")

    assert len(sign_in(production)) == 1
    assert len(sign_in(sandbox, sandbox=True)) == 1
    with pytest.raises(ConnectorError, match="HTTP 400"):
        sign_in(sandbox)  # a sandbox signed in to as production: Salesforce refuses
    assert production.audiences == ["https://login.salesforce.com"]
    assert sandbox.audiences == ["https://test.salesforce.com", "https://login.salesforce.com"]


@pytest.mark.parametrize(
    ("settings", "audience"),
    [
        ({}, "https://login.salesforce.com"),
        ({"login_url": "https://acme.my.salesforce.com"}, "https://login.salesforce.com"),
        ({"login_url": "https://test.salesforce.com"}, "https://test.salesforce.com"),
        (
            {"login_url": "https://acme--uat.sandbox.my.salesforce.com"},
            "https://test.salesforce.com",
        ),
        (
            {"login_url": "https://acme.my.salesforce.com", "sandbox": True},
            "https://test.salesforce.com",
        ),
        ({"sandbox": "false"}, "https://login.salesforce.com"),
    ],
)
def test_R32_salesforce_jwt_audience_follows_the_kind_of_org(
    settings: dict[str, Any], audience: str
) -> None:
    assert jwt_audience(SalesforceSettings.from_dict({"auth": "jwt", **settings})) == audience


def test_R32_salesforce_query_pages_vary_in_size_and_every_record_arrives(
    fresh_engine: Engine, clock: FakeClock, start_salesforce: StartSalesforce
) -> None:
    sf = start_salesforce()
    for n in range(1_000):
        sf.create("Contact", Email=f"p{n:04}@acme.com", AccountId=None)
    crm = salesforce_workspace(fresh_engine, clock, sf, settings={"batch_size": 200})

    token = httpx.post(
        f"{sf.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": sf.client_id,
              "client_secret": sf.client_secret},
        timeout=30,
    ).json()["access_token"]  # fmt: skip
    sizes, url = [], "/services/data/v60.0/query?q=SELECT Id FROM Contact"
    while url:
        page = httpx.get(
            f"{sf.base_url}{url}",
            headers={"Authorization": f"Bearer {token}", "Sforce-Query-Options": "batchSize=200"},
            timeout=30,
        ).json()
        sizes.append(len(page["records"]))
        url = page.get("nextRecordsUrl")
    report = crm.sync()

    assert sum(sizes) == 1_000
    assert len(set(sizes[:-1])) > 1, sizes  # not always the batch size
    assert report.status == "ok", report.error
    p = t.people
    assert (
        crm.scalar(sa.select(sa.func.count()).select_from(p).where(p.c.workspace_id == crm.ws))
        == 1_000
    )


def test_R31_salesforce_refuses_more_than_200_records_in_one_collection(
    start_salesforce: StartSalesforce,
) -> None:
    sf = start_salesforce()
    token = httpx.post(
        f"{sf.base_url}/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": sf.client_id,
              "client_secret": sf.client_secret},
        timeout=30,
    ).json()["access_token"]  # fmt: skip

    answer = httpx.patch(
        f"{sf.base_url}/services/data/v60.0/composite/sobjects",
        json={"records": [{"attributes": {"type": "Contact"}, "id": "003"}] * 201},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )

    assert answer.status_code == 400
    assert answer.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    [deviation] = sf.conformance.take()
    assert deviation.problem == "request $.records: 201 items, at most 200 allowed"
