"""What a filter can see of a few people or companies, loaded in a fixed number of queries:
the Python side of the filters (`optout.filters.holds` / `evaluate`) reads these, so
explain, the send-time gate and the decision index's small re-matches see the same rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.filters import Subject
from optout.services.id_lists import ByLength

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
    groups, with their deals; `person.has_opportunity` filled in as the SQL form reads it.

    A write's flush loads one person: each statement is built once for the number of ids
    it asks about (`id_lists`), so the flush pays for running it, not for building it."""
    out = Loaded()
    if person_ids:
        for r in _rows(db, _PEOPLE, workspace_id, person_ids):
            out.people[r["id"]] = dict(r)
    company_ids = {r["company_id"] for r in out.people.values() if r["company_id"] is not None}
    rows: dict[int, Row] = {}
    if company_ids:
        rows.update((r["id"], dict(r)) for r in _rows(db, _COMPANIES, workspace_id, company_ids))
    # The companies of the groups asked and of the people's companies' groups: by id, then
    # by group (PostgreSQL answered the OR of both with a scan of every company).
    groups = {*group_ids, *(r["group_id"] for r in rows.values() if r["group_id"] is not None)}
    if groups:
        rows.update((r["id"], dict(r)) for r in _rows(db, _GROUPS, workspace_id, groups))
    for company_id in sorted(rows):
        row = rows[company_id]
        out.companies[company_id] = row
        if row["group_id"] is not None:
            out.groups[row["group_id"]].append(row)
    if out.companies:
        for deal in _rows(db, _COMPANY_DEALS, workspace_id, out.companies):
            out.company_deals[deal["company_id"]].append(dict(deal))
    if out.people:
        for link in _rows(db, _PERSON_DEALS, workspace_id, out.people):
            out.person_deals[link["person_id"]].append(dict(link))
    for person_id, person in out.people.items():
        deals = out.person_deals.get(person_id, [])
        person["has_opportunity"] = any(not deal["is_closed"] for deal in deals)
    return out


_WORKSPACE = sa.bindparam("workspace_id", type_=sa.Integer)
_p, _c, _o, _oc = t.people, t.companies, t.opportunities, t.opportunity_contacts
_PEOPLE = ByLength(
    lambda ids, _db: sa.select(_p).where(_p.c.workspace_id == _WORKSPACE, ids(_p.c.id))
)
_COMPANIES = ByLength(
    lambda ids, _db: sa.select(_c).where(_c.c.workspace_id == _WORKSPACE, ids(_c.c.id))
)
_GROUPS = ByLength(
    lambda ids, _db: sa.select(_c).where(_c.c.workspace_id == _WORKSPACE, ids(_c.c.group_id))
)
_COMPANY_DEALS = ByLength(lambda ids, _db: sa.select(_o).where(ids(_o.c.company_id)))
_PERSON_DEALS = ByLength(
    lambda ids, _db: (
        sa.select(_o, _oc.c.person_id)
        .join(_oc, _oc.c.opportunity_id == _o.c.id)
        .where(ids(_oc.c.person_id))
    )
)


def _rows(db: Connection, statement: ByLength, workspace_id: int, ids: Iterable[int]) -> Any:
    return statement.execute(db, ids, workspace_id=workspace_id).mappings()
