"""What a filter can see of a few people or companies, loaded in a fixed number of queries:
the Python side of the filters (`optout.filters.holds` / `evaluate`) reads these, so
explain, the send-time gate and the decision index's small re-matches see the same rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.filters import Subject
from optout.filters.sqlfunc import in_list

Row = dict[str, Any]


@dataclass
class Loaded:
    """People with their companies, every company of their linked groups, and deals."""

    people: dict[int, Row] = field(default_factory=dict)
    companies: dict[int, Row] = field(default_factory=dict)
    groups: dict[int, list[Row]] = field(default_factory=lambda: defaultdict(list))
    company_deals: dict[int, list[Row]] = field(default_factory=lambda: defaultdict(list))
    person_deals: dict[int, list[Row]] = field(default_factory=lambda: defaultdict(list))

    def person(self, person_id: int) -> Subject:
        person = self.people[person_id]
        return Subject(
            person=person,
            company=self.companies.get(person["company_id"]),
            opportunities=self.company_deals.get(person["company_id"], []),
            person_opportunities=self.person_deals.get(person_id, []),
        )

    def group(self, group_id: int | None) -> list[Subject]:
        """Every company of the group, as a company-level filter sees it."""
        if group_id is None:
            return []
        return [
            Subject(company=member, opportunities=self.company_deals.get(member["id"], []))
            for member in self.groups.get(group_id, [])
        ]


def load(
    db: Connection,
    *,
    workspace_id: int,
    person_ids: Sequence[int] = (),
    group_ids: Sequence[int] = (),
) -> Loaded:
    """The people of `person_ids` and the companies of `group_ids` and of those people's
    groups, with their deals; `person.has_opportunity` filled in as the SQL form reads it."""
    p, c, o, oc = t.people, t.companies, t.opportunities, t.opportunity_contacts
    out = Loaded()
    if person_ids:
        for r in db.execute(
            sa.select(p).where(p.c.workspace_id == workspace_id, in_list(p.c.id, list(person_ids)))
        ).mappings():
            out.people[r["id"]] = dict(r)
    company_ids = {r["company_id"] for r in out.people.values() if r["company_id"] is not None}
    wanted: list[sa.ColumnElement[bool]] = []
    if company_ids:
        wanted.append(c.c.id.in_(company_ids))
        wanted.append(c.c.group_id.in_(sa.select(c.c.group_id).where(c.c.id.in_(company_ids))))
    if group_ids:
        wanted.append(in_list(c.c.group_id, list(group_ids)))
    # One query per way of being wanted: PostgreSQL answered their OR with a scan of
    # every company of the workspace.
    rows = {
        r["id"]: dict(r)
        for condition in wanted
        for r in db.execute(
            sa.select(c).where(c.c.workspace_id == workspace_id, condition)
        ).mappings()
    }
    for company_id in sorted(rows):
        row = rows[company_id]
        out.companies[company_id] = row
        if row["group_id"] is not None:
            out.groups[row["group_id"]].append(row)
    if out.companies:
        for deal in db.execute(
            sa.select(o).where(in_list(o.c.company_id, list(out.companies)))
        ).mappings():
            out.company_deals[deal["company_id"]].append(dict(deal))
    if out.people:
        for link in db.execute(
            sa.select(o, oc.c.person_id)
            .join(oc, oc.c.opportunity_id == o.c.id)
            .where(in_list(oc.c.person_id, list(out.people)))
        ).mappings():
            out.person_deals[link["person_id"]].append(dict(link))
    for person_id, person in out.people.items():
        deals = out.person_deals.get(person_id, [])
        person["has_opportunity"] = any(not deal["is_closed"] for deal in deals)
    return out
