"""What every page must hold at a desktop and at a phone width: nothing wider than the
window. A screenshot at the desktop width goes with it."""

from __future__ import annotations

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
