"""Field mappings (R31) and connections: pure checks and translation, and the rule that
a connection stores the names of environment variables, never secrets."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy.engine import Connection

from optout.crm import connections, mapping
from optout.crm.mapping import FieldMapping, translate
from optout.crm.protocol import Kind, Record
from optout.errors import ConnectorError, InvalidInput
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0)


def test_R31_defaults_map_the_master_opt_out_flag_read_only() -> None:
    sf = {(m.crm_object, m.our_field): m for m in mapping.defaults("salesforce")}
    hs = {(m.crm_object, m.our_field): m for m in mapping.defaults("hubspot")}
    assert sf[("Lead", "email_opt_out")].crm_field == "HasOptedOutOfEmail"
    assert sf[("Contact", "email_opt_out")].crm_field == "HasOptedOutOfEmail"
    assert hs[("contacts", "email_opt_out")].crm_field == "hs_email_optout"
    assert {m.mode for m in [*sf.values(), *hs.values()]} == {"read"}


@pytest.mark.parametrize(
    ("crm", "given", "message"),
    [
        ("salesforce", FieldMapping("Task", "Subject", "title"), "no object 'Task'"),
        ("salesforce", FieldMapping("Contact", "Bad Field", "title"), "API name"),
        ("salesforce", FieldMapping("Contact", "x'; DROP", "title"), "API name"),
        ("salesforce", FieldMapping("Contact", "Title", "stage"), "cannot feed 'stage'"),
        ("salesforce", FieldMapping("Contact", "Title", "title", "write"), "mode 'write'"),
        ("hubspot", FieldMapping("contacts", "jobtitle", "title", "read_write"), "only email"),
        ("hubspot", FieldMapping("contacts", "x", "fields.Bad-Name"), "custom field"),
        ("zoho", FieldMapping("contacts", "x", "title"), "unknown CRM"),
    ],
)
def test_R34_bad_mappings_are_refused_with_the_reason(
    crm: str, given: FieldMapping, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        mapping.check(crm, given)


def test_R31_object_names_are_matched_case_insensitively_and_canonicalized() -> None:
    checked = mapping.check("salesforce", FieldMapping("contact", "Do_Not_Email__c",
                                                       "email_opt_out", "read_write"))  # fmt: skip
    assert checked == FieldMapping("Contact", "Do_Not_Email__c", "email_opt_out", "read_write")


def test_translate_reads_each_field_as_its_type() -> None:
    mappings = [
        FieldMapping("Contact", "Email", "email"),
        FieldMapping("Contact", "HasOptedOutOfEmail", "email_opt_out"),
        FieldMapping("Contact", "LastActivityDate", "last_activity_at"),
        FieldMapping("Contact", "Region__c", "fields.region"),
        FieldMapping("Contact", "Title", "title"),
        FieldMapping("Lead", "Status", "status"),  # another object: ignored
    ]
    record = Record(
        "Contact",
        "003000000000001AAA",
        NOW,
        {
            "Email": " Ann@Acme.com ",
            "HasOptedOutOfEmail": True,
            "LastActivityDate": "2026-10-30",
            "Region__c": 7,
            "Title": None,
        },
    )
    assert translate(record, mappings, Kind.PERSON) == {
        "email": "Ann@Acme.com",
        "email_opt_out": True,
        "last_activity_at": datetime(2026, 10, 30),
        "fields": {"region": "7"},
        "title": "",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-02T09:00:00.000Z", datetime(2026, 11, 2, 9)),
        ("2026-11-02T10:00:00.000+0100", datetime(2026, 11, 2, 9)),
        ("2026-11-02T09:00:00+00:00", datetime(2026, 11, 2, 9)),
        ("1793610000000", datetime(2026, 11, 2, 9)),
        ("2026-11-02", datetime(2026, 11, 2)),
        ("soon", None),
        ("", None),
    ],
)
def test_crm_times_are_read_as_naive_utc(raw: str, expected: datetime | None) -> None:
    assert mapping.as_datetime(raw) == expected


def test_a_connection_stores_environment_variable_names_never_secrets(
    db: Connection, world: World
) -> None:
    with pytest.raises(InvalidInput, match="NAME of an environment variable"):
        connections.connect(
            db, workspace_id=world.ws, kind="hubspot", base_url="https://api.hubapi.com",
            secrets={"token": "pat-na1-1234-5678"}, now=NOW,
        )  # fmt: skip
    with pytest.raises(InvalidInput, match="looks like a secret"):
        connections.connect(
            db, workspace_id=world.ws, kind="salesforce", base_url="https://acme.my.salesforce.com",
            settings={"client_secret": "abc"}, now=NOW,
        )  # fmt: skip
    made = connections.connect(
        db, workspace_id=world.ws, kind="hubspot", base_url="https://api.hubapi.com/",
        secrets={"token": "HUBSPOT_TOKEN"}, now=NOW,
    )  # fmt: skip
    assert made.secrets == {"token": "HUBSPOT_TOKEN"}
    assert made.base_url == "https://api.hubapi.com"
    assert connections.secret(made, "token", {"HUBSPOT_TOKEN": "pat-1"}) == "pat-1"
    with pytest.raises(ConnectorError, match="HUBSPOT_TOKEN"):
        connections.secret(made, "token", {})
    again = connections.connect(
        db, workspace_id=world.ws, kind="hubspot", base_url="https://api.hubapi.com",
        secrets={"webhook_secret": "HUBSPOT_APP_SECRET"}, settings={"search_page_size": 100},
        now=NOW,
    )  # fmt: skip
    assert again.id == made.id
    assert again.secrets == {"token": "HUBSPOT_TOKEN", "webhook_secret": "HUBSPOT_APP_SECRET"}
    assert len(connections.mappings(db, connection_id=made.id)) == len(mapping.defaults("hubspot"))


def test_R31_mapping_a_field_replaces_what_fed_ours_before(db: Connection, world: World) -> None:
    made = connections.connect(
        db, workspace_id=world.ws, kind="salesforce", base_url="https://acme.my.salesforce.com",
        now=NOW,
    )  # fmt: skip
    connections.set_mapping(
        db, connection=made, now=NOW,
        field_mapping=FieldMapping("Contact", "Do_Not_Email__c", "email_opt_out", "read_write"),
    )  # fmt: skip
    contact = [
        m
        for m in connections.mappings(db, connection_id=made.id)
        if m.crm_object == "Contact" and m.our_field == "email_opt_out"
    ]
    assert contact == [FieldMapping("Contact", "Do_Not_Email__c", "email_opt_out", "read_write")]
