"""The CRM mapping form picks "Our field" from a list of our fields by their labels, the
same labels filters show (R31, R34): grouped by the CRM object whose records fill them,
custom fields included, with a box to name a new one; what is stored stays the field's
own name."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine

from optout.crm import connections
from optout.crm.mapping import FieldMapping
from optout.db import tables as t
from optout.services.access import accounts
from tests.factories import World
from tests.user_text import admin_unfamiliar
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def signed_in(
    web: Web, engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[World]:
    """A workspace with a HubSpot connection, and its admin signed in."""
    user = f"admin-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        accounts.create_user(world.db, email=user, name="Ad", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
        connections.connect(
            world.db,
            workspace_id=world.ws,
            kind="hubspot",
            base_url="https://api.hubapi.com",
            secrets={"token": "OPTOUT_TEST_PAGE_TOKEN"},
            now=world.now,
        )
    web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": csrf_token_in(web.http.get("/login").text),
        },
    )
    yield world
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _picker(page: str) -> dict[str, dict[str, str]]:
    """The "Our field" list: per group, each choice's label and value."""
    select = re.search(r'<select id="map-our-field".*?</select>', page, re.DOTALL)
    assert select is not None, "no Our field list in the page"
    groups: dict[str, dict[str, str]] = {}
    for label, body in re.findall(
        r'<optgroup label="([^"]+)">(.*?)</optgroup>', select[0], re.DOTALL
    ):
        options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', body)
        groups[html.unescape(label)] = {html.unescape(text): value for value, text in options}
    return groups


def _mapped(engine: Engine, world: World) -> list[FieldMapping]:
    with engine.connect() as db:
        connection = connections.get(db, workspace_id=world.ws, kind="hubspot")
        return connections.mappings(db, connection_id=connection.id)


def _save(web: Web, **form: str) -> str:
    token = csrf_token_in(web.http.get("/crm/hubspot").text)
    answer = web.http.post(
        "/crm/hubspot/mappings",
        data={"csrf_token": token, "origin": "mapping", "mode": "read", **form},
        follow_redirects=True,
    )
    return answer.text if answer.status_code == 200 else f"{answer.status_code}\n{answer.text}"


def test_R31_our_field_is_picked_by_its_label_and_stored_by_its_name(
    web: Web, engine: Engine, signed_in: World
) -> None:
    groups = _picker(web.http.get("/crm/hubspot").text)

    contacts = groups["HubSpot contacts"]
    assert contacts["Job title"] == "contacts|title"
    assert contacts["Lead status"] == "contacts|status"
    assert contacts["Opted out of email"] == "contacts|email_opt_out"
    assert contacts["A new custom field (name it below)"] == "contacts|fields."
    assert groups["HubSpot deals"]["Opportunity stage"] == "deals|stage"
    labels = [label for choices in groups.values() for label in choices]
    assert admin_unfamiliar(" · ".join(labels)) == []
    assert not [label for label in labels if "_" in label]

    done = _save(web, crm_object="contacts", crm_field="jobtitle", our_field="contacts|title")

    assert "HubSpot contacts field jobtitle now feeds “Job title”" in html.unescape(done)
    assert FieldMapping("contacts", "jobtitle", "title", "read") in _mapped(engine, signed_in)


def test_R31_a_new_custom_field_is_named_in_words_and_then_listed(
    web: Web, engine: Engine, signed_in: World
) -> None:
    done = _save(
        web,
        crm_object="companies",
        crm_field="lead_source_c",
        our_field="companies|fields.",
        custom_field="Lead source",
    )

    assert "now feeds “Company lead source (custom)”" in html.unescape(done)
    saved = FieldMapping("companies", "lead_source_c", "fields.lead_source", "read")
    assert saved in _mapped(engine, signed_in)
    groups = _picker(web.http.get("/crm/hubspot").text)
    assert groups["HubSpot companies"]["Company lead source (custom)"] == (
        "companies|fields.lead_source"
    )
    assert "Company lead source (custom)" not in groups["HubSpot contacts"]


@pytest.mark.parametrize(
    ("form", "told"),
    [
        (
            {"crm_object": "contacts", "our_field": "deals|stage"},
            "“Opportunity stage” is filled from deals, not from contacts",
        ),
        (
            {"crm_object": "contacts", "our_field": "contacts|fields.", "custom_field": ""},
            "name the new custom field",
        ),
        (
            {"crm_object": "contacts", "our_field": "contacts|fields.", "custom_field": "9 lives"},
            "custom field name '9 lives': use letters, digits and spaces",
        ),
    ],
)
def test_R34_a_field_picked_wrong_is_told_at_the_picker_and_nothing_is_saved(
    web: Web, engine: Engine, signed_in: World, form: dict[str, str], told: str
) -> None:
    before = _mapped(engine, signed_in)

    refused = _save(web, crm_field="jobtitle", **form)

    assert refused.startswith("422"), refused[:300]
    shown = html.unescape(refused)
    error = re.search(
        r'<select id="map-our-field"[^>]*>.*?</select>\s*<p class="field-error">(.*?)</p>',
        shown,
        re.DOTALL,
    )
    assert error is not None
    assert told in error[1]
    picker = re.search(r'<select id="map-our-field"[^>]*>', shown)
    assert picker is not None
    assert 'aria-invalid="true"' in picker[0]
    assert f'value="{form["our_field"]}" selected' in shown  # the pick is kept
    assert _mapped(engine, signed_in) == before
