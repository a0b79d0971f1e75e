"""What every page must hold: nothing wider than the window at a desktop and at a phone
width (a screenshot at the desktop width goes with it), no serious or critical
accessibility violation as axe-core reports them, no rule id or internal check name in
its text (nor a filter field's code name, a CLI command or a library's phrase), and
nothing in the console.

A test that shows a page calls `check_page(app, label)` (or `check_widths`, the same
checks under their older name) once the page is in the state worth checking, and
asserts the list from `console_errors(page)` is empty at its end."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import ConsoleMessage, Page

from optout.services.workspaces import DEMO_NAME
from tests.browser.conftest import App
from tests.user_text import admin_unfamiliar, internal_words

DESKTOP = (1366, 900)
PHONE = (390, 844)

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
# The impacts that fail a page; "minor" and "moderate" findings are not counted.
BLOCKING_IMPACTS = ("serious", "critical")
# The rule sets run: WCAG 2.1 A and AA, and axe's best practices (landmarks, headings).
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def accessibility_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now, one line
    each: the rule, its help text and the elements it found. axe is evaluated in the
    page by the browser's debugging protocol, so the page's content security policy
    is not loosened for it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    results: list[dict[str, Any]] = page.evaluate(
        """async (TAGS) => {
            const result = await window.axe.run(document, {
                resultTypes: ["violations"],
                runOnly: {type: "tag", values: TAGS},
            });
            return result.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        list(AXE_TAGS),
    )
    return [
        f"{found['id']} ({found['impact']}): {found['help']} -> {', '.join(found['targets'][:5])}"
        for found in results
        if found["impact"] in BLOCKING_IMPACTS
    ]


def check_accessibility(app: App, label: str) -> None:
    violations = accessibility_violations(app.page)
    assert not violations, f"{label}: accessibility violations:\n" + "\n".join(violations)


def check_words(app: App, label: str) -> None:
    """The page's text (and its tooltips) names no rule id and no internal check name,
    no filter field by its code name where its label belongs, no CLI command and no
    library's phrase (a text box's content, what the admin typed, is not read)."""
    text: str = app.page.evaluate(
        """() => document.body.innerText + "\\n" + Array.from(
            document.querySelectorAll("[title], [aria-label], [placeholder]"),
            (e) => [e.title, e.getAttribute("aria-label"), e.placeholder].join(" ")).join("\\n")"""
    )
    found = internal_words(text) + admin_unfamiliar(text, names=(DEMO_NAME,))
    assert not found, f"{label}: words meant for the code, not the user: {found}"


def check_page(app: App, label: str) -> None:
    """The page as it is now fits the window at 1366 px and at 390 px, and axe finds
    no serious or critical violation at either width; a screenshot of it at 1366 px
    is saved. The window is left at 1366 px."""
    page = app.page
    for width, height in (PHONE, DESKTOP):
        page.set_viewport_size({"width": width, "height": height})
        overflow = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert overflow[0] <= overflow[1], f"{label}: {overflow[0]} px wide at {width} px"
        check_accessibility(app, f"{label} at {width} px")
    check_words(app, label)
    app.shot(label)


check_widths = check_page


# A refused form (bad input, 422; a conflict such as a taken name, 409) and the page of
# something that does not exist (404) come back as the page itself with that status,
# and Chromium logs it; nothing else is let through (a fragment's or a file's status
# never). A question such as the mass-exclusion confirmation is a normal 200 answer.
_REFUSED_FORM = re.compile(
    r"^Failed to load resource: the server responded with a status of (404|409|422) "
)


def console_errors(page: Page) -> list[str]:
    """A list that collects every console error of the page from now on (a failed
    request, a script error, a refused resource); assert it is empty at the end. The
    one exception: the status of a page that is a refused form or a not-found page
    (never a fragment's)."""
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
