"""CSV import in a browser: upload, map columns, apply; a file with bad rows imports
nothing and offers its error report for download (R23)."""

from __future__ import annotations

import csv
from collections.abc import Callable
from contextlib import AbstractContextManager

import sqlalchemy as sa
from playwright.sync_api import expect
from sqlalchemy.engine import Engine

from optout.db import tables as t
from tests.browser.conftest import App
from tests.factories import World

BAD_CSV = """Email,First name,Company domain,Lead source
ann@acme.com,Ann,acme.com,webinar
not-an-email,Bob,acme.com,webinar
cy@globex.com,Cy,http://,event
dee@globex.com,Dee,globex.com,event
"""
GOOD_CSV = """Email,First name,Company domain,Lead source
ann@acme.com,Ann,acme.com,webinar
dee@globex.com,Dee,globex.com,event
"""


def _people(engine: Engine, world: World) -> list[str]:
    p = t.people
    with engine.connect() as db:
        return sorted(db.scalars(sa.select(p.c.email).where(p.c.workspace_id == world.ws)))


def _upload(app: App, name: str, text: str) -> None:
    page = app.page
    app.visit("/imports", "imports")
    page.set_input_files(
        "#file", files=[{"name": name, "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.check("input[name=kind][value=people]")
    page.click("button:has-text('Upload and map columns')")
    expect(page.locator("h1")).to_contain_text(f"Map the columns of {name}")


def test_R23_csv_with_bad_rows_imports_nothing_and_offers_the_error_report(
    web_world: Callable[[], AbstractContextManager[World]],
    open_app: Callable[[World], App],
    engine: Engine,
) -> None:
    with web_world() as world:
        pass
    app = open_app(world)
    page = app.page
    app.sign_in()

    _upload(app, "leads.csv", BAD_CSV)
    # Columns are guessed from the header; a custom field is one choice away.
    expect(page.locator("select[name=map_0]")).to_have_value("email")
    expect(page.locator("select[name=map_1]")).to_have_value("first_name")
    expect(page.locator("select[name=map_2]")).to_have_value("company_domain")
    page.select_option("select[name=map_3]", "custom")
    app.shot("mapping")
    page.click("button:has-text('Import 4 row(s)')")
    # The import runs as a background job; its page shows the result when it is done.
    expect(page.locator("h1")).to_contain_text("Import of leads.csv")
    expect(page.locator("#job-state")).to_have_text("Done")
    expect(page.locator("#job-summary")).to_contain_text("2 row problem(s): nothing was imported")
    table = page.locator("tbody")
    expect(table.locator("tr")).to_have_count(2)
    expect(table.locator("tr").first).to_contain_text("not-an-email")
    expect(table.locator("tr").nth(1)).to_contain_text("http://")
    app.shot("errors")
    assert _people(engine, world) == [], "nothing half-imported"

    with page.expect_download() as download:
        page.click("text=Download the error report (CSV)")
    report = download.value
    assert report.suggested_filename == "leads.errors.csv"
    with open(report.path(), encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["row", "column", "value", "reason"]
    assert [(r[0], r[1], r[2]) for r in rows[1:]] == [
        ("3", "Email", "not-an-email"),
        ("4", "Company domain", "http://"),
    ]

    _upload(app, "leads-fixed.csv", GOOD_CSV)
    page.select_option("select[name=map_3]", "custom")
    page.click("button:has-text('Import 2 row(s)')")
    expect(page.locator("h1")).to_contain_text("Import of leads-fixed.csv")
    expect(page.locator("#job-bar")).to_have_attribute("value", "100")
    expect(page.locator("#job-summary")).to_contain_text("Imported: 2 row(s) read, 2 created")
    app.shot("imported")
    assert _people(engine, world) == ["ann@acme.com", "dee@globex.com"]
    recent = app.visit("/imports", "recent imports")
    expect(recent.locator("tbody tr").first).to_contain_text("leads-fixed.csv")
