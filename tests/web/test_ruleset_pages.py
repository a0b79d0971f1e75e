"""The ruleset pages over real HTTP: as in the JSON API, only an admin may create or
change a ruleset; a member's post is refused and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.naming import row_by_name
from optout.services.sequences import rulesets
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


def test_a_member_cannot_create_or_change_a_ruleset_from_the_page(
    web: Web,
    engine: Engine,
    committed: Callable[[], AbstractContextManager[World]],
    now: datetime,
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        world.ruleset("Default", reenroll_cooldown_days=7)
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
        ruleset_id = row_by_name(
            world.db, t.rulesets, workspace_id=world.ws, name="Default", what="ruleset"
        )["id"]
    try:
        login_form = web.http.get("/login")  # signing in needs the form's own token
        signed_in = web.http.post(
            "/login",
            data={
                "workspace": world.workspace.slug,
                "email": user,
                "password": PASSWORD,
                "csrf_token": csrf_token_in(login_form.text),
            },
        )
        assert signed_in.status_code == 303
        form = web.http.get(f"/rulesets/{ruleset_id}")
        assert form.status_code == 200
        assert "Only an admin of the workspace can change rulesets" in form.text
        data = {
            "csrf_token": csrf_token_in(form.text),
            "name": "Default",
            "reenroll_cooldown_days": "0",
            "max_active_per_company": "",
        }
        changed = web.http.post(f"/rulesets/{ruleset_id}", data=data)
        created = web.http.post("/rulesets/new", data={**data, "name": "Loose"})
        assert (changed.status_code, created.status_code) == (403, 403)
        assert "this needs an admin of the workspace" in changed.text
        with engine.connect() as db:
            spec = rulesets.spec(db, workspace_id=world.ws, ruleset_id=ruleset_id)
            names = db.scalars(
                sa.select(t.rulesets.c.name).where(t.rulesets.c.workspace_id == world.ws)
            ).all()
        assert (spec.exclusions_enabled, spec.reenroll_cooldown_days) == (True, 7)
        assert names == ["Default"]
    finally:
        with engine.begin() as db:
            db.execute(t.users.delete().where(t.users.c.email == user))
