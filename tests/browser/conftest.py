"""Browser tests: the pages in Debian's Chromium driven by Playwright, the app under
uvicorn over a database of each kind, with committed data in a workspace of its own.

No Chromium (or no Playwright): the tests skip with the reason, except in CI
(CI=true), where that is a failure: a green CI must have driven a real browser.
Each test saves a screenshot of every page it looks at under
test-artifacts/screenshots/.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.services.access import accounts
from tests.factories import World
from tests.web.conftest import forget_sign_in_attempts, serving, shared_app

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEYS = ("browser-test-secret-key-0123456789",)
ENCRYPTION_KEYS = ("7Q7gXnd2mD8tq0l3Ji5yqSxRkz1u2wQx6yB8YbZ3d4E=",)  # a Fernet key, for tests
PASSWORD = "correct horse battery staple"
PAGE_TIMEOUT_MS = 30_000  # what a page action or an `expect` waits at most
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
# htmx's requests in flight, counted in every page a test's browser opens. The fragments a
# page asks for as it loads are asked for before its load event, and no fragment asks for
# another as it loads, so a page whose load is over and whose count is back at 0 shows all
# it will show (`App.settle`), without waiting out the half second of network quiet of
# Playwright's "networkidle".
COUNT_HTMX_REQUESTS = """
window.htmxInFlight = 0;
document.addEventListener("htmx:beforeSend", () => { window.htmxInFlight += 1; });
document.addEventListener("htmx:afterRequest", () => { window.htmxInFlight -= 1; });
"""
LOADED = "() => document.readyState === 'complete' && window.htmxInFlight === 0"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the browser tests: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    """Debian's Chromium (`apt-get install chromium`), launched once for the session."""
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    expect.set_options(timeout=PAGE_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        browser.close()


@dataclass
class App:
    """The served app, a signed-in-able user and a browser page, for one test."""

    base: str
    page: Page
    world_slug: str
    user: str
    prefix: str
    shots: list[Path] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def shot(self, label: str) -> Path:
        """Save a screenshot of the whole page as it is now."""
        name = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        path = SCREENSHOTS / f"{self.prefix}-{len(self.shots) + 1:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.shots.append(path)
        return path

    def settle(self) -> None:
        """Wait until the page's load is over and the fragments it asked for are in."""
        self.page.wait_for_function(LOADED)

    def visit(self, path: str, label: str) -> Page:
        self.page.goto(self.url(path))
        self.settle()
        self.shot(label)
        return self.page

    def sign_in(self) -> None:
        page = self.page
        page.goto(self.url("/login"))
        self.shot("sign in")
        page.fill("#workspace", self.world_slug)
        page.fill("#email", self.user)
        page.fill("#password", PASSWORD)
        # The answer is a page either way: where the sign-in leads, or the form again
        # with what went wrong.
        with page.expect_navigation():
            page.click("button[type=submit]")
        self.settle()


@pytest.fixture
def web_world(
    engine: Engine, now: datetime
) -> Iterator[Callable[[], AbstractContextManager[World]]]:
    """`web_world()` opens a World committed when the `with` block ends, with a member
    user; the workspace and the user are deleted after the test."""
    made: list[tuple[str, str]] = []

    @contextmanager
    def build() -> Iterator[World]:
        slug = f"browser-{uuid.uuid4().hex[:10]}"
        user = f"ops-{slug}@example.com"
        made.append((slug, user))
        with engine.begin() as db:
            world = World(db, now, slug=slug)
            accounts.create_user(db, email=user, name="Ops", password=PASSWORD, now=now)
            accounts.set_member(db, workspace_id=world.ws, email=user, role="member")
            yield world

    yield build
    with engine.begin() as db:
        db.execute(t.workspaces.delete().where(t.workspaces.c.slug.in_([s for s, _ in made])))
        db.execute(t.users.delete().where(t.users.c.email.in_([u for _, u in made])))


@pytest.fixture
def open_app(
    engine: Engine, chromium: Browser, request: pytest.FixtureRequest
) -> Iterator[Callable[[World], App]]:
    """`open_app(world)`: the app under uvicorn and a fresh browser page for the world."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    prefix = f"{engine.dialect.name}-{request.node.originalname}"
    # Only this test's own shots (`<prefix>-01-...`): a bare `<prefix>-*` would also take
    # those of a test whose name starts with this one's, maybe running on another worker.
    for old in SCREENSHOTS.glob(f"{prefix}-[0-9][0-9]-*.png"):
        old.unlink(missing_ok=True)
    # `@pytest.mark.parametrize("open_app", [False], indirect=True)`: no background job
    # runner in the app, so a test can drive a job's steps itself.
    runs_jobs = bool(getattr(request, "param", True))
    settings = Settings(
        database_url="unused://",
        secret_keys=KEYS,
        encryption_keys=ENCRYPTION_KEYS,
        web_runs_jobs=runs_jobs,
    )
    with serving(shared_app(settings, engine)) as base:
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        # Generous: with the suite on every core, a page can wait behind other tests'
        # work; a wait only lasts this long when the page is wrong.
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        context.add_init_script(COUNT_HTMX_REQUESTS)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text) if "Content Security Policy" in message.text else None
            ),
        )

        def make(world: World) -> App:
            user = f"ops-{world.workspace.slug}@example.com"
            return App(base, page, world.workspace.slug, user, prefix)

        try:
            yield make
        finally:
            context.close()
            forget_sign_in_attempts(engine)
        assert not errors, f"script errors or CSP violations in the page: {errors}"
