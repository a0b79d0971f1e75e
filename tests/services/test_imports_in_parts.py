"""A companies import, an exclusion-list import and an exclusion's unenroll on save,
applied in parts that each commit on their own, do what one transaction does (R12, R13,
R14, R23, DESIGN guarantee 6): the same report, the same data, the same event; a bad row
anywhere in the file writes nothing; and no email goes out to someone a saved exclusion
excludes while its enrollments are being ended."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import read_transaction
from optout.errors import NotFound
from optout.sending.claim import claim
from optout.services.exclusions import saves, unenroll
from optout.services.imports import apply, company_files, exclusion_lists
from optout.services.imports.reporting import ImportReport
from tests.factories import World

ACTOR = "ops@acme-sales.com"
COMPANY_MAP = {"Domain": "domain", "Name": "name", "Parent": "parent_domain", "Tier": "fields.tier"}
# A child listed before its listed parent, a parent the file only names, a rename that
# puts a company under an enforced exclusion, companies that the people's addresses
# created already, an unchanged row, and more rows than two parts.
COMPANIES_CSV = (
    "Domain,Name,Parent,Tier\n"
    "eu.globex.io,Globex EU,globex.io,2\n"
    "old.com,Blocked Co,,1\n"
    "globex.io,Globex,holding.example,1\n"
    "newco.com,New Co,,3\n"
    "same.com,Same,,\n"
    "apac.globex.io,,globex.io,\n"
    "solo.net,Solo,,\n"
)


def _seed(db: Connection, now: datetime, slug: str) -> World:
    world = World(db, now, slug=slug)
    world.company("old.com", "Old")
    world.company("same.com", "Same")
    sequence = world.sequence()
    people = [
        world.person("bob@old.com", company="old.com"),
        world.person("ann@newco.com"),
        world.person("eve@eu.globex.io"),
        world.person("joe@same.com", company="same.com"),
    ]
    world.enroll(sequence, people)
    world.exclusion(
        "Blocked", "company", 'company.name = "Blocked Co"', exclude_from_sequences=True
    )
    return world


def _companies(engine: Engine, ws: int) -> list[tuple[Any, ...]]:
    c, parent, root = t.companies, t.companies.alias("parent"), t.companies.alias("root")
    query = (
        sa.select(c.c.domain, c.c.name, c.c.fields, parent.c.domain, root.c.domain)
        .outerjoin(parent, parent.c.id == c.c.parent_id)
        .outerjoin(root, root.c.id == c.c.group_id)
        .where(c.c.workspace_id == ws)
        .order_by(c.c.domain)
    )
    with engine.connect() as db:
        return [tuple(row) for row in db.execute(query)]


def _people(engine: Engine, ws: int) -> list[tuple[Any, ...]]:
    p, c, e = t.people, t.companies, t.enrollments
    query = (
        sa.select(p.c.email, c.c.domain, e.c.status, e.c.end_reason)
        .outerjoin(c, c.c.id == p.c.company_id)
        .outerjoin(e, e.c.person_id == p.c.id)
        .where(p.c.workspace_id == ws)
        .order_by(p.c.email)
    )
    with engine.connect() as db:
        return [tuple(row) for row in db.execute(query)]


def _import_events(engine: Engine, ws: int) -> list[dict[str, Any]]:
    e = t.events
    query = sa.select(e.c.detail).where(e.c.workspace_id == ws, e.c.kind == "import_applied")
    with engine.connect() as db:
        return [dict(detail) for detail in db.scalars(query)]


def _ended_events(engine: Engine, ws: int) -> list[tuple[Any, ...]]:
    e = t.events
    query = (
        sa.select(e.c.kind, e.c.rule, e.c.detail)
        .where(e.c.workspace_id == ws, e.c.kind.in_(["enrollment_ended", "email_cancelled"]))
        .order_by(e.c.kind)
    )
    with engine.connect() as db:
        return [
            (kind, rule.split(":")[0], detail["reason"]) for kind, rule, detail in db.execute(query)
        ]


def _counts(report: ImportReport) -> tuple[Any, ...]:
    return (report.kind, report.rows, report.created, report.updated, report.unchanged)


def _companies_in_parts(engine: Engine, ws: int, text: str, now: datetime, **kw: Any) -> Any:
    file = company_files.read_companies(source=io.StringIO(text), mapping=COMPANY_MAP)
    with read_transaction(engine) as db:
        refused = company_files.companies_rejected(db, workspace_id=ws, file=file)
    if refused is not None:
        return refused
    return apply.apply_file_in_parts(
        engine, engine.begin, company_files.COMPANY_STEPS, file=file, workspace_id=ws, actor=ACTOR,
        now=now, **kw,
    )  # fmt: skip


def test_R23_R12_companies_import_in_parts_reports_and_writes_what_one_transaction_does(
    fresh_engine: Engine,
) -> None:
    engine, now = fresh_engine, utcnow()
    with engine.begin() as db:
        whole, parted = _seed(db, now, "whole").ws, _seed(db, now, "parted").ws
    with engine.begin() as db:
        one = company_files.import_companies(
            db, workspace_id=whole, source=io.StringIO(COMPANIES_CSV), mapping=COMPANY_MAP,
            actor=ACTOR, now=now,
        )  # fmt: skip
    committed: list[tuple[int, int]] = []

    report = _companies_in_parts(
        engine, parted, COMPANIES_CSV, now, most=2, progress=lambda d, n: committed.append((d, n))
    )

    assert committed == [(2, 7), (4, 7), (6, 7), (7, 7)]  # four parts, each its own commit
    assert _counts(report) == _counts(one) == ("companies", 7, 3, 3, 1)
    assert report.errors == one.errors == []
    assert _companies(engine, parted) == _companies(engine, whole)
    assert ("eu.globex.io", "Globex EU", {"tier": "2"}, "globex.io", "holding.example") in (
        _companies(engine, parted)
    )
    assert _people(engine, parted) == _people(engine, whole)
    assert _people(engine, parted)[1][:3] == ("bob@old.com", "old.com", "unenrolled")
    assert _people(engine, parted)[0][:2] == ("ann@newco.com", "newco.com")
    [event] = _import_events(engine, parted)
    assert event == _import_events(engine, whole)[0]
    assert (event["parents_created"], event["enrollments_ended"]) == (1, 1)


@pytest.mark.parametrize("row", [2, 6])
def test_R23_R12_a_bad_row_anywhere_in_a_companies_file_writes_nothing(
    fresh_engine: Engine, row: int
) -> None:
    engine, now = fresh_engine, utcnow()
    with engine.begin() as db:
        world = _seed(db, now, "acme")
        world.company("taken.org")
        world.company("owner.org")
    with engine.begin() as db:
        company_files.import_companies(
            db,
            workspace_id=world.ws,
            source=io.StringIO("Domain,Parent\ntaken.org,owner.org\n"),
            mapping={"Domain": "domain", "Parent": "parent_domain"},
            actor=ACTOR,
            now=now,
        )
    lines = COMPANIES_CSV.splitlines()
    lines.insert(row - 1, "taken.org,Taken,elsewhere.org,")  # linked to owner.org already
    before = (_companies(engine, world.ws), _people(engine, world.ws))

    report = _companies_in_parts(engine, world.ws, "\n".join(lines) + "\n", now, most=2)

    assert not report.applied
    assert [(e.row, e.column, e.value) for e in report.errors] == [(row, "Parent", "elsewhere.org")]
    assert "unlink it first" in report.errors[0].reason
    assert (_companies(engine, world.ws), _people(engine, world.ws)) == before
    assert len(_import_events(engine, world.ws)) == 1  # the setup's only


def customers_world(world: World, people: int = 6) -> World:
    """Enrolled people at companies c0.com, c1.com, ..., and a company list
    "Customers" of c0.com that unenrolls on save."""
    sequence = world.sequence()
    enrolled = [world.person(f"p{n}@c{n}.com", company=f"c{n}.com") for n in range(people)]
    world.enroll(sequence, enrolled)
    world.exclusion(
        "Customers",
        "company",
        'company.domain in ("c0.com")',
        exclude_from_sequences=True,
        unenroll_existing_on_save=True,
    )
    return world


LIST_CSV = "Domain\nc1.com\nc2.com\nwww.C3.com\nc0.com\nc4.com\nnobody.io\n"


def _list_args(ws: int, text: str, now: datetime, exclusion: str = "Customers") -> dict[str, Any]:
    return {
        "workspace_id": ws,
        "source": io.StringIO(text),
        "column": "Domain",
        "exclusion": exclusion,
        "level": "company",
        "actor": ACTOR,
        "now": now,
        "confirm": True,
    }


def test_R23_R13_exclusion_list_import_in_parts_reports_and_unenrolls_as_one_transaction(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, now = fresh_engine, utcnow()
    with engine.begin() as db:
        whole, parted = (
            customers_world(World(db, now, "whole")).ws,
            customers_world(World(db, now, "parted")).ws,
        )
    with engine.begin() as db:
        one = exclusion_lists.import_exclusion_list(db, **_list_args(whole, LIST_CSV, now))
    parts: list[int] = []
    sweep = saves.sweep

    def part(db: Connection, **kw: Any) -> Any:
        parts.append(len(kw["within"]))
        return sweep(db, **kw)

    monkeypatch.setattr(saves, "sweep", part)
    monkeypatch.setattr(saves, "SWEPT_WITH_THE_SAVE", 1)
    in_parts = unenroll.unenroll_in_parts

    def small(*args: Any, **kw: Any) -> Any:
        return in_parts(*args, **{**kw, "most": 2})

    monkeypatch.setattr(unenroll, "unenroll_in_parts", small)

    report = exclusion_lists.import_exclusion_list_in_parts(
        engine, engine.begin, **_list_args(parted, LIST_CSV, now)
    )

    assert parts == [1, 2, 1]  # c1 with the save, c2..c4 in parts of two after it
    assert _counts(report) == _counts(one) == ("exclusion_list", 6, 5, 0, 1)
    assert _people(engine, parted) == _people(engine, whole)
    assert [status for _, _, status, _ in _people(engine, parted)] == [
        *(["unenrolled"] * 5),
        "not_started",
    ]
    assert _ended_events(engine, parted) == _ended_events(engine, whole)
    assert _import_events(engine, parted) == _import_events(engine, whole)
    with engine.connect() as db:
        rules = [saves.get(db, workspace_id=ws, name="Customers").filter for ws in (whole, parted)]
    assert rules[0] == rules[1]


def test_R23_a_bad_row_anywhere_in_an_exclusion_list_writes_nothing(fresh_engine: Engine) -> None:
    engine, now = fresh_engine, utcnow()
    with engine.begin() as db:
        world = customers_world(World(db, now, "acme"))
    before = _people(engine, world.ws)

    report = exclusion_lists.import_exclusion_list_in_parts(
        engine, engine.begin, **_list_args(world.ws, LIST_CSV + "not a domain\n", now, "New list")
    )

    assert not report.applied
    assert [(e.row, e.value) for e in report.errors] == [(8, "not a domain")]
    assert _people(engine, world.ws) == before
    with engine.connect() as db, pytest.raises(NotFound):
        saves.get(db, workspace_id=world.ws, name="New list")


def test_R13_R28_no_email_goes_out_to_the_excluded_while_their_enrollments_end_in_parts(
    fresh_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between the committed parts of an unenroll on save, a claim of every due email
    (the send-time check) takes only people the saved exclusion does not exclude."""
    engine, now = fresh_engine, utcnow()
    with engine.begin() as db:
        world = World(db, now, slug="acme")
        sequence = world.sequence()
        excluded = [world.person(f"x{n}@gone{n}.com", company=f"gone{n}.com") for n in range(5)]
        kept = world.person("kim@stays.com", company="stays.com")
        world.enroll(sequence, [*excluded, kept])
    domains = ", ".join(f'"gone{n}.com"' for n in range(5))
    monkeypatch.setattr(saves, "SWEPT_WITH_THE_SAVE", 1)  # the save ends one itself
    with engine.begin() as db:
        saved = saves.create(
            db,
            workspace_id=world.ws,
            name="Gone",
            level="company",
            filter=f"company.domain in ({domains})",
            actor=ACTOR,
            now=now,
            exclude_from_sequences=True,
            unenroll_existing_on_save=True,
            confirm=True,
            unenroll_now=False,
        )
    claimed: list[set[int]] = []

    def claim_between_parts(done: int, total: int) -> None:
        with engine.connect() as db, db.begin() as attempt:
            later = now + timedelta(days=30)  # every queued email is due
            claims = claim(db, now=later, limit=50, workspace_id=world.ws).claims
            claimed.append({int(c.person["id"]) for c in claims})
            attempt.rollback()  # look, do not send: the next part finds the same queue

    removal = unenroll.unenroll_in_parts(
        engine,
        engine.begin,
        workspace_id=world.ws,
        exclusion=saved.exclusion,
        actor=ACTOR,
        now=now,
        progress=claim_between_parts,
        most=1,
    )

    assert (saved.removal.enrollments_ended, saved.removal.emails_cancelled) == (1, 1)
    assert (removal.enrollments_ended, removal.emails_cancelled) == (4, 4)
    assert claimed == [{kept}] * 3  # between each of the four parts
    assert {status for _, _, status, _ in _people(engine, world.ws)} == {
        "unenrolled",
        "not_started",
    }
