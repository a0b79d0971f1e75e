"""The pages over real HTTP (uvicorn + httpx), without a browser: signing in and out,
the session cookie, CSRF, the trip to the sign-in page, and fragments' errors."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from optout.config import Settings
from optout.db import tables as t
from optout.services import workspaces
from optout.services.access import accounts, sign_in_limits
from optout.services.sequences import rulesets
from optout.web.app import create_app
from optout.web.pages.route import PageRoute
from tests.factories import World
from tests.user_text import RAW_FIELD_PATH, admin_unfamiliar
from tests.web.conftest import Web, csrf_token_in

PASSWORD = "correct horse battery staple"


@pytest.fixture
def member(
    engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> Iterator[tuple[World, str]]:
    """A committed workspace with one person, and a member user's address."""
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        world.person("ann@acme.com", company="acme.com")
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    yield world, user
    with engine.begin() as db:
        db.execute(t.users.delete().where(t.users.c.email == user))


def _login(web: Web, data: dict[str, str]) -> httpx.Response:
    """Post the sign-in form as a browser does: fetched first, with its form token."""
    token = csrf_token_in(web.http.get("/login").text)
    return web.http.post("/login", data={**data, "csrf_token": token})


def _sign_in(web: Web, world: World, user: str, next: str = "/") -> httpx.Response:
    return _login(
        web,
        {"workspace": world.workspace.slug, "email": user, "password": PASSWORD, "next": next},
    )


def _csrf(web: Web) -> str:
    return csrf_token_in(web.http.get("/exclusions/new").text)


