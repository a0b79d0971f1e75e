"""Who an exclusion matches, in full: a page at a time for the exclusion's page, or every
row as CSV, read from the stored matches of the decision index (`decision_index`) with
the rule's clock brought to `now` (`reached.people_reached`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.services import decision_index, spreadsheet
from optout.services.exclusions import saves
from optout.services.exclusions.reached import people_reached
from optout.services.reads.keyset import DEFAULT_PAGE_SIZE, Page, Sort, choose, fetch

_p, _c = t.people, t.companies

MATCH_SORTS = (
    Sort("email", "Email", _p.c.email),
    Sort("newest", "Newest first", _p.c.id, descending=True),
)
CSV_COLUMNS = ("email", "first_name", "last_name", "title", "company", "company_name")
CSV_CHUNK = 2000


def _matched(spec: ExclusionSpec, *, workspace_id: int, now: datetime) -> sa.Select[Any]:
    return (
        sa.select(
            _p.c.id,
            _p.c.email,
            _p.c.first_name,
            _p.c.last_name,
            _p.c.title,
            _c.c.domain.label("company"),
            _c.c.name.label("company_name"),
        )
        .select_from(_p.outerjoin(_c, _c.c.id == _p.c.company_id))
        .where(
            _p.c.workspace_id == workspace_id,
            _p.c.id.in_(people_reached(spec, workspace_id=workspace_id, now=now)),
        )
    )


def page(
    db: Connection,
    *,
    workspace_id: int,
    exclusion_id: int,
    now: datetime,
    sort: str = "",
    after: str = "",
    before: str = "",
    limit: int = DEFAULT_PAGE_SIZE,
) -> Page:
    """A page of the people the exclusion matches now (at company level: everyone at a
    matched company or one linked to it), whether or not it is enabled."""
    decision_index.flush(db)
    decision_index.hold(db, workspace_id=workspace_id)
    spec = saves.get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    return fetch(
        db,
        _matched(spec, workspace_id=workspace_id, now=now),
        sort=choose(MATCH_SORTS, sort),
        id_column=_p.c.id,
        after=after,
        before=before,
        limit=limit,
    )


def csv_lines(
    engine: Engine, *, workspace_id: int, exclusion_id: int, now: datetime
) -> Iterator[str]:
    """The whole match list as CSV text, header first, produced a chunk at a time (each
    chunk one keyset query), so a list of a million people streams in constant memory.
    NotFound is raised before the first line for an unknown exclusion."""
    with engine.connect() as db:
        saves.get_by_id(db, workspace_id=workspace_id, exclusion_id=exclusion_id)
    return _lines(engine, workspace_id=workspace_id, exclusion_id=exclusion_id, now=now)


def _lines(engine: Engine, *, workspace_id: int, exclusion_id: int, now: datetime) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield out.getvalue()
    after = ""
    while True:
        with engine.connect() as db:
            chunk = page(
                db,
                workspace_id=workspace_id,
                exclusion_id=exclusion_id,
                now=now,
                sort="email",
                after=after,
                limit=CSV_CHUNK,
            )
        out.seek(0)
        out.truncate()
        writer.writerows([[spreadsheet.cell(row[c]) for c in CSV_COLUMNS] for row in chunk.rows])
        yield out.getvalue()
        if chunk.next is None:
            return
        after = chunk.next
