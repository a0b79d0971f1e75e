"""What keeps a CSV import from holding the write lock (R34, DESIGN guarantee 6): the
header is checked in linear time and capped, and a checked file is applied in parts
that together do exactly what one transaction would."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.services import in_parts
from optout.services.imports import csv_files, people_files
from optout.services.imports.csv_files import MAX_COLUMNS, check_header, read_csv
from tests.factories import World

MAPPING = {"Email": "email", "Domain": "company_domain", "Opt out": "email_opt_out"}


def _wide(columns: int) -> io.StringIO:
    header = ",".join(f"c{i}" for i in range(columns))
    return io.StringIO(f"{header}\n{','.join('x' for _ in range(columns))}\n")


def test_R34_a_header_wider_than_the_cap_is_refused_naming_the_cap() -> None:
    with pytest.raises(InvalidInput) as caught:
        read_csv(_wide(40_000))

    assert caught.value.message == (
        f"the header has 40000 columns; an import takes at most {MAX_COLUMNS}"
    )


def test_R34_the_widest_header_allowed_is_read() -> None:
    data = read_csv(_wide(MAX_COLUMNS))

    assert len(data.header) == MAX_COLUMNS


class _Compared(str):
    """A column name that counts how often it is compared with another."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        _Compared.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


def test_R34_the_duplicate_header_check_is_linear_in_the_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Counted, not timed: a check that compares each column with the ones before it makes
    n * n / 2 comparisons (12.5 million for these 5,000 columns); a linear one a few per
    column."""
    monkeypatch.setattr(csv_files, "MAX_COLUMNS", 1_000_000)
    names = [_Compared(f"c{i}") for i in range(5_000)]
    _Compared.comparisons = 0

    check_header(names)
    with pytest.raises(InvalidInput) as caught:
        check_header([*names, _Compared("c7"), _Compared("c3")])

    assert _Compared.comparisons <= 4 * len(names)
    assert caught.value.message == "the header names a column more than once: 'c3', 'c7'"


def test_R34_many_duplicate_columns_are_named_up_to_ten() -> None:
    names = [f"c{i:02}" for i in range(12)] * 2

    with pytest.raises(InvalidInput) as caught:
        check_header(names)

    assert caught.value.message == (
        "the header names a column more than once: "
        + ", ".join(repr(f"c{i:02}") for i in range(10))
        + " and 2 more"
    )


def _csv(rows: int) -> str:
    lines = ["Email,Domain,Opt out"]
    lines += [f"p{i}@c{i % 3}.com,c{i % 3}.com,{'yes' if i % 4 == 0 else ''}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def _state(world: World) -> list[tuple[object, ...]]:
    p, c, s = t.people, t.companies, t.suppressions
    people = world.db.execute(
        sa.select(p.c.email, c.c.domain)
        .outerjoin(c, c.c.id == p.c.company_id)
        .where(p.c.workspace_id == world.ws)
        .order_by(p.c.email)
    ).all()
    suppressed = world.db.scalars(
        sa.select(s.c.email).where(s.c.workspace_id == world.ws).order_by(s.c.email)
    ).all()
    return [*map(tuple, people), *((email,) for email in suppressed)]


def test_R23_a_file_applied_in_parts_does_what_one_transaction_does(
    db: Connection, now: datetime
) -> None:
    whole, parted = World(db, now, slug="whole"), World(db, now, slug="parted")
    people_files.import_people(
        db, workspace_id=whole.ws, source=io.StringIO(_csv(11)), mapping=MAPPING,
        actor="t", now=now,
    )  # fmt: skip
    file = people_files.read_people(source=io.StringIO(_csv(11)), mapping=MAPPING)
    applied = people_files.Applied()
    bounds = people_files.parts(file, size=3)
    for start, stop in bounds:
        applied += people_files.apply_people_part(
            db, workspace_id=parted.ws, file=file, start=start, stop=stop, actor="t", now=now
        )
    report = people_files.finish_people(
        db, workspace_id=parted.ws, file=file, applied=applied, actor="t", now=now
    )

    assert bounds == [(0, 3), (3, 6), (6, 9), (9, 11)]
    assert (report.created, report.updated, report.unchanged) == (11, 0, 0)
    assert applied.opted_out == 3
    assert _state(parted) == _state(whole)
    events = db.scalars(
        sa.select(t.events.c.kind).where(
            t.events.c.workspace_id == parted.ws, t.events.c.kind == "import_applied"
        )
    ).all()
    assert events == ["import_applied"]


def test_R34_a_part_that_held_the_lock_long_makes_the_next_parts_smaller() -> None:
    assert in_parts.next_part_size(2_000, 0.25) == people_files.CHUNK_ROWS  # never above the cap
    assert in_parts.next_part_size(2_000, 4.0) == 250  # aims at half a second
    assert in_parts.next_part_size(250, 60.0) == people_files.MIN_PART_ROWS
    assert in_parts.next_part_size(250, 0.0) == 250
