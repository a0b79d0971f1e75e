"""The fields a filter can name, as `optout exclusion fields` lists them: each by the label
the pages and messages use, beside how the filter text writes it, the levels of filter it
fits and what it takes."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from optout.filters import Level
from optout.filters.fields import FIELDS, Field
from optout.filters.validate import TYPE_WORDS

# How the filter text writes a custom field of each kind of record.
CUSTOM_FIELDS = (
    ("A person's own field", "person.fields.<name>", (Level.PEOPLE,)),
    ("A company's own field", "company.fields.<name>", (Level.COMPANY, Level.PEOPLE)),
    ("A company's opportunities' own field", "opportunity.fields.<name>", (Level.COMPANY,)),
    ("A person's opportunities' own field", "person.opportunity.fields.<name>", (Level.PEOPLE,)),
)


def fields_for(level: Level | None) -> list[Field]:
    """Every field of the registry, in its order; only those `level` accepts when given."""
    return [f for f in FIELDS.values() if level is None or level in f.relation.levels]


def _levels(levels: frozenset[Level] | tuple[Level, ...]) -> str:
    return " and ".join(lvl.value for lvl in sorted(levels))


def fields_json(level: Level | None) -> dict[str, Any]:
    return {
        "fields": [
            {
                "label": f.label,
                "written": f.name,
                "levels": sorted(lvl.value for lvl in f.relation.levels),
                "takes": TYPE_WORDS[f.type],
            }
            for f in fields_for(level)
        ],
        "custom_fields": [
            {"label": label, "written": written, "levels": sorted(lvl.value for lvl in levels)}
            for label, written, levels in CUSTOM_FIELDS
            if level is None or level in levels
        ],
    }


def fields_table(level: Level | None) -> Table:
    table = Table(title="Fields a filter can use", title_justify="left")
    table.add_column("field")
    table.add_column("written in a filter")
    table.add_column("filters")
    table.add_column("takes")
    for f in fields_for(level):
        table.add_row(f.label, f.name, _levels(f.relation.levels), TYPE_WORDS[f.type])
    for label, written, levels in CUSTOM_FIELDS:
        if level is None or level in levels:
            table.add_row(label, written, _levels(levels), "text")
    return table
