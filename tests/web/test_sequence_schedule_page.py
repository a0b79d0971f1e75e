"""The sequence form's sending hours, and the threaded subject in its preview (R38, R39)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.sequences import rulesets
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def member(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[tuple[World, str]]:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        world.person("ann@acme.com", company="acme.com", first_name="Ann")
        rulesets.create(world.db, workspace_id=world.ws, name="Default", now=now)
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    yield world, user
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _form(csrf: str, **schedule: object) -> dict[str, object]:
    return {
        "name": "Intro",
        "ruleset": "Default",
        "from_address": "sam@acme-sales.com",
        "step_kind": ["email", "wait", "email"],
        "step_subject": ["Hi {{ person.first_name }}", "", ""],
        "step_body_text": ["Hello", "", "Following up."],
        "step_body_html": ["", "", ""],
        "step_days": ["", "2", ""],
        "step_hours": ["", "", ""],
        "step_minutes": ["", "", ""],
        "step_id": ["", "", ""],
        "csrf_token": csrf,
        **schedule,
    }


def test_R38_R39_the_sequence_form_sets_sending_hours_and_previews_the_reply_subject(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
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
    new = web.http.get("/sequences/new")
    assert "Sending hours" in new.text
    csrf = csrf_token_in(new.text)
    weekdays = ["mon", "tue", "wed", "thu", "fri"]

    backwards = _form(
        csrf, schedule="shown", send_day=weekdays, send_start="17:00", send_end="09:00"
    )
    refused = web.http.post("/sequences/new", data=backwards)  # type: ignore[arg-type]
    assert refused.status_code == 422
    assert "must start before they end" in refused.text

    posted = _form(
        csrf,
        schedule="shown",
        send_day=weekdays,
        send_start="09:00",
        send_end="17:00",
        business_day_waits="on",
    )
    created = web.http.post("/sequences/new", data=posted)  # type: ignore[arg-type]
    assert created.status_code == 303, created.text
    with web.engine.connect() as db:
        stored = db.execute(
            sa.select(
                t.sequences.c.send_days,
                t.sequences.c.send_from_minute,
                t.sequences.c.send_until_minute,
                t.sequences.c.business_day_waits,
            ).where(t.sequences.c.workspace_id == world.ws)
        ).one()
    assert tuple(stored) == (0b0011111, 540, 1020, True)

    edit = web.http.get(created.headers["location"].split("?")[0] + "/edit").text
    assert 'id="send-day-mon" checked' in edit
    assert 'id="send-day-sat" checked' not in edit
    assert 'id="send_start" name="send_start" type="text" inputmode="numeric" value="09:00"' in edit
    assert 'id="business_day_waits" checked' in edit

    preview = web.http.post(
        "/sequences/step-preview",
        data={**posted, "preview_index": "2", "preview_email": "ann@acme.com"},  # type: ignore[dict-item]
    )
    assert '<b class="rendered-subject">Re: Hi Ann</b>' in preview.text
