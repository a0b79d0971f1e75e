"""The CRM page against a HubSpot address that takes the connection and never answers, in
the browser: the Test button says it is waiting and cannot be clicked twice, the answer
comes after one read timeout in plain words, and the badge says "last test failed"; Sync
now runs in the background with its progress, and the badge says "last sync failed" with
why; a connection never shows "connected" without a token (R32, R34)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest
from playwright.sync_api import expect

from optout.services.access import accounts
from tests.browser.conftest import App
from tests.browser.page_checks import DESKTOP, check_widths, console_errors
from tests.factories import World

TOKEN = "pat-na1-status-token"
READ_TIMEOUT = 2  # seconds: the setting the page's calls are made with here


@pytest.fixture(autouse=True)
def _quick_crm_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """The never-answering CRM listens on loopback, which the outbound guard refuses
    unless named; and its calls time out after a short read timeout."""
    monkeypatch.setenv("OPTOUT_CRM_ALLOWED_HOSTS", "127.0.0.1")
    monkeypatch.setenv("OPTOUT_CRM_READ_TIMEOUT", str(READ_TIMEOUT))


@pytest.fixture
def silent_crm() -> Iterator[str]:
    """A server that takes every connection and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    taken: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                taken.append(sock.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
        for connection in taken:
            connection.close()


def test_R34_a_crm_that_never_answers_is_told_in_plain_words_and_the_badge_follows(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    silent_crm: str,
) -> None:
    with web_world() as world:
        admin = f"ops-{world.workspace.slug}@example.com"
        accounts.set_member(world.db, workspace_id=world.ws, email=admin, role="admin")
    app = open_app(world)
    page = app.page
    errors = console_errors(page)
    page.set_viewport_size({"width": DESKTOP[0], "height": DESKTOP[1]})
    app.sign_in()

    # No token: refused, and never called connected.
    app.visit("/crm/hubspot", "connect hubspot")
    page.fill("#base_url", silent_crm)
    page.click("#save-connection")
    expect(page.locator("#connection-error")).to_contain_text(
        "HubSpot cannot be connected without its access token"
    )
    expect(page.locator("#connection-state")).to_have_count(0)

    page.fill("#token", TOKEN)
    page.click("#save-connection")
    expect(page.locator(".notice.ok")).to_contain_text("HubSpot connection saved.")
    expect(page.locator("#connection-badge")).to_have_text("never tested")

    # The test: the button waits, disabled, then the answer in words and the badge.
    page.click("#test-connection")
    expect(page.locator("#test-connection")).to_be_disabled()
    expect(page.locator("#test-working")).to_be_visible()
    expect(page.locator("#test-answer")).to_contain_text(
        f"HubSpot did not answer within {READ_TIMEOUT} seconds ({silent_crm})",
        timeout=READ_TIMEOUT * 1000 + 15_000,
    )
    assert "Errno" not in page.locator("#test-answer").inner_text()
    expect(page.locator("#test-connection")).to_be_enabled()
    expect(page.locator("#connection-badge")).to_have_text("last test failed")
    expect(page.locator("#connection-detail")).to_contain_text("did not answer within")
    check_widths(app, "hubspot test failed")

    # Sync now: in the background, with its progress; then the failure and why.
    page.click("#sync-now")
    expect(page.locator("#sync-job")).to_be_visible()
    expect(page.locator("#sync-outcome")).to_contain_text(
        f"The sync did not finish. The sync failed: HubSpot did not answer within "
        f"{READ_TIMEOUT} seconds",
        timeout=2 * READ_TIMEOUT * 1000 + 30_000,
    )
    expect(page.locator("#connection-badge")).to_have_text("last sync failed")
    expect(page.locator("#connection-detail")).to_contain_text(
        f"HubSpot did not answer within {READ_TIMEOUT} seconds"
    )
    expect(page.locator("#last-sync")).to_contain_text("failed")
    expect(page.locator("#sync-now")).to_be_enabled()
    check_widths(app, "hubspot sync failed")

    app.visit("/crm", "crm list after a failed sync")
    row = page.locator("#crm-connections tr").filter(has_text="HubSpot")
    expect(row).to_contain_text("last sync failed")
    expect(row).not_to_contain_text("connected")
    assert not errors, errors
