"""A refused form comes back filled in, with a message that names the input at fault,
quotes what was typed and says what would be accepted, beside that input and linked from
the top of the page (R34): never a bare error page, never the wrong value quoted."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.crm import connections
from optout.db import tables as t
from optout.inbound import process_message
from optout.services.access import accounts
from optout.services.directory import people
from optout.services.sequences import audiences, personas, rulesets
from tests.factories import World
from tests.inbound.helpers import OPTIONS, reply, sent_world
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def _input(page: str, name: str) -> str:
    """The tag of the input posted as `name`."""
    found = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    assert found is not None, f"no input {name!r} in the page"
    return found[0]


def _value(page: str, name: str) -> str:
    found = re.search(r'\bvalue="([^"]*)"', _input(page, name))
    return html.unescape(found[1]) if found else ""


def _beside(page: str, field: str) -> str:
    """The message shown beside the input the error is about."""
    found = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert found is not None, f"no message beside {field!r}"
    return html.unescape(found[1])


def _summary(page: str) -> str:
    found = re.search(r'<div class="notice error" role="alert" id="form-error">(.*?)</div>', page)
    assert found is not None, "no error at the top of the page"
    return found[1]


Admin = Callable[..., World]


@pytest.fixture
def admin(
    web: Web, engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[Admin]:
    """`admin(*make)`: a committed workspace, with what each `make(world)` adds to it, and
    an admin signed in to it."""
    users: list[str] = []

    def sign_in(*make: Callable[[World], object]) -> World:
        user = f"admin-{uuid.uuid4().hex[:10]}@example.com"
        users.append(user)
        with committed() as world:
            accounts.create_user(world.db, email=user, name="Ad", password=PASSWORD, now=now)
            accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
            for step in make:
                step(world)
        web.http.post(
            "/login",
            data={
                "workspace": world.workspace.slug,
                "email": user,
                "password": PASSWORD,
                "csrf_token": csrf_token_in(web.http.get("/login").text),
            },
        )
        return world

    yield sign_in
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email.in_(users)))


def _mailboxes(engine: Engine, ws: int) -> int:
    b = t.mailboxes
    with engine.connect() as db:
        return int(db.scalar(sa.select(sa.func.count()).where(b.c.workspace_id == ws)) or 0)


def test_R34_a_mailbox_from_with_two_at_signs_is_refused_beside_it_with_the_form_kept(
    web: Web, admin: Admin, engine: Engine
) -> None:
    world = admin()
    listing = web.http.get("/mailboxes").text
    typed = {
        "address": "a@@b",
        "display_name": "Ann Lee",
        "daily_limit": "40",
        "gap": "120",
        "time_zone": "Europe/Berlin",
    }

    refused = web.http.post("/mailboxes/new", data={"csrf_token": csrf_token_in(listing), **typed})

    assert refused.status_code == 422
    said = _beside(refused.text, "address")
    assert said.startswith("Mailbox address: 'a@@b' is not an email address")
    assert "it has 2 @-signs" in said  # the real reason, not "must have an @-sign"
    assert "type one address, such as name@example.com" in said
    assert "''" not in said  # the value typed, never an empty one
    assert 'href="#address-error"' in _summary(refused.text)
    assert 'aria-invalid="true"' in _input(refused.text, "address")
    assert {name: _value(refused.text, name) for name in typed} == typed
    assert _mailboxes(engine, world.ws) == 0


@pytest.mark.parametrize(
    ("field", "bad", "named", "accepted"),
    [
        ("daily_limit", "forty", "Daily limit: 'forty' is not a whole number", "number of emails"),
        ("daily_limit", "0", "Daily limit: 0 is not a daily limit", "from 1 to 100,000"),
        ("gap", "-5", "Seconds between two sends: -5 seconds", "give 0 to 86,400 seconds"),
        ("time_zone", "Mars/Olympus", "Time zone: 'Mars/Olympus' is not a time zone", "Europe/"),
    ],
)
def test_R34_each_mailbox_input_is_named_where_it_is_refused(
    web: Web, admin: Admin, field: str, bad: str, named: str, accepted: str
) -> None:
    admin()
    typed = {
        "address": "ann@acme-sales.com",
        "display_name": "Ann Lee",
        "daily_limit": "40",
        "gap": "120",
        "time_zone": "Europe/Berlin",
        field: bad,
    }
    token = csrf_token_in(web.http.get("/mailboxes").text)

    refused = web.http.post("/mailboxes/new", data={"csrf_token": token, **typed})

    assert refused.status_code == 422
    shown = "min_gap_seconds" if field == "gap" else field
    said = _beside(refused.text, shown)
    assert said.startswith(named)
    assert accepted in said
    assert 'aria-invalid="true"' in _input(refused.text, field)
    assert {name: _value(refused.text, name) for name in typed} == typed


def _dan(engine: Engine, world: World) -> int:
    with engine.connect() as db:
        return people.id_by_email(db, workspace_id=world.ws, email="dan@acme.com")


def _acme_and_dan(world: World) -> None:
    world.company("acme.com", "Acme")
    world.person("dan@acme.com", company="acme.com")


def test_R34_a_company_domain_with_two_dots_is_refused_on_the_persons_page(
    web: Web, admin: Admin, engine: Engine
) -> None:
    world = admin(_acme_and_dan)
    person_id = _dan(engine, world)
    shown = web.http.get(f"/people/{person_id}").text

    refused = web.http.post(
        f"/people/{person_id}/company",
        data={"csrf_token": csrf_token_in(shown), "domain": "acme..com"},
    )

    assert refused.status_code == 422
    assert "Back to the dashboard" not in refused.text  # the person's page, not a dead end
    assert "dan@acme.com" in _text(refused.text)
    said = _beside(refused.text, "domain")
    assert said == (
        "Company domain: 'acme..com' is not a domain (it has two dots in a row): "
        "type a domain such as acme.com"
    )
    assert 'href="#domain-error"' in _summary(refused.text)
    assert _value(refused.text, "domain") == "acme..com"
    assert 'aria-invalid="true"' in _input(refused.text, "domain")
    with engine.connect() as db:
        kept = people.get(db, workspace_id=world.ws, person_id=person_id)["company_id"]
    assert kept is not None  # still at Acme


def test_R34_an_opt_out_without_a_reason_asks_for_one_on_the_persons_page(
    web: Web, admin: Admin, engine: Engine
) -> None:
    world = admin(_acme_and_dan)
    person_id = _dan(engine, world)
    shown = web.http.get(f"/people/{person_id}").text

    refused = web.http.post(
        f"/people/{person_id}/opt-out", data={"csrf_token": csrf_token_in(shown), "reason": "  "}
    )

    assert refused.status_code == 422
    said = _beside(refused.text, "reason")
    assert said.startswith("Reason: say why this person is opted out")
    assert "kept in the audit log" in said
    with engine.connect() as db:
        s = t.suppressions
        assert db.scalar(sa.select(sa.func.count()).where(s.c.email == "dan@acme.com")) == 0


def _default_ruleset(world: World) -> None:
    rulesets.create(world.db, workspace_id=world.ws, name="Default", now=world.now)


SEQUENCE = {
    "name": "Intro",
    "ruleset": "Default",
    "from_address": "Sam Seller <sam@acme-sales.com>",
    "reply_to": "replies@acme-sales.com",
    "step_kind": "email",
    "step_subject": "Hi {{ person.first_name }}",
    "step_body_text": "Hello",
    "step_body_html": "",
    "step_days": "",
    "step_hours": "",
    "step_minutes": "",
    "step_id": "",
}


def test_R34_a_sequence_from_with_two_at_signs_is_refused_beside_it_with_the_form_kept(
    web: Web, admin: Admin, engine: Engine
) -> None:
    world = admin(_default_ruleset)
    token = csrf_token_in(web.http.get("/sequences/new").text)

    refused = web.http.post(
        "/sequences/new", data={**SEQUENCE, "from_address": "a@@b", "csrf_token": token}
    )

    assert refused.status_code == 422
    said = _beside(refused.text, "from_address")
    assert said.startswith("From address: 'a@@b' is not an email address (it has 2 @-signs")
    assert "type one address, such as name@example.com" in said
    assert 'href="#from_address-error"' in _summary(refused.text)
    assert 'aria-invalid="true"' in _input(refused.text, "from_address")
    kept = {name: _value(refused.text, name) for name in ("name", "from_address", "reply_to")}
    assert kept == {"name": "Intro", "from_address": "a@@b", "reply_to": "replies@acme-sales.com"}
    assert "Hi {{ person.first_name }}" in html.unescape(refused.text)  # the step kept too
    with engine.connect() as db:
        made = db.scalar(sa.select(sa.func.count()).where(t.sequences.c.workspace_id == world.ws))
    assert made == 0


def test_R34_a_name_in_use_is_refused_beside_the_name(web: Web, admin: Admin) -> None:
    admin(_default_ruleset)
    token = csrf_token_in(web.http.get("/sequences/new").text)
    created = web.http.post("/sequences/new", data={**SEQUENCE, "csrf_token": token})
    assert created.status_code == 303

    again = web.http.post("/sequences/new", data={**SEQUENCE, "csrf_token": token})

    assert again.status_code == 409
    said = _beside(again.text, "name")
    assert said == "Name: a sequence named 'Intro' exists already: choose another name"
    assert _value(again.text, "from_address") == "Sam Seller <sam@acme-sales.com>"


def _hubspot(world: World) -> None:
    connections.connect(
        world.db,
        workspace_id=world.ws,
        kind="hubspot",
        base_url="https://api.hubapi.com",
        secrets={"token": "OPTOUT_TEST_PAGE_TOKEN"},
        now=world.now,
    )


def test_R34_a_crm_mapping_refused_far_down_the_page_is_told_at_its_top(
    web: Web, admin: Admin
) -> None:
    admin(_hubspot)
    token = csrf_token_in(web.http.get("/crm/hubspot").text)
    typed = {
        "origin": "mapping",
        "crm_object": "contacts",
        "crm_field": "job title",
        "our_field": "title",
        "mode": "read",
    }

    refused = web.http.post("/crm/hubspot/mappings", data={"csrf_token": token, **typed})

    assert refused.status_code == 422
    page = refused.text
    top = re.search(r'<div class="notice error" role="alert" id="mapping-error">(.*?)</div>', page)
    assert top is not None
    assert page.index('id="mapping-error"') < page.index('id="connection-form"')
    assert 'href="#map-crm-field"' in top[1]
    assert "'job title'" in html.unescape(top[1])  # what was typed
    assert "API name" in top[1]  # what would do
    field = re.search(r'<input id="map-crm-field"[^>]*>', page)
    assert field is not None
    assert 'aria-invalid="true"' in field[0]
    assert 'value="job title"' in field[0]  # the form kept what was typed


def _taken_names(world: World) -> None:
    rulesets.create(world.db, workspace_id=world.ws, name="Careful", now=world.now)
    personas.create(
        world.db,
        workspace_id=world.ws,
        name="Buyers",
        include_keywords=["cto"],
        exclude_keywords=[],
        now=world.now,
    )
    audiences.create(world.db, workspace_id=world.ws, name="Everyone", now=world.now)
    world.exclusion("Customers", "company", "company.domain in (acme.com)")


@pytest.mark.parametrize(
    ("path", "typed", "field", "said", "status"),
    [
        (
            "/rulesets/new",
            {"name": "Slow", "reenroll_cooldown_days": "two", "max_active_per_company": "3"},
            "reenroll_cooldown_days",
            "Re-enrollment cooldown: 'two' is not a whole number: type a number of days, 0 or more",
            422,
        ),
        (
            "/rulesets/new",
            {"name": "Capped", "reenroll_cooldown_days": "30", "max_active_per_company": "0"},
            "max_active_per_company",
            "Cap per company: 0 is no cap: give 1 person or more, or no cap",
            422,
        ),
        (
            "/rulesets/new",
            {"name": "Careful", "reenroll_cooldown_days": "30", "max_active_per_company": "3"},
            "name",
            "Name: a ruleset named 'Careful' exists already: choose another name",
            409,
        ),
        (
            "/personas/new",
            {"name": "Buyers", "include": "vp sales"},
            "name",
            "Name: a persona named 'Buyers' exists already: choose another name",
            409,
        ),
        (
            "/audiences/new",
            {"name": "Everyone", "filter": 'person.title contains "cto"'},
            "name",
            "Name: an audience named 'Everyone' exists already: choose another name",
            409,
        ),
        (
            "/exclusions/new",
            {"name": "Customers", "level": "company", "filter": "company.domain in (globex.io)"},
            "name",
            "Name: an exclusion named 'Customers' exists already: choose another name",
            409,
        ),
        (
            "/audiences/new",
            {"name": "  ", "filter": 'person.title contains "cto"'},
            "name",
            "Name: an audience needs a name: type one of up to 200 characters",
            422,
        ),
    ],
)
def test_R34_a_refused_name_or_number_is_told_beside_it_with_the_form_kept(
    web: Web,
    admin: Admin,
    path: str,
    typed: dict[str, str],
    field: str,
    said: str,
    status: int,
) -> None:
    admin(_taken_names)
    token = csrf_token_in(web.http.get(path).text)

    refused = web.http.post(path, data={"csrf_token": token, **typed})

    assert refused.status_code == status
    assert _beside(refused.text, field) == said
    assert f'href="#{field}-error"' in _summary(refused.text)
    texts = ("include", "filter", "level")
    inputs = {name: value for name, value in typed.items() if name not in texts}
    assert {name: _value(refused.text, name) for name in inputs} == inputs
    for name in texts:
        if name in typed:
            assert typed[name] in html.unescape(refused.text)


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        ("soon", "Minutes before sending again: 'soon' is not a whole number"),
        ("0", "Minutes before sending again: 0 is not a number of minutes before sending again"),
    ],
)
def test_R34_an_in_doubt_policy_refused_keeps_the_minutes_typed_beside_why(
    web: Web, admin: Admin, minutes: str, said: str
) -> None:
    admin()
    token = csrf_token_in(web.http.get("/in-doubt").text)

    refused = web.http.post(
        "/in-doubt/policy", data={"csrf_token": token, "mode": "resend", "minutes": minutes}
    )

    assert refused.status_code == 422
    assert _beside(refused.text, "minutes").startswith(said)
    assert _value(refused.text, "minutes") == minutes
    assert re.search(r'value="resend" checked', refused.text)


def test_R34_a_form_error_no_page_answers_itself_leads_back_to_the_form(
    web: Web, admin: Admin
) -> None:
    admin()
    form = web.http.get("/imports?from=upload")
    back_to = str(web.http.base_url.join("/imports?from=upload"))

    refused = web.http.post(
        "/imports",
        data={"csrf_token": csrf_token_in(form.text), "kind": "spreadsheet"},
        files={"file": ("people.csv", b"Email\nann@acme.com\n", "text/csv")},
        headers={"Referer": back_to},
    )

    assert refused.status_code == 422
    assert 'href="/imports?from=upload" id="back-to-form"' in refused.text
    elsewhere = web.http.post(
        "/imports",
        data={"csrf_token": csrf_token_in(form.text), "kind": "spreadsheet"},
        files={"file": ("people.csv", b"Email\nann@acme.com\n", "text/csv")},
        headers={"Referer": "https://evil.example/imports"},
    )
    assert 'id="back-to-form"' not in elsewhere.text  # only this site's own pages


def _unmatched_message(world: World) -> None:
    s = sent_world(world)
    process_message(
        world.db,
        raw=reply(sender="ben.home@gmail.com", body="Tell me more.", subject="From home"),
        now=world.now + timedelta(hours=1),
        source="test",
        workspace_id=s.ws,
        options=OPTIONS,
    )


def test_R34_attaching_a_message_to_an_unknown_address_is_told_beside_that_message(
    web: Web, admin: Admin
) -> None:
    admin(_unmatched_message)
    queue = web.http.get("/review").text
    found = re.search(r'action="/review/(\d+)/attach"', queue)
    assert found is not None
    message_id = found[1]

    refused = web.http.post(
        f"/review/{message_id}/attach",
        data={"csrf_token": csrf_token_in(queue), "email": "nobody@acme.com"},
    )

    assert refused.status_code == 404
    said = _beside(refused.text, f"attach-{message_id}")
    assert said.startswith("Attach to: no person")
    assert "nobody@acme.com" in said
    assert f'href="#attach-{message_id}-error"' in _summary(refused.text)
    typed = re.search(rf'<input id="attach-{message_id}"[^>]*>', refused.text)
    assert typed is not None
    assert 'value="nobody@acme.com"' in typed[0]
    assert 'aria-invalid="true"' in typed[0]


def test_R34_a_crm_address_without_https_is_refused_naming_it_with_the_form_kept(
    web: Web, admin: Admin
) -> None:
    admin()
    token = csrf_token_in(web.http.get("/crm/hubspot").text)

    refused = web.http.post(
        "/crm/hubspot", data={"csrf_token": token, "base_url": "api.hubapi.com"}
    )

    assert refused.status_code == 422
    said = _text(refused.text)
    assert "HubSpot address 'api.hubapi.com' is not a web address" in said
    assert "begins with https://" in said
    assert _beside(refused.text, "base_url").startswith(
        "HubSpot address 'api.hubapi.com' is not a web address"
    )
    assert 'aria-invalid="true"' in _input(refused.text, "base_url")
    assert _value(refused.text, "base_url") == "api.hubapi.com"
