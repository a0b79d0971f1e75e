"""What an admin sees of a sequence that enrolls by itself (R41, R29, R30): the setting on
the sequence's page with its dates and how many it enrolled over the last day, the new
sequence form's box, explain's answer, the not-enrolled view and the dashboard."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.services.access import accounts
from optout.services.enrollments import automatic
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def member(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[tuple[World, str, int]]:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO", first_name="Ann")
        world.person("bob@initech.com", company="initech.com", title="CTO")
        world.exclusion(
            "Current customers", "company", "company.domain in (initech.com)",
            exclude_from_sequences=True,
        )  # fmt: skip
        world.audience("CTOs", filter='person.title contains "cto"')
        world.ruleset("Tech rules", reenroll_cooldown_days=3)
        sequence_id = world.sequence("Tech", ruleset="Tech rules", audience="CTOs")
        world.sequence("By hand", ruleset="Tech rules")
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    yield world, user, sequence_id
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _sign_in(web: Web, world: World, user: str) -> str:
    login = web.http.get("/login")
    signed = web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": csrf_token_in(login.text),
        },
    )
    assert signed.status_code == 303
    return csrf_token_in(web.http.get("/").text)


def _person_id(web: Web, world: World, email: str) -> int:
    with web.engine.connect() as db:
        found = db.scalar(
            sa.select(t.people.c.id).where(
                t.people.c.workspace_id == world.ws, t.people.c.email == email
            )
        )
    assert found is not None
    return int(found)


def _worker_pass(web: Web, world: World) -> int:
    with web.engine.begin() as db:
        return automatic.run(db, workspace_id=world.ws, now=utcnow())


def test_R41_the_sequence_page_switches_automatic_enrollment_and_counts_the_last_day(
    web: Web, member: tuple[World, str, int]
) -> None:
    world, user, sequence_id = member
    csrf = _sign_in(web, world, user)
    page = web.http.get(f"/sequences/{sequence_id}").text
    assert "Enroll automatically" in page
    assert '<b>Off</b> · <span id="enrolled-automatically">0 enrolled automatically' in page

    backwards = web.http.post(
        f"/sequences/{sequence_id}/automatic-enrollment",
        data={
            "csrf_token": csrf,
            "enroll_automatically": "on",
            "starts": "2030-01-02T09:00",
            "ends": "2030-01-01T09:00",
        },
    )
    assert backwards.status_code == 303
    refused = web.http.get(f"/sequences/{sequence_id}").text
    assert "Not saved: the end of automatic enrollment (2030-01-01 09:00) must come after" in (
        refused
    )
    assert "<b>Off</b>" in refused

    garbled = web.http.post(
        f"/sequences/{sequence_id}/automatic-enrollment",
        data={"csrf_token": csrf, "enroll_automatically": "on", "starts": "next tuesday"},
    )
    assert garbled.status_code == 303
    assert "Start &#39;next tuesday&#39; is not a date and time" in web.http.get(
        f"/sequences/{sequence_id}"
    ).text.replace("&#x27;", "&#39;")

    until = "2999-12-31T18:00"
    on = web.http.post(
        f"/sequences/{sequence_id}/automatic-enrollment",
        data={"csrf_token": csrf, "enroll_automatically": "on", "starts": "", "ends": until},
    )
    assert on.status_code == 303
    shown = web.http.get(f"/sequences/{sequence_id}").text
    assert "Tech now enrolls automatically" in shown
    assert "<b>On until 2999-12-31 18:00 UTC</b>" in shown
    assert 'id="enroll-automatically" checked' in shown
    assert f'value="{until}"' in shown

    # Ann is a member nothing stops; Bob's company is a current customer.
    ann_id, bob_id = (
        _person_id(web, world, email) for email in ("ann@acme.com", "bob@initech.com")
    )
    before = web.http.get(f"/people/{ann_id}/explain", params={"sequence": "Tech"}).text
    assert "This sequence enrolls automatically: ann@acme.com will be enrolled automatically." in (
        before
    )

    waiting = web.http.get(f"/sequences/{sequence_id}/not-enrolled").text
    assert "2 people wait to be enrolled automatically by the worker's next pass" in waiting

    assert _worker_pass(web, world) == 1
    shown = web.http.get(f"/sequences/{sequence_id}").text
    assert "1 enrolled automatically in the last day" in shown

    after = web.http.get(f"/people/{ann_id}/explain", params={"sequence": "Tech"}).text
    assert "will not be enrolled automatically: already active in this sequence" in after
    bob = web.http.get(f"/people/{bob_id}/explain", params={"sequence": "Tech"}).text
    assert (
        "bob@initech.com will not be enrolled automatically: "
        "excluded by &#39;Current customers&#39;" in bob.replace("&#x27;", "&#39;")
    )

    not_enrolled = web.http.get(f"/sequences/{sequence_id}/not-enrolled").text
    assert "This sequence enrolls automatically" in not_enrolled
    row = not_enrolled.split("bob@initech.com", 1)[1].split("</tr>", 1)[0]
    assert "Current customers" in row

    dashboard = web.http.get("/").text
    panel = dashboard.split('id="automatic-enrollments"', 1)[1].split("</section>", 1)[0]
    assert "Enrolled automatically, last 24 hours" in dashboard
    tech_row = panel.split(">Tech</a>", 1)[1].split("</tr>", 1)[0]
    assert '<td>on</td><td class="num">1</td>' in tech_row
    assert ">1</a></td>" in tech_row  # Bob, kept out now

    off = web.http.post(f"/sequences/{sequence_id}/automatic-enrollment", data={"csrf_token": csrf})
    assert off.status_code == 303
    shown = web.http.get(f"/sequences/{sequence_id}").text
    assert "Tech no longer enrolls automatically. Nobody was unenrolled." in shown
    assert "<b>Off</b>" in shown
    with web.engine.connect() as db:
        status = db.scalar(
            sa.select(t.enrollments.c.status).where(
                t.enrollments.c.sequence_id == sequence_id, t.enrollments.c.person_id == ann_id
            )
        )
    assert status == "not_started"


def test_R41_a_sequence_without_an_audience_is_told_to_choose_one_first(
    web: Web, member: tuple[World, str, int]
) -> None:
    world, user, _ = member
    with web.engine.connect() as db:
        sequence_id = db.scalar(
            sa.select(t.sequences.c.id).where(
                t.sequences.c.workspace_id == world.ws, t.sequences.c.name == "By hand"
            )
        )
    csrf = _sign_in(web, world, user)
    page = web.http.get(f"/sequences/{sequence_id}").text
    assert "This sequence has no audience." in page
    web.http.post(
        f"/sequences/{sequence_id}/automatic-enrollment",
        data={"csrf_token": csrf, "enroll_automatically": "on"},
    )
    refused = web.http.get(f"/sequences/{sequence_id}").text
    assert "Not saved: sequence &#39;By hand&#39; has no audience" in refused.replace(
        "&#x27;", "&#39;"
    )


def _new_sequence(csrf: str, name: str, **extra: str) -> dict[str, object]:
    return {
        "name": name,
        "ruleset": "Tech rules",
        "audience": "CTOs",
        "from_address": "sam@acme-sales.com",
        "step_kind": ["email"],
        "step_subject": ["Hi"],
        "step_body_text": ["Hello"],
        "step_body_html": [""],
        "step_days": [""],
        "step_hours": [""],
        "step_minutes": [""],
        "step_id": [""],
        "csrf_token": csrf,
        **extra,
    }


def test_R41_a_new_sequence_from_an_audience_enrolls_automatically_unless_unticked(
    web: Web, member: tuple[World, str, int]
) -> None:
    world, user, _ = member
    _sign_in(web, world, user)
    form = web.http.get("/sequences/new").text
    assert 'id="enroll_automatically" checked' in form
    csrf = csrf_token_in(form)
    ticked = web.http.post(
        "/sequences/new",
        data=_new_sequence(csrf, "Ticked", enroll_automatically="on"),  # type: ignore[arg-type]
    )
    assert ticked.status_code == 303, ticked.text
    unticked = web.http.post("/sequences/new", data=_new_sequence(csrf, "Unticked"))  # type: ignore[arg-type]
    assert unticked.status_code == 303, unticked.text
    with web.engine.connect() as db:
        stored = dict(
            db.execute(
                sa.select(t.sequences.c.name, t.sequences.c.auto_enroll).where(
                    t.sequences.c.workspace_id == world.ws
                )
            ).all()
        )
    assert stored == {"Tech": False, "By hand": False, "Ticked": True, "Unticked": False}
    assert "<b>On</b>" in web.http.get(ticked.headers["location"]).text
