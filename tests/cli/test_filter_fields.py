"""`optout exclusion fields`: every field a filter can use, by the label the pages and the
messages use, beside how the filter text writes it (R19, R34)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from optout.cli import app
from optout.errors import InvalidFilter
from optout.filters import Level, parse
from optout.filters.fields import FIELDS, lookup
from optout.filters.validate import validate


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, ["exclusion", "fields", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_R19_fields_lists_every_field_by_label_beside_how_a_filter_writes_it() -> None:
    listed = json.loads(_run("--json"))
    assert [(f["label"], f["written"]) for f in listed["fields"]] == [
        (f.label, f.name) for f in FIELDS.values()
    ]
    custom = [(c["written"], c["levels"]) for c in listed["custom_fields"]]
    assert len(custom) == 4
    for row in [*listed["fields"], *listed["custom_fields"]]:
        written = row["written"].replace("<name>", "tier")
        for level in Level:
            condition = parse(f"{written} is empty")
            if level.value in row["levels"]:
                validate(condition, level)
            else:
                with pytest.raises(InvalidFilter, match="cannot be used in a"):
                    validate(condition, level)
        assert sorted(lvl.value for lvl in lookup(written).relation.levels) == row["levels"]


def test_R34_a_label_a_message_suggests_is_found_in_the_list_with_its_spelling() -> None:
    with pytest.raises(InvalidFilter) as caught:
        validate(parse("person.titel contains vp"), Level.PEOPLE)
    assert caught.value.reason == "unknown field 'person.titel'; did you mean Job title?"
    lines = _run().splitlines()
    assert any("Job title" in line and "person.title" in line for line in lines)


def test_R19_fields_of_one_level_leave_out_the_others() -> None:
    company = json.loads(_run("--level", "company", "--json"))
    written = {f["written"] for f in company["fields"]}
    assert "company.domain" in written
    assert "opportunity.stage" in written
    assert not {w for w in written if w.startswith("person.")}
    assert "person.fields.<name>" not in {c["written"] for c in company["custom_fields"]}