def test_signed_out_pages_lead_to_sign_in_and_back(web: Web) -> None:
    answer = web.http.get("/exclusions?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2Fexclusions%3Fx%3D1"
    fragment = web.http.get("/people/1/explain", headers={"HX-Request": "true"})
    assert fragment.headers["HX-Redirect"] == "/login"
    form = web.http.get("/login?next=/exclusions")
    assert form.status_code == 200
    assert 'name="next" value="/exclusions"' in form.text


def test_sign_in_sets_an_httponly_lax_cookie_and_goes_where_asked(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    answer = _sign_in(web, world, user, next="/exclusions")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/exclusions"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("optout_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    page = web.http.get("/exclusions")
    assert page.status_code == 200
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert world.workspace.name in page.text


def test_sign_in_never_redirects_to_another_host(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        assert _sign_in(web, world, user, next=target).headers["location"] == "/"


def test_wrong_password_or_workspace_is_one_message(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    for workspace, password in (
        (world.workspace.slug, "not the password"),
        ("no-such-workspace", PASSWORD),
    ):
        answer = _login(web, {"workspace": workspace, "email": user, "password": password})
        assert answer.status_code == 401
        assert "Wrong workspace, email or password." in answer.text
        assert "optout_session" not in answer.headers.get("set-cookie", "")


def test_failed_sign_ins_lock_the_account_with_a_clear_message(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    wrong = {"workspace": world.workspace.slug, "email": user, "password": "not the password"}
    for _ in range(sign_in_limits.PER_ACCOUNT):
        assert _login(web, wrong).status_code == 401
    locked = _sign_in(web, world, user)  # even the right password waits now
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert "try again in 15 minutes" in locked.text
    assert 14 * 60 < int(locked.headers["retry-after"]) <= 15 * 60
    assert "optout_session" not in locked.headers.get("set-cookie", "")
    with web.engine.connect() as db:  # kept in the database, for every process to see
        failures = db.scalar(
            sa.select(sa.func.count())
            .select_from(t.login_attempts)
            .where(t.login_attempts.c.email == user, t.login_attempts.c.succeeded.is_(False))
        )
    assert failures == sign_in_limits.PER_ACCOUNT


def test_a_successful_sign_in_resets_the_accounts_failure_count(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    wrong = {"workspace": world.workspace.slug, "email": user, "password": "not the password"}
    for _ in range(sign_in_limits.PER_ACCOUNT - 1):
        _login(web, wrong)
    assert _sign_in(web, world, user).status_code == 303
    for _ in range(sign_in_limits.PER_ACCOUNT - 1):
        assert _login(web, wrong).status_code == 401
    assert _sign_in(web, world, user).status_code == 303


def test_form_post_without_the_csrf_token_is_refused(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    _sign_in(web, world, user)
    data = {"name": "Acme", "level": "company", "filter": "company.domain = acme.com"}
    refused = web.http.post("/exclusions/new", data=data)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    accepted = web.http.post("/exclusions/new", data={**data, "csrf_token": _csrf(web)})
    assert accepted.status_code == 303
    with web.engine.connect() as db:
        names = db.scalars(
            sa.select(t.exclusions.c.name).where(t.exclusions.c.workspace_id == world.ws)
        ).all()
    assert names == ["Acme"]


def test_form_post_with_a_wrong_or_another_sessions_csrf_token_is_refused(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    _sign_in(web, world, user)
    mine = _csrf(web)
    with httpx.Client(base_url=web.http.base_url, follow_redirects=False, timeout=10) as other:
        theirs = Web(web.engine, web.tokens, other)
        _sign_in(theirs, world, user)
        their_token = _csrf(theirs)
    assert their_token != mine
    data = {"name": "Acme", "level": "company", "filter": "company.domain = acme.com"}
    for sent in ("", "x", mine[:-1], mine + "x", mine.upper(), their_token):
        as_field = web.http.post("/exclusions/new", data={**data, "csrf_token": sent})
        assert as_field.status_code == 403, sent
        assert "CSRF" in as_field.text
        as_header = web.http.post(
            "/exclusions/preview",
            data={"level": "company", "filter": "company.domain = acme.com"},
            headers={"X-CSRF-Token": sent, "HX-Request": "true"} if sent else {},
        )
        assert as_header.status_code == 403, sent
    with web.engine.connect() as db:
        made = db.scalar(
            sa.select(sa.func.count())
            .select_from(t.exclusions)
            .where(t.exclusions.c.workspace_id == world.ws)
        )
    assert made == 0
    assert web.http.post("/exclusions/new", data={**data, "csrf_token": mine}).status_code == 303


def _routes(routes: Sequence[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, also those inside included routers (FastAPI may keep them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from _routes(nested.routes)
        else:
            yield route


def _page_posts(web: Web) -> list[str]:
    """Every POST route of the pages, found in the app itself, so a new one cannot slip by."""
    app = create_app(Settings(database_url="unused://", secret_keys=("k" * 32,)), web.engine)
    posts = sorted(
        route.path
        for route in _routes(app.routes)
        if isinstance(route, PageRoute) and "POST" in route.methods and route.path != "/login"
    )
    assert len(posts) >= 12
    return posts


def test_every_page_form_refuses_a_post_without_the_csrf_token(
    web: Web, member: tuple[World, str]
) -> None:
    """Every POST route of the pages, found in the app itself, so a new one cannot slip by."""
    world, user = member
    _sign_in(web, world, user)
    posts = _page_posts(web)
    for path in posts:
        target = re.sub(r"\{[^}]+\}", "1", path)
        answer = web.http.post(target, data={"name": "x", "action": "pause"})
        assert answer.status_code == 403, path
        assert "CSRF" in answer.text, path
    assert web.http.get("/").status_code == 200  # still signed in: nothing was done


def test_R34_a_non_ascii_csrf_token_is_refused_not_a_server_error(
    web: Web, member: tuple[World, str]
) -> None:
    """On every page POST route, as a form field and as the header htmx sends."""
    world, user = member
    _sign_in(web, world, user)
    posts = _page_posts(web)
    for path in posts:
        target = re.sub(r"\{[^}]+\}", "1", path)
        as_field = web.http.post(target, data={"name": "x", "csrf_token": "jeton-é²"})
        assert as_field.status_code == 403, path
        assert "CSRF" in as_field.text, path
        as_header = web.http.post(
            target,
            data={"name": "x"},
            headers={"X-CSRF-Token": "jeton-é".encode("latin-1"), "HX-Request": "true"},
        )
        assert as_header.status_code == 403, path
    sign_in = web.http.post(
        "/login",
        data={
            "workspace": world.workspace.slug,
            "email": user,
            "password": PASSWORD,
            "csrf_token": "é",
        },
    )
    assert sign_in.status_code == 403
    assert web.http.get("/").status_code == 200  # still signed in: nothing was done


def test_R34_a_page_id_beyond_any_stored_id_answers_404_not_a_server_error(
    web: Web, member: tuple[World, str]
) -> None:
    """Every page route with a whole-number id in its path, GET and POST, 2**31 and up
    (ids are 32-bit in storage; 2**63 also overflows SQLite's integer)."""
    world, user = member
    _sign_in(web, world, user)
    token = _csrf(web)
    app = create_app(Settings(database_url="unused://", secret_keys=("k" * 32,)), web.engine)
    routes = [
        route
        for route in _routes(app.routes)
        if isinstance(route, PageRoute)
        and any(p.field_info.annotation is int for p in route.dependant.path_params)
    ]
    assert len(routes) >= 10
    for route in routes:
        for huge in (2**31, 2**63, 2**64, 10**30):
            target = re.sub(r"\{[^}]+\}", str(huge), route.path)
            for method in sorted(route.methods):
                answer = web.http.request(
                    method, target, data={"csrf_token": token} if method == "POST" else None
                )
                assert answer.status_code == 404, (method, target, answer.status_code)
    assert web.http.get("/").status_code == 200


def test_R34_a_sequence_from_address_with_a_line_break_is_refused_on_the_page(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    with web.engine.begin() as db:
        rulesets.create(db, workspace_id=world.ws, name="Default", now=world.now)
    _sign_in(web, world, user)
    form = {
        "name": "Intro",
        "ruleset": "Default",
        "from_address": "sam@acme-sales.com\r\nBcc: everyone@victim.example",
        "step_kind": "email",
        "step_subject": "Hi",
        "step_body_text": "Hello",
        "step_body_html": "",
        "step_days": "",
        "step_hours": "",
        "step_minutes": "",
        "step_id": "",
        "csrf_token": _csrf(web),
    }
    refused = web.http.post("/sequences/new", data=form)
    assert 400 <= refused.status_code < 500, refused.status_code
    assert "line break" in refused.text
    created = web.http.post("/sequences/new", data={**form, "from_address": "sam@acme-sales.com"})
    assert created.status_code == 303, created.text
    edit = created.headers["location"].split("?")[0] + "/edit"
    edited = web.http.post(edit, data={**form, "from_address": "sam@acme-sales.com\nX-Evil: 1"})
    assert 400 <= edited.status_code < 500, edited.status_code
    assert "line break" in edited.text
    with web.engine.connect() as db:
        senders = db.scalars(
            sa.select(t.sequences.c.from_address).where(t.sequences.c.workspace_id == world.ws)
        ).all()
    assert senders == ["sam@acme-sales.com"]


def test_sign_in_form_needs_its_own_token(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    data = {"workspace": world.workspace.slug, "email": user, "password": PASSWORD}
    for sent in (None, "forged"):
        refused = web.http.post(
            "/login", data=data if sent is None else {**data, "csrf_token": sent}
        )
        assert refused.status_code == 403
        assert "This sign-in form has expired" in refused.text
        assert "optout_session" not in refused.headers.get("set-cookie", "")
    # A page on another site cannot read the form's cookie: a token it got for itself
    # does not fit the visitor's cookie.
    with httpx.Client(base_url=web.http.base_url, timeout=10) as attacker:
        stolen = csrf_token_in(attacker.get("/login").text)
    web.http.get("/login")
    refused = web.http.post("/login", data={**data, "csrf_token": stolen})
    assert refused.status_code == 403
    assert _sign_in(web, world, user).status_code == 303


def test_R34_preview_names_what_is_wrong_with_a_filter(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    _sign_in(web, world, user)
    answer = web.http.post(
        "/exclusions/preview",
        data={"level": "company", "filter": "company.domian = acme.com"},
        headers={"X-CSRF-Token": _csrf(web), "HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert "Filter problem" in answer.text
    assert "unknown field &#39;company.domian&#39;" in answer.text


def test_R22_builder_appends_a_condition_in_the_text_syntax(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    _sign_in(web, world, user)
    answer = web.http.post(
        "/exclusions/condition",
        data={
            "level": "people",
            "filter": "person.title contains intern or person.title contains recruiter",
            "builder_field": "company.domain",
            "builder_op": "in",
            "builder_value": "acme.com, Globex.io",
        },
        headers={"X-CSRF-Token": _csrf(web), "HX-Request": "true"},
    )
    assert answer.headers["HX-Trigger-After-Swap"] == "filter-changed"
    assert (
        "(person.title contains intern or person.title contains recruiter) and "
        "company.domain in (&#34;acme.com&#34;, &#34;Globex.io&#34;)"
    ) in answer.text  # the builder quotes the values it adds


def test_sign_out_ends_the_session(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    _sign_in(web, world, user)
    assert web.http.post("/logout", data={"csrf_token": _csrf(web)}).status_code == 303
    assert web.http.get("/").status_code == 303


def test_missing_rows_are_a_not_found_page(web: Web, member: tuple[World, str]) -> None:
    world, user = member
    _sign_in(web, world, user)
    answer = web.http.get("/people/999999999")
    assert answer.status_code == 404
    assert "no person with id 999999999" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_static_files_and_vendored_htmx_are_served(web: Web) -> None:
    htmx = web.http.get("/static/htmx.min.js")
    assert htmx.status_code == 200
    assert "javascript" in htmx.headers["content-type"]
    assert web.http.get("/static/app.css").status_code == 200


def test_R30_audience_switch_off_then_not_enrolled_tab_names_each_reason(
    web: Web, engine: Engine, committed: Callable[[], AbstractContextManager[World]], now: datetime
) -> None:
    user = f"ops-{uuid.uuid4().hex[:10]}@example.com"
    with committed() as world:
        world.person("ann@acme.com", company="acme.com", title="CTO")
        world.person("ian@acme.com", company="acme.com", title="Intern")
        world.person("gil@gmail.com", title="CTO")
        world.exclusion("Interns", "people", "person.title contains intern")
        world.exclusion("Personal", "people", "person.email_domain is personal")
        audience_id = world.audience("Everyone")
        sequence_id = world.sequence("Outbound", audience="Everyone")
        accounts.create_user(world.db, email=user, name="Ops", password=PASSWORD, now=now)
        accounts.set_member(world.db, workspace_id=world.ws, email=user, role="member")
    try:
        _sign_in(web, world, user)
        csrf = _csrf(web)
        page = web.http.get(f"/audiences/{audience_id}").text
        assert page.count(">Switch off</button>") == 2
        switched = web.http.post(
            f"/audiences/{audience_id}/switch",
            data={"csrf_token": csrf, "exclusion": "Personal", "to": "off"},
            follow_redirects=True,
        )
        assert "Personal switched off" in switched.text
        assert ">Switch on</button>" in switched.text
        done = web.http.post(
            f"/sequences/{sequence_id}/refresh", data={"csrf_token": csrf}, follow_redirects=True
        )
        assert "3 in the audience: 2 enrolled now, 1 left out." in done.text
        assert "ian@acme.com" in done.text
        assert "excluded by &#39;Interns&#39;" in done.text
        assert "gil@gmail.com" not in done.text  # its rule is switched off for this audience
        paused = web.http.post(
            f"/sequences/{sequence_id}/status",
            data={"csrf_token": csrf, "action": "pause"},
            follow_redirects=True,
        )
        assert "Outbound is paused. Nobody was unenrolled." in paused.text
    finally:
        with engine.begin() as db:
            db.execute(t.users.delete().where(t.users.c.email == user))


def test_sign_in_page_names_the_workspace_the_demo_built(
    web: Web, committed: Callable[[], AbstractContextManager[World]], engine: Engine
) -> None:
    with committed() as world:
        world.db.execute(
            t.workspaces.update()
            .where(t.workspaces.c.id == world.ws)
            .values(name=workspaces.DEMO_NAME)
        )
    page = web.http.get("/login").text
    notice = page[page.index('id="demo-workspace"') :]
    assert f"<b>{world.workspace.slug}</b>" in notice[: notice.index("</p>")]


def test_R22_mass_exclusion_confirmation_is_a_normal_answer(
    web: Web, member: tuple[World, str]
) -> None:
    world, user = member
    _sign_in(web, world, user)
    data = {"name": "Everyone at Acme", "level": "company", "enabled": "on"}
    answer = web.http.post(
        "/exclusions/new",
        data={**data, "filter": "company.domain in (acme.com)", "csrf_token": _csrf(web)},
    )
    assert answer.status_code == 200  # a question, not a refusal: no error in the console
    assert "Not saved yet: this is a mass exclusion" in answer.text
    assert "Save anyway" in answer.text


@pytest.mark.parametrize(
    ("filter", "words"),
    [
        ("person.shoe_size = 42", "the fields a filter can use are Email, Email domain"),
        ("person.titel contains vp", "did you mean Job title?"),
    ],
)
def test_R34_a_mistyped_field_is_answered_with_labels_not_field_paths(
    web: Web, member: tuple[World, str], filter: str, words: str
) -> None:
    world, user = member
    _sign_in(web, world, user)
    answer = web.http.post(
        "/exclusions/preview",
        data={"level": "people", "filter": filter},
        headers={"X-CSRF-Token": _csrf(web), "HX-Request": "true"},
    )
    assert answer.status_code == 200
    problem = _problem_text(answer.text)
    assert problem.startswith("Filter problem"), problem
    assert f"unknown field '{filter.split()[0]}'" in problem
    assert words in problem
    # No field's path in what the page says, quoted or not: only the typed name is.
    assert RAW_FIELD_PATH.findall(problem) == []
    assert admin_unfamiliar(problem) == []


def _problem_text(page: str) -> str:
    """The visible words of the preview's filter problem, tags removed."""
    start = page.index("Filter problem")
    end = page.find("</div>", start)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page[start:end])).split())
