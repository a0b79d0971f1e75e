"""Membership across workspaces takes the invited user's consent (R34): an admin of one
workspace who names another workspace's user gets an invitation, the same answer as for
an address nobody uses, and never that user's name; the user accepts or declines after
signing in, and only then is a member."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.services.access import accounts
from optout.services.access.accounts import Principal, Role
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"
SECRET_NAME = "Beatrix Hidden-Surname"
Committed = Callable[[], AbstractContextManager[World]]


@pytest.fixture
def people(engine: Engine) -> Iterator[dict[str, str]]:
    """Addresses of users made for one test, deleted afterwards (users are global)."""
    tag = uuid.uuid4().hex[:10]
    made = {
        "bea": f"bea-{tag}@beta.example",
        "carl": f"carl-{tag}@beta.example",
        "nobody": f"nobody-{tag}@beta.example",
    }
    yield made
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email.in_(list(made.values()))))


def _key(world: World) -> str:
    boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="alpha-admin")
    made = accounts.create_api_key(
        world.db, principal=boss, name="admin key", role=Role.ADMIN, now=world.now
    )
    return made.key


def _two_workspaces(committed: Committed, people: dict[str, str], now: datetime) -> Any:
    with committed() as alpha:
        key = _key(alpha)
    with committed() as beta:
        for who, name in (("bea", SECRET_NAME), ("carl", "Carl")):
            accounts.create_user(beta.db, email=people[who], name=name, password=PASSWORD, now=now)
            accounts.set_member(beta.db, workspace_id=beta.ws, email=people[who], role="admin")
    return alpha, beta, key


def _api(web: Web, key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _member_of(engine: Engine, world: World, email: str) -> str | None:
    u, m = t.users, t.memberships
    with engine.connect() as db:
        role = db.scalar(
            sa.select(m.c.role)
            .join(u, u.c.id == m.c.user_id)
            .where(u.c.email == email, m.c.workspace_id == world.ws)
        )
    return None if role is None else str(role)


def _sign_in(web: Web, world: World, email: str) -> str:
    """Sign in to `world`'s workspace; the session's CSRF token."""
    token = csrf_token_in(web.http.get("/login").text)
    data = {"workspace": world.workspace.slug, "email": email, "password": PASSWORD}
    answer = web.http.post("/login", data={**data, "csrf_token": token})
    assert answer.status_code == 303, answer.text
    return csrf_token_in(web.http.get("/invitations").text)


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """An answer without what the admin typed or the clock: what could tell two apart."""
    return {k: v for k, v in body.items() if k not in ("id", "email", "created_at")}


def test_R34_an_admin_cannot_add_another_workspaces_user_nor_learn_their_name_or_account(
    engine: Engine, committed: Committed, web: Web, people: dict[str, str], now: datetime
) -> None:
    alpha, _beta, key = _two_workspaces(committed, people, now)

    taken = web.http.post(
        "/api/v1/members", json={"email": people["bea"], "role": "admin"}, headers=_api(web, key)
    )
    unknown = web.http.post(
        "/api/v1/members",
        json={"email": people["nobody"], "role": "admin"},
        headers=_api(web, key),
    )
    listed = web.http.get("/api/v1/members", headers=_api(web, key))
    pending = web.http.get("/api/v1/invitations", headers=_api(web, key))

    assert (taken.status_code, unknown.status_code) == (202, 202)
    assert _shape(taken.json()) == _shape(unknown.json())
    assert taken.json()["status"] == "pending"
    assert SECRET_NAME not in taken.text
    assert _member_of(engine, alpha, people["bea"]) is None  # no membership without consent
    assert people["bea"] not in listed.text
    assert SECRET_NAME not in pending.text
    assert sorted(i["email"] for i in pending.json()) == sorted([people["bea"], people["nobody"]])


def test_R34_setting_a_password_for_someone_not_a_member_is_refused_alike_for_any_address(
    engine: Engine, committed: Committed, web: Web, people: dict[str, str], now: datetime
) -> None:
    alpha, _beta, key = _two_workspaces(committed, people, now)
    answers = [
        web.http.post(
            "/api/v1/members",
            json={"email": people[who], "role": "member", "password": "a fresh long passphrase"},
            headers=_api(web, key),
        )
        for who in ("bea", "nobody")
    ]

    assert [a.status_code for a in answers] == [422, 422]
    assert answers[0].json() == answers[1].json()
    with engine.connect() as db:
        assert db.scalar(sa.select(t.users.c.id).where(t.users.c.email == people["nobody"])) is None
    assert _member_of(engine, alpha, people["bea"]) is None


def test_R34_the_invited_user_accepts_after_signing_in_and_only_then_is_a_member(
    engine: Engine, committed: Committed, web: Web, people: dict[str, str], now: datetime
) -> None:
    alpha, beta, key = _two_workspaces(committed, people, now)
    invited = web.http.post(
        "/api/v1/members", json={"email": people["bea"], "role": "admin"}, headers=_api(web, key)
    ).json()

    _sign_in(web, beta, people["bea"])
    page = web.http.get("/invitations")
    assert page.status_code == 200
    assert alpha.workspace.name in page.text
    assert f"/invitations/{invited['id']}/accept" in page.text
    assert _member_of(engine, alpha, people["bea"]) is None

    csrf = csrf_token_in(page.text)
    accepted = web.http.post(f"/invitations/{invited['id']}/accept", data={"csrf_token": csrf})

    assert accepted.status_code == 303
    assert _member_of(engine, alpha, people["bea"]) == "admin"
    members = web.http.get("/api/v1/members", headers=_api(web, key)).json()
    assert {"email": people["bea"], "name": SECRET_NAME, "role": "admin"}.items() <= next(
        m for m in members if m["email"] == people["bea"]
    ).items()
    assert f"/invitations/{invited['id']}/accept" not in web.http.get("/invitations").text


def test_R34_an_invitation_is_answered_only_by_its_user_and_can_be_declined_through_the_api(
    engine: Engine, committed: Committed, web: Web, people: dict[str, str], now: datetime
) -> None:
    alpha, beta, key = _two_workspaces(committed, people, now)
    invited = web.http.post(
        "/api/v1/members", json={"email": people["bea"], "role": "member"}, headers=_api(web, key)
    ).json()

    csrf = _sign_in(web, beta, people["carl"])  # another user of beta tries bea's invitation
    stolen = web.http.post(
        f"/api/v1/invitations/{invited['id']}/accept", headers={"X-CSRF-Token": csrf}
    )
    assert stolen.status_code == 404
    assert _member_of(engine, alpha, people["carl"]) is None
    web.http.cookies.clear()

    csrf = _sign_in(web, beta, people["bea"])
    forged = web.http.post(f"/api/v1/invitations/{invited['id']}/decline")  # no CSRF token
    declined = web.http.post(
        f"/api/v1/invitations/{invited['id']}/decline", headers={"X-CSRF-Token": csrf}
    )

    assert forged.status_code == 403
    assert declined.status_code == 200
    assert declined.json()["workspace"] == alpha.workspace.slug
    assert _member_of(engine, alpha, people["bea"]) is None
    pending = web.http.get("/api/v1/invitations", headers=_api(web, key)).json()
    assert people["bea"] not in [i["email"] for i in pending]
    again = web.http.post(
        f"/api/v1/invitations/{invited['id']}/accept", headers={"X-CSRF-Token": csrf}
    )
    assert again.status_code == 404


def test_R34_an_invitation_cannot_be_accepted_without_signing_in(
    committed: Committed, web: Web, people: dict[str, str], now: datetime
) -> None:
    _alpha, _beta, key = _two_workspaces(committed, people, now)
    invited = web.http.post(
        "/api/v1/members", json={"email": people["bea"], "role": "member"}, headers=_api(web, key)
    ).json()

    answer = web.http.post(f"/api/v1/invitations/{invited['id']}/accept")

    assert answer.status_code in (401, 403)
