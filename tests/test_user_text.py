"""The words a user reads through the API: its OpenAPI description (summaries, field
descriptions) names no rule id of the specification (R1..R35); every error message the
code raises names neither a rule id nor an internal check name. (The API's own values,
such as a check called `company_cap` in an explanation or the status `opted_out`, are
its vocabulary and may be described.) Pages are scanned by the browser
tests' page checks, the CLI help by tests/cli/test_every_command.py, the demo tour by
tests/cli/test_demo.py."""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.config import Settings
from optout.crm import connections
from optout.crm.mapping import FieldMapping
from optout.db import tables as t
from optout.demo.build import DEMO_NAME, build, wipe
from optout.mail.tokens import UnsubscribeTokens
from optout.services.access import accounts
from optout.web.app import create_app
from optout.web.pages.render import with_query
from optout.web.pages.route import PageRoute
from tests.user_text import RULE_ID, admin_unfamiliar, code_words, internal_words
from tests.web.conftest import KEYS, Web, csrf_token_in, forget_sign_in_attempts, serving

PASSWORD = "correct horse battery staple"

SOURCE = Path(__file__).resolve().parents[1] / "src" / "optout"


def _texts(schema: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every description, summary and title in the OpenAPI document, with its place."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            place = f"{where}/{key}"
            if key in ("description", "summary", "title") and isinstance(value, str):
                yield place, value
            else:
                yield from _texts(value, place)
    elif isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from _texts(item, f"{where}/{i}")


def test_openapi_description_speaks_the_users_language() -> None:
    app = create_app(
        Settings(database_url="unused://", secret_keys=("k" * 32,)), sa.create_engine("sqlite://")
    )
    texts = list(_texts(app.openapi()))
    assert len(texts) > 100  # the walk reached the paths and the schemas
    found = [(place, text) for place, text in texts if RULE_ID.search(text)]
    assert not found, found


def _raised_texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """The literal text of every `raise SomeError(...)`: its string constants and the
    constant parts of its f-strings."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Raise) or not isinstance(node.exc, ast.Call):
            continue
        for arg in [*node.exc.args, *(k.value for k in node.exc.keywords)]:
            for part in ast.walk(arg):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    yield node.lineno, part.value


def test_no_error_message_names_a_rule_id_or_an_internal_check() -> None:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 50
    found = [
        f"{path.relative_to(SOURCE)}:{line}: {words}"
        for path in files
        for line, text in _raised_texts(ast.parse(path.read_text(encoding="utf-8")))
        if (words := internal_words(text))
    ]
    assert not found, "\n".join(found)


def test_the_scan_finds_field_paths_commands_and_leaked_phrases_not_addresses() -> None:
    assert admin_unfamiliar("Filter: person.last_activity_any_at within last 30 days")
    assert admin_unfamiliar("company.fields.tier = gold")
    assert admin_unfamiliar("resume it with optout mailbox resume")
    assert admin_unfamiliar("not a domain: 'acme' (Empty Label)")
    assert admin_unfamiliar("in 'company.domain in'[0]: bad")
    assert admin_unfamiliar("saving a exclusion")
    assert admin_unfamiliar("byte 98: invalid start byte")
    assert admin_unfamiliar("hs_email_optout now feeds email_opt_out (read_write)")
    assert admin_unfamiliar("by root@cli")
    fine = "ann@company.com at company.com: Hi {{ person.first_name }}, an exclusion, a user"
    assert admin_unfamiliar(fine) == []
    assert admin_unfamiliar("optout demo at a glance", names=("optout demo",)) == []
    # A message quoting what the admin typed may show the field as they wrote it.
    assert admin_unfamiliar("expected a value after 'person.email =', found '='") == []
    assert code_words("matches an exclusion with exclude_from_sequences on")
    assert code_words("opted out via unsubscribe_link")
    assert code_words("first_last@acme.com at my_company.io, {{ person.first_name }}") == []


def test_the_scan_finds_rule_ids_in_prose_and_not_inside_signed_tokens() -> None:
    assert internal_words("as the rule R13 says")
    assert internal_words("(R2).")
    assert internal_words("status opt_out here")
    token = "/u/DL4ju-UaPQt07dtnOgoCigLFP9e4S-R2-w7FRWM1BGDiV_opt_out-x"
    assert internal_words(token) == []


# The every-page walk ---------------------------------------------------------------------

# Where a page's path parameter takes its values from in the demo workspace.
_ROWS = {
    "exclusion_id": t.exclusions,
    "audience_id": t.audiences,
    "sequence_id": t.sequences,
    "persona_id": t.personas,
    "ruleset_id": t.rulesets,
    "person_id": t.people,
    "company_id": t.companies,
    "job_id": t.jobs,
    "mailbox_id": t.mailboxes,
}
_EACH = 3  # objects of each kind walked (and people one per kind of event)
# Pages whose path names something only a form post makes (an upload's token), and files.
_NOT_WALKED = re.compile(r"^/imports/\{token\}|\.csv$")


class _VisibleText(HTMLParser):
    """The text a browser shows of an HTML page or fragment, and its tooltips, labels
    and placeholders: no script, style or template, nothing marked hidden, and no text
    box's content (a filter box holds the filter as the admin typed it)."""

    SKIP = frozenset({"script", "style", "template", "textarea", "head"})
    VOID = frozenset({"br", "img", "input", "meta", "link", "hr", "col", "source", "wbr"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.prose: list[str] = []  # the parts outside `<code>`
        self.hidden: list[str] = []  # the open elements that hide what they hold
        self.code = 0  # how many `<code>` elements are open

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if not self.hidden:
            for name in ("title", "aria-label", "placeholder", "alt"):
                if given.get(name):
                    self.parts.append(str(given[name]))
            if tag == "input" and given.get("type") in ("submit", "button"):
                self.parts.append(str(given.get("value") or ""))
        self.code += tag == "code"
        if tag in self.VOID:
            return
        if self.hidden or tag in self.SKIP or "hidden" in given:
            self.hidden.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.code -= tag == "code" and self.code > 0
        if self.hidden and self.hidden[-1] == tag:
            self.hidden.pop()

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)
            if not self.code:
                self.prose.append(data)

    @classmethod
    def of(cls, html: str) -> tuple[str, str]:
        """The page's text, and its text outside `<code>`."""
        parser = cls()
        parser.feed(html)
        return " ".join(" ".join(parser.parts).split()), " ".join(" ".join(parser.prose).split())


def _page_routes(app: FastAPI) -> list[str]:
    """The path of every page the app serves a signed-in user (GET, not the JSON API)."""
    paths = []
    for route in app.routes:
        contexts = getattr(route, "effective_route_contexts", None)
        for context in contexts() if contexts else ():
            if isinstance(context.original_route, PageRoute) and "GET" in context.methods:
                paths.append(context.path)
    return paths


def _demo_values(db: sa.Connection, ws: int) -> dict[str, list[str]]:
    """The values each path parameter takes in the demo workspace: a few of each kind of
    object, and for people one of each kind of thing that happened to someone (an
    opt-out, a refusal, a reply...), so each way a person's page reads is walked."""
    values = {
        name: [
            str(i)
            for i in db.scalars(
                sa.select(table.c.id)
                .where(table.c.workspace_id == ws)
                .order_by(table.c.id)
                .limit(_EACH)
            )
        ]
        for name, table in _ROWS.items()
    }
    e = t.events
    one_per_kind = (
        sa.select(sa.func.min(e.c.person_id))
        .where(e.c.workspace_id == ws, e.c.person_id.is_not(None))
        .group_by(e.c.kind)
    )
    values["person_id"] += [str(i) for i in sorted(set(db.scalars(one_per_kind)))]
    values["kind"] = sorted(connections.KINDS)
    values["email"] = list(
        db.scalars(sa.select(t.people.c.email).where(t.people.c.workspace_id == ws).limit(2))
    )
    return values


def _urls(route: str, values: dict[str, list[str]]) -> list[str]:
    """`route` with each of its path parameters set to every value the demo has for it."""
    names = re.findall(r"\{(\w+)\}", route)
    assert all(name in values for name in names), f"{route}: no demo value for {names}"
    urls = [route]
    for name in names:
        urls = [
            url.replace(f"{{{name}}}", quote(v, safe="@")) for url in urls for v in values[name]
        ]
    return urls


def _route(url: str) -> str:
    """The route a URL is a page of: `/people/12/explain` and `/people/34/explain` are one."""
    return re.sub(r"/\d+(?=/|$|\?)", "/{id}", url.split("?", 1)[0])


def _links(html: str) -> list[str]:
    """The same-site pages a page links to (downloads and the public pages left out)."""
    hrefs = re.findall(r'<a [^>]*href="(/[^"]*)"', html)
    return [h.replace("&amp;", "&") for h in hrefs if not re.match(r"/(static|u|api)/|.*\.csv", h)]


def _kind_of(url: str) -> str:
    """A page and the names of its query: `/people?sort=name&after=x` is walked once for
    every `/people?sort=...&after=...`, whatever the values."""
    path, _, query = url.partition("?")
    names = sorted(part.split("=", 1)[0] for part in query.split("&") if part)
    return f"{_route(path)}?{'&'.join(names)}"


def _fragments(html: str) -> list[str]:
    """The fragments a page loads into itself (htmx `hx-get`), with the query its form
    would send: the explain panel of a person for each sequence, a job's progress."""
    found = []
    for match in re.finditer(r'<form[^>]*hx-get="([^"]+)"[^>]*>(.*?)</form>', html, re.DOTALL):
        target, form = match.groups()
        selects = re.findall(r'<select[^>]*name="(\w+)"[^>]*>(.*?)</select>', form, re.DOTALL)
        options = [(n, re.findall(r'<option value="([^"]*)"', body)) for n, body in selects]
        first = {name: choices[0] for name, choices in options if choices}
        for name, choices in options[:1]:
            for choice in choices:
                found.append(with_query(target, **{**first, name: choice}))
    found += re.findall(r'<section[^>]*hx-get="([^"]+)"', html)
    return found


@dataclass(frozen=True)
class DemoWeb:
    web: Web
    app: FastAPI
    workspace_id: int


@pytest.fixture
def demo_web(engine: Engine) -> Iterator[DemoWeb]:
    """The demo workspace, with a HubSpot connection that writes opt-outs back, and its
    admin signed in to the app."""
    slug = f"words-{uuid.uuid4().hex[:8]}"
    user = f"ops-{slug}@example.com"
    with engine.begin() as db:
        story = build(db, slug=slug, now=utcnow(), seed=7, actor="demo@optout")
        accounts.create_user(db, email=user, name="Ops", password=PASSWORD, now=utcnow())
        accounts.set_member(db, workspace_id=story.workspace_id, email=user, role="admin")
        hubspot = connections.connect(
            db,
            workspace_id=story.workspace_id,
            kind="hubspot",
            base_url="https://api.hubapi.com",
            now=utcnow(),
        )
        opt_out = FieldMapping("contacts", "hs_email_optout", "email_opt_out", "read_write")
        connections.set_mapping(db, connection=hubspot, field_mapping=opt_out, now=utcnow())
    app = create_app(Settings(database_url="unused://", secret_keys=KEYS), engine)
    try:
        with (
            serving(app) as base,
            httpx.Client(base_url=base, follow_redirects=False, timeout=60) as http,
        ):
            form = http.get("/login").text
            signed = http.post(
                "/login",
                data={
                    "workspace": slug,
                    "email": user,
                    "password": PASSWORD,
                    "csrf_token": csrf_token_in(form),
                },
            )
            assert signed.status_code == 303, signed.text
            yield DemoWeb(Web(engine, UnsubscribeTokens(KEYS), http), app, story.workspace_id)
    finally:
        forget_sign_in_attempts(engine)
        with engine.begin() as db:
            wipe(db, slug=slug)
            db.execute(t.users.delete().where(t.users.c.email == user))


def test_R34_no_page_of_the_demo_shows_a_field_path_or_words_meant_for_the_code(
    demo_web: DemoWeb,
) -> None:
    """Every page the app serves, at several objects of each kind of the demo workspace,
    the fragments those pages load and the pages they link to: labels instead of field
    paths, no CLI command, no library phrase."""
    http = demo_web.web.http
    routes = _page_routes(demo_web.app)
    assert len(routes) > 40  # the walk found the app's pages
    with demo_web.web.engine.connect() as db:
        values = _demo_values(db, demo_web.workspace_id)
    queue = [
        url for route in routes if not _NOT_WALKED.search(route) for url in _urls(route, values)
    ]
    seen: set[str] = set()
    kinds: set[str] = set()  # of the pages reached by a link
    found: dict[str, dict[str, list[str]]] = {}  # route: url: words
    statuses: dict[str, int] = {}
    while queue:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        answer = http.get(url)
        statuses[url] = answer.status_code
        if answer.status_code != 200 or "html" not in answer.headers.get("content-type", ""):
            continue
        text, prose = _VisibleText.of(answer.text)
        words = admin_unfamiliar(text, names=(DEMO_NAME,)) + code_words(prose)
        if words:
            found.setdefault(_route(url), {}).setdefault(url, words)
        queue.extend(_fragments(answer.text))
        for link in _links(answer.text):
            if _kind_of(link) not in kinds:
                kinds.add(_kind_of(link))
                queue.append(link)
    pages = [url for url, status in statuses.items() if status == 200]
    failed = {url: status for url, status in statuses.items() if status >= 500}
    assert not failed, failed
    assert len(pages) > 80, statuses  # every kind of page at several objects, not three pages
    assert any("/explain?" in url for url in pages)  # and the fragments they load
    shown = [f"{url}: {words}" for urls in found.values() for url, words in list(urls.items())[:2]]
    assert not found, "\n".join(shown)
