"""Every page of the app through `page_checks`: fits the window at 1366 px and at 390 px,
no serious or critical accessibility violation, nothing in the console.

The signed-in pages are found by following the links the app itself shows, starting at
the dashboard, one page per route (`/people/12` and `/people/34` are one route), so a
page added later is checked as soon as something links to it. The pages no link reaches
(sign-in, an error, the public unsubscribe pages, the steps of an import, a save that
asks for confirmation) are visited explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager
from urllib.parse import urlsplit

from playwright.sync_api import expect

from optout.mail.tokens import UnsubscribeTokens
from optout.services.access import accounts
from optout.services.sequences.definitions import Step
from optout.services.suppression import optouts
from tests.browser.conftest import KEYS, App
from tests.browser.page_checks import DESKTOP, check_page, console_errors
from tests.factories import World

STEPS = (
    Step("wait", wait_seconds=86400),
    Step("email", subject="Hello {{ person.first_name }}", body_text="A first note."),
    Step("email", subject="Following up", body_text="A second note."),
)
CSV = "Email,First name,Company domain\nzoe@initech.com,Zoe,initech.com\nnot-an-email,Bob,x.com\n"

# The routes a signed-in user reaches by links today; the crawl must find each of them
# (it may find more: pages added later are checked too).
EXPECTED_ROUTES = {
    "/",
    "/exclusions",
    "/exclusions/new",
    "/exclusions/{id}",
    "/audiences",
    "/audiences/new",
    "/audiences/{id}",
    "/audiences/{id}/edit",
    "/personas",
    "/personas/new",
    "/personas/{id}",
    "/rulesets",
    "/rulesets/new",
    "/rulesets/{id}",
    "/sequences",
    "/sequences/new",
    "/sequences/{id}",
    "/sequences/{id}/edit",
    "/sequences/{id}/enroll",
    "/sequences/{id}/enrollments",
    "/sequences/{id}/not-enrolled",
    "/people",
    "/people/{id}",
    "/imports",
    "/companies",
    "/companies/{id}",
    "/exclusions/{id}/matches",
    "/exclusions/{id}/history",
    "/crm",
    "/crm/hubspot",
    "/jobs",
    "/review",
    "/in-doubt",
}
# Links that are downloads or leave the pages, not pages to check.
NOT_PAGES = re.compile(r"^/(static/|u/)|\.csv$|^/openapi\.json$|^/docs")


def _user(world: World) -> str:
    return f"ops-{world.workspace.slug}@example.com"  # the user `web_world` made


def _route(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


def _links(app: App) -> list[str]:
    """The same-site paths (with their query) the page links to."""
    hrefs: list[str] = app.page.eval_on_selector_all(
        "a[href]", "links => links.map(a => a.getAttribute('href'))"
    )
    found = []
    for href in hrefs:
        parts = urlsplit(href)
        if parts.scheme or parts.netloc or not parts.path.startswith("/"):
            continue
        if NOT_PAGES.search(parts.path):
            continue
        found.append(parts.path + (f"?{parts.query}" if parts.query else ""))
    return found


def _crawl(app: App, start: str) -> set[str]:
    """Visit and check one page of every route reachable by links from `start`."""
    seen: set[str] = set()
    queue = [start]
    while queue:
        path = queue.pop(0)
        route = _route(urlsplit(path).path)
        if route in seen:
            continue
        seen.add(route)
        answer = app.page.goto(app.url(path))
        assert answer is not None, path
        assert answer.status == 200, f"{path}: {answer.status}"
        app.settle()
        check_page(app, f"page {route}")
        queue.extend(_links(app))
    return seen


def test_every_page_fits_the_window_passes_axe_and_logs_nothing(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
) -> None:
    with web_world() as world:
        world.company("acme.com", "Acme")
        world.company("globex.com", "Globex")
        world.opportunity("globex.com", name="Renewal", stage="negotiation", amount=12000)
        ann = world.person("ann@acme.com", company="acme.com", first_name="Ann", title="CTO")
        ben = world.person("ben@globex.com", company="globex.com", first_name="Ben")
        cat = world.person("cat@initech.com", company="initech.com", first_name="Cat")
        world.person("dan@gmail.com", first_name="Dan", title="Recruiter")
        # Long addresses, titles and domains, for the preview's sample table.
        for n in range(3):
            world.person(
                f"maximiliana.vanderbergh-oyelaran-{n}@research-and-development.example-holdings.com",
                company="research-and-development.example-holdings.com",
                first_name="Maximiliana",
                title="Senior Principal Director of Revenue Operations and Strategic Planning",
            )
        world.exclusion("Customers", "company", "company.domain in (globex.com)")
        world.exclusion(
            "Personal addresses", "people", "person.email_domain is personal", enabled=False
        )
        world.persona("Technical", include=["cto", "engineer"], exclude=["intern"])
        audience = world.audience("Tech buyers", persona="Technical")
        world.ruleset("Careful", reenroll_cooldown_days=30, max_active_per_company=2)
        sequence_id = world.sequence("Outbound", steps=STEPS, audience="Tech buyers")
        world.sequence("Webinar", ruleset="Careful")
        world.enroll(sequence_id, [ann, cat], audience_id=audience)
        optouts.opt_out(
            world.db,
            workspace_id=world.ws,
            email="cat@initech.com",
            actor="test@optout",
            channel="manual",
            reason="asked by phone",
            now=world.now,
        )
        # An admin sees every page, the ruleset forms included.
        accounts.set_member(world.db, workspace_id=world.ws, email=_user(world), role="admin")
        token = UnsubscribeTokens(KEYS).issue(
            workspace_id=world.ws, person_id=ben, email="ben@globex.com"
        )
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})

    page.goto(app.url("/login"))
    check_page(app, "sign in")
    app.sign_in()

    routes = _crawl(app, "/")
    assert routes >= EXPECTED_ROUTES, f"never reached: {sorted(EXPECTED_ROUTES - routes)}"

    # Pages no link leads to.
    page.goto(app.url("/people/999999999"))
    expect(page.locator("h1")).to_be_visible()
    check_page(app, "page of something that does not exist")

    # A save that would exclude most people asks first: a normal page, not a refusal.
    page.goto(app.url("/exclusions/new"))
    page.fill("#name", "Everyone")
    page.check("input[name=level][value=people]")
    page.fill("#filter", 'person.email contains "@"')
    page.click("text=Create exclusion")
    expect(page.locator("#confirmation")).to_contain_text("Not saved yet")
    check_page(app, "mass exclusion confirmation")

    # The live preview of a new exclusion with a sample of long addresses fits too.
    page.goto(app.url("/exclusions/new"))
    page.fill("#name", "Research holdings")
    page.fill("#filter", "company.domain in (research-and-development.example-holdings.com)")
    expect(page.locator("#preview-sample tbody tr")).to_have_count(3)
    check_page(app, "exclusion preview with a long sample")

    # The steps of an import: mapping, then the report of rows that cannot be used.
    page.goto(app.url("/imports"))
    page.set_input_files(
        "#file", files=[{"name": "leads.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.check("input[name=kind][value=people]")
    page.click("button:has-text('Upload and map columns')")
    expect(page.locator("h1")).to_contain_text("Map the columns of leads.csv")
    check_page(app, "import mapping")
    page.click("button[type=submit]:has-text('Import')")
    # The result page polls its job every second until the summary shows; a poll still
    # running when the cookies are cleared below would send the tab to sign in,
    # aborting the next page load. Wait for the end, as a user would.
    expect(page.locator("#job-summary")).to_be_visible()
    check_page(app, "import result")

    # The public unsubscribe pages, signed out.
    page.context.clear_cookies()
    page.goto(app.url(f"/u/{token}"))
    check_page(app, "unsubscribe confirm")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_be_visible()
    check_page(app, "unsubscribed")

    assert not errors, errors
