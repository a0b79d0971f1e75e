"""A CSV straight into an exclusion list from the imports page, over real HTTP (R13, R23):
the values are added to an exclusion that unenrolls on save, the enrollments of the
companies listed end, and a file with a bad row adds nothing."""

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
from optout.services.exclusions import saves
from tests.factories import World
from tests.services.test_imports_in_parts import customers_world
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"
Committed = Callable[[], AbstractContextManager[World]]


@pytest.fixture
def admin(engine: Engine, committed: Committed, now: datetime) -> Iterator[tuple[World, str]]:
    """Four enrolled people at four companies, a company list that unenrolls on save,
    and an admin's address."""
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        customers_world(world, people=4)
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="admin")
    yield world, user
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _import(web: Web, text: str) -> str:
    """Upload the file as an exclusion list, then map its column into "Customers"."""
    form = csrf_token_in(web.http.get("/imports").text)
    uploaded = web.http.post(
        "/imports",
        data={"kind": "exclusion_list", "csrf_token": form},
        files={"file": ("customers.csv", text.encode(), "text/csv")},
    )
    assert uploaded.status_code == 303, uploaded.text[:500]
    mapping = web.http.get(uploaded.headers["location"])
    token = uploaded.headers["location"].split("?")[0].rsplit("/", 1)[1]
    answer = web.http.post(
        f"/imports/{token}/apply",
        data={
            "kind": "exclusion_list",
            "column": "Domain",
            "exclusion": "Customers",
            "level": "company",
            "confirm": "yes",
            "csrf_token": csrf_token_in(mapping.text),
        },
    )
    assert answer.status_code == 200, answer.text[:500]
    return answer.text


def _statuses(engine: Engine, ws: int) -> list[str]:
    p, e = t.people, t.enrollments
    query = (
        sa.select(e.c.status)
        .join(p, p.c.id == e.c.person_id)
        .where(p.c.workspace_id == ws)
        .order_by(p.c.email)
    )
    with engine.connect() as db:
        return list(db.scalars(query))


def test_R23_R13_exclusion_list_from_the_imports_page_adds_values_and_unenrolls(
    web: Web, engine: Engine, admin: tuple[World, str]
) -> None:
    world, user = admin
    login = csrf_token_in(web.http.get("/login").text)
    signed_in = web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": login,
        },
    )
    assert signed_in.status_code == 303

    refused = _import(web, "Domain\nc1.com\nnot a domain\n")

    assert "nothing was imported" in refused
    assert _statuses(engine, world.ws) == [
        "unenrolled",
        "not_started",
        "not_started",
        "not_started",
    ]

    done = _import(web, "Domain\nc1.com\nwww.c2.com\nc0.com\n")

    assert "2 value(s) added to <b>Customers</b>, 1 listed already" in done
    assert _statuses(engine, world.ws) == [*["unenrolled"] * 3, "not_started"]
    with engine.connect() as db:
        rule = saves.get(db, workspace_id=world.ws, name="Customers")
    assert rule.filter.value == ("c0.com", "c1.com", "c2.com")  # type: ignore[union-attr]
