"""Attacks on signing in and on sessions, over real HTTP: a respelled address past the
sign-in limit, a forged client address, off-site redirects after sign-in, sessions that
outlive a password change, timing that tells users apart, guessable passwords, and the
cookie and HSTS settings for running behind a TLS proxy."""

from __future__ import annotations

import hashlib
import ipaddress
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services.access import accounts, sign_in_limits
from optout.services.access.accounts import Principal, Role
from optout.web.clients import client_address
from tests.factories import World
from tests.web.conftest import Web, csrf_token_in, web_client

PASSWORD = "correct horse battery staple"
LOCALHOST = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture
def member(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[tuple[World, str]]:
    """A committed workspace and a member user's address (at example.com)."""
    user = f"victim-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        accounts.create_user(world.db, email=user, name="Vic", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    yield world, user
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _login(web: Web, data: dict[str, str], **headers: str) -> httpx.Response:
    """Post the sign-in form as a browser does: fetched first, with its form token."""
    token = csrf_token_in(web.http.get("/login").text)
    return web.http.post("/login", data={**data, "csrf_token": token}, headers=headers)


def _sign_in(web: Web, world: World, email: str, next: str = "/", **headers: str) -> httpx.Response:
    form = {"workspace": world.workspace.slug, "email": email, "password": PASSWORD, "next": next}
    return _login(web, form, **headers)


def _wrong(world: World, email: str) -> dict[str, str]:
    return {"workspace": world.workspace.slug, "email": email, "password": "not the password"}


# --- the sign-in limit --------------------------------------------------------------------


def test_R34_sign_in_limit_holds_for_a_respelled_address(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    for _ in range(sign_in_limits.PER_ACCOUNT):
        assert _login(web, _wrong(world, user)).status_code == 401
    local = user.split("@")[0]
    for respelled in (
        f"{local}@\N{FULLWIDTH LATIN SMALL LETTER E}xample.com",
        f" {local.upper()}@EXAMPLE.COM ",
    ):
        answer = _sign_in(web, world, respelled)
        assert answer.status_code == 429, respelled
        assert "optout_session" not in answer.headers.get("set-cookie", "")


def test_R34_failures_under_respelled_addresses_count_against_one_account(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    local = user.split("@")[0]
    spellings = [
        user,
        user.upper(),
        f"{local}@\N{FULLWIDTH LATIN SMALL LETTER E}xample.com",
        f"{local}@EXAMPLE.com",
        f" {user}",
    ]
    for spelling in spellings:
        assert _login(web, _wrong(world, spelling)).status_code == 401
    assert _sign_in(web, world, user).status_code == 429


def test_per_client_limit_ignores_x_forwarded_for_from_an_untrusted_peer(
    web: Web, member: tuple[World, str]
) -> None:
    world, _ = member
    for n in range(sign_in_limits.PER_CLIENT):
        guess = _wrong(world, f"guess{n}-{uuid.uuid4().hex[:6]}@example.com")
        assert _login(web, guess, **{"X-Forwarded-For": f"198.51.100.{n + 1}"}).status_code == 401
    fresh = _wrong(world, f"fresh-{uuid.uuid4().hex[:6]}@example.com")
    answer = _login(web, fresh, **{"X-Forwarded-For": "203.0.113.99"})
    assert answer.status_code == 429
    with web.engine.connect() as db:
        clients = set(db.scalars(sa.select(t.login_attempts.c.client)))
    assert clients == {"127.0.0.1"}


def test_a_trusted_proxy_names_the_client_and_a_forged_hop_left_of_it_is_ignored(
    engine: Engine, member: tuple[World, str]
) -> None:
    world, _ = member
    with web_client(engine, trusted_proxies=LOCALHOST) as web:
        for n in range(sign_in_limits.PER_CLIENT):
            guess = _wrong(world, f"guess{n}-{uuid.uuid4().hex[:6]}@example.com")
            # What the client wrote, then what the proxy appended: the client it saw.
            forged = f"10.0.0.{n}, 203.0.113.7"
            assert _login(web, guess, **{"X-Forwarded-For": forged}).status_code == 401
        other = _wrong(world, f"other-{uuid.uuid4().hex[:6]}@example.com")
        assert _login(web, other, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 429
        assert _login(web, other, **{"X-Forwarded-For": "198.51.100.1"}).status_code == 401
        with web.engine.connect() as db:
            clients = set(db.scalars(sa.select(t.login_attempts.c.client)))
        assert clients == {"203.0.113.7", "198.51.100.1"}


def test_the_client_is_read_from_the_right_of_x_forwarded_for_past_trusted_proxies() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert client_address("203.0.113.5", ["1.2.3.4"], proxies) == "203.0.113.5"
    assert client_address("10.0.0.2", [], proxies) == "10.0.0.2"
    assert client_address("10.0.0.2", ["6.6.6.6, 198.51.100.4"], proxies) == "198.51.100.4"
    assert client_address("10.0.0.2", ["6.6.6.6", "198.51.100.4, 10.1.1.1"], proxies) == (
        "198.51.100.4"
    )
    assert client_address("::1", ["10.0.0.9"], proxies) == "10.0.0.9"  # proxies all the way
    assert client_address("10.0.0.2", ["not-an-address"], proxies) == "10.0.0.2"
    assert client_address("127.0.0.1", ["198.51.100.4"], ()) == "127.0.0.1"  # trust none


# --- where sign-in leads --------------------------------------------------------------------


OFF_SITE = (
    "/\t/evil.example/phish",
    "/\n/evil.example/",
    "/\r\n/evil.example/",
    "\t//evil.example/",
    "//evil.example/",
    "///evil.example/",
    "/\\evil.example/",
    "\\\\evil.example/",
    "\\/evil.example/",
    " //evil.example/",
    "/%09/evil.example/",
    "/%2F/evil.example/",
    "%2F%2Fevil.example/",
    "/%5Cevil.example/",
    "/%252F%252Fevil.example/",
    "/%25252525252F%25252525252Fevil.example/",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "evil.example",
    "",
)


def test_sign_in_never_redirects_off_site_however_the_target_is_spelled(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    for target in OFF_SITE:
        answer = _sign_in(web, world, user, next=target)
        assert answer.status_code == 303, repr(target)
        assert answer.headers["location"] == "/", repr(target)
    # The attack as sent: the query string of the sign-in page's address.
    form = web.http.get("/login?next=/%09/evil.example/phish")
    assert 'name="next" value="/"' in form.text
    kept = _sign_in(web, world, user, next="/people?q=acme&next=%2Fexclusions")
    assert kept.headers["location"] == "/people?q=acme&next=%2Fexclusions"


# --- sessions and passwords -----------------------------------------------------------------


def test_a_password_change_ends_every_session_of_the_user(
    engine: Engine, member: tuple[World, str]
) -> None:
    world, user = member
    with web_client(engine) as laptop, web_client(engine) as phone:
        assert _sign_in(laptop, world, user).status_code == 303
        assert _sign_in(phone, world, user).status_code == 303
        assert laptop.http.get("/").status_code == 200
        with engine.begin() as db:
            accounts.set_password(db, email=user, password="a brand new passphrase")
        for device in (laptop, phone):
            answer = device.http.get("/")
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login")
        with engine.connect() as db:
            sessions = db.scalar(
                sa.select(sa.func.count())
                .select_from(t.web_sessions)
                .join(t.users, t.users.c.id == t.web_sessions.c.user_id)
                .where(t.users.c.email == user)
            )
        assert sessions == 0


def test_sign_in_does_the_same_password_work_for_an_unknown_address(
    web: Web, member: tuple[World, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, user = member
    calls: list[tuple[Any, ...]] = []
    real = hashlib.scrypt

    def counted(password: bytes, **cost: Any) -> bytes:
        # Only the sign-in's own work: the app serves other tests of this process from
        # the same module, and a thread of theirs may hash another password meanwhile.
        if password == b"not the password":
            calls.append((cost["n"], cost["r"], cost["p"]))
        return real(password, **cost)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    work = {}
    for name, form in (
        ("known", _wrong(world, user)),
        ("unknown", _wrong(world, f"nobody-{uuid.uuid4().hex[:6]}@example.com")),
        ("no such workspace", {**_wrong(world, user), "workspace": "no-such-workspace"}),
    ):
        calls.clear()
        assert _login(web, form).status_code == 401
        work[name] = list(calls)
    assert work["known"] == work["unknown"] == work["no such workspace"]
    assert len(work["known"]) == 1


@pytest.mark.parametrize(
    "weak",
    ["1234567890", "short1!", "0000000000000", "qwertyuiop", "password123", "abcabcabcabc"],
)
def test_R34_a_guessable_password_is_refused_with_a_clear_error(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], weak: str
) -> None:
    with committed() as world:
        boss = Principal(workspace_id=world.ws, role=Role.ADMIN, actor="test-setup")
        key = accounts.create_api_key(
            world.db, principal=boss, name="admin key", role=Role.ADMIN, now=world.now
        )
    address = f"new-{uuid.uuid4().hex[:8]}@example.com"
    with web_client(engine) as web:
        answer = web.http.post(
            "/api/v1/members",
            json={"email": address, "role": "member", "password": weak},
            headers={"Authorization": f"Bearer {key.key}"},
        )
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert "password" in message
    with engine.connect() as db:
        assert not db.scalar(sa.select(t.users.c.id).where(t.users.c.email == address))


def test_the_demo_password_and_passphrases_are_accepted(engine: Engine, now: datetime) -> None:
    with engine.begin() as db:
        for password in ("optout-demo-password", PASSWORD, "Tr0ub4dor&3x-horse"):
            address = f"ok-{uuid.uuid4().hex[:8]}@example.com"
            accounts.create_user(db, email=address, name="", password=password, now=now)
            db.execute(t.users.delete().where(t.users.c.email == address))


# --- behind a TLS proxy -------------------------------------------------------------------


def test_https_only_marks_every_cookie_secure_and_sends_hsts(
    engine: Engine, member: tuple[World, str]
) -> None:
    world, user = member
    with web_client(engine, https_only=True) as web:
        form = web.http.get("/login")
        assert form.headers["strict-transport-security"] == "max-age=31536000"
        assert "; secure" in form.headers["set-cookie"].lower()
        token = csrf_token_in(form.text)
        # httpx keeps Secure cookies to https: send the form's cookie as a browser would.
        signed_in = web.http.post(
            "/login",
            data={
                "workspace": world.workspace.slug,
                "email": user,
                "password": PASSWORD,
                "csrf_token": token,
            },
            headers={"Cookie": f"optout_login_csrf={token}"},
        )
        assert signed_in.status_code == 303
        session = next(
            c for c in signed_in.headers.get_list("set-cookie") if c.startswith("optout_session=")
        )
        assert "; secure" in session.lower()
        assert "; httponly" in session.lower()
        assert web.http.get("/healthz").headers["strict-transport-security"]
    with web_client(engine) as plain:  # plain http without the setting: neither
        form = plain.http.get("/login")
        assert "strict-transport-security" not in form.headers
        assert "; secure" not in form.headers["set-cookie"].lower()


def test_a_password_changed_while_signing_in_opens_no_session(
    engine: Engine, member: tuple[World, str]
) -> None:
    world, user = member
    with engine.connect() as db:
        checked = accounts.check_credentials(
            db, email=user, password=PASSWORD, workspace_id=world.ws
        )
    with engine.begin() as db:
        accounts.set_password(db, email=user, password="a brand new passphrase")
    with engine.begin() as db, pytest.raises(accounts.NotSignedIn):
        accounts.open_session(db, credentials=checked, now=world.now)


def test_proxy_and_https_settings_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTOUT_SECRET_KEYS", "settings-test-secret-key-0123")
    default = Settings.from_env()
    assert default.trusted_proxies == ()  # trust none
    assert default.https_only is False
    monkeypatch.setenv("OPTOUT_TRUSTED_PROXIES", " 127.0.0.1, 10.0.0.0/8 ,::1")
    monkeypatch.setenv("OPTOUT_HTTPS_ONLY", "yes")
    given = Settings.from_env()
    assert [str(n) for n in given.trusted_proxies] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert given.https_only is True
    monkeypatch.setenv("OPTOUT_TRUSTED_PROXIES", "proxy.internal")
    with pytest.raises(InvalidInput, match="OPTOUT_TRUSTED_PROXIES"):
        Settings.from_env()
    monkeypatch.setenv("OPTOUT_TRUSTED_PROXIES", "")
    monkeypatch.setenv("OPTOUT_HTTPS_ONLY", "sometimes")
    with pytest.raises(InvalidInput, match="OPTOUT_HTTPS_ONLY"):
        Settings.from_env()
