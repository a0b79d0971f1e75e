"""What every page must hold: nothing wider than the window at a desktop and at a phone
width (a screenshot at the desktop width goes with it), and nothing in the console."""

from __future__ import annotations

import re

from playwright.sync_api import ConsoleMessage, Page

from tests.browser.conftest import App

DESKTOP = (1366, 900)
PHONE = (390, 844)


def check_widths(app: App, label: str) -> None:
    """The page as it is now fits the window at 1366 px and at 390 px; a screenshot of it
    at 1366 px is saved. The window is left at 1366 px."""
    page = app.page
    for width, height in (PHONE, DESKTOP):
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1], f"{label}: {overflow[0]} px wide at {width} px"
    app.shot(label)


# A refused form comes back as the page itself with 409 or 422 (as the exclusion form
# does), and Chromium logs that status; nothing else is let through.
_REFUSED_FORM = re.compile(
    r"^Failed to load resource: the server responded with a status of (409|422) "
)


def console_errors(page: Page) -> list[str]:
    """A list that collects every console error of the page from now on (a failed
    request, a script error, a refused resource); assert it is empty at the end. The
    one exception: the status of a page that is a refused form (never a fragment's)."""
    errors: list[str] = []

    def keep(message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        resource = message.location.get("url", "")
        if _REFUSED_FORM.match(message.text) and resource == page.url:
            return
        errors.append(f"{message.text} ({resource or page.url})")

    page.on("console", keep)
    page.on("pageerror", lambda error: errors.append(str(error)))
    return errors
