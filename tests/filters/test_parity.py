"""The SQL form and the Python form of every filter agree on random data (R19, DESIGN).

People level: `compile_sql` over `people_scope()` against `evaluate` on the facts the
eligibility service loads. Company level: `compile_sql` over the companies table against
`evaluate` on `Subject(company=..., opportunities=...)` built from the same facts.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.filters import Level, Node, Subject, evaluate, to_text, validate
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql, people_scope
from optout.services.eligibility import facts
from tests.random_worlds import NOW, STEPS, Built, build, filters, pools, worlds

CTX = Context(now=NOW)


def _people_in_sql(db: Connection, built: Built, node: Node) -> set[int]:
    query, scope = people_scope()
    where = compile_sql(node, scope=scope, ctx=CTX)
    return set(db.scalars(query.where(t.people.c.workspace_id == built.ws, where)))


def _companies_in_sql(db: Connection, built: Built, node: Node) -> set[int]:
    c = t.companies
    where = compile_sql(node, scope=SqlScope(company=c), ctx=CTX)
    return set(db.scalars(sa.select(c.c.id).where(c.c.workspace_id == built.ws, where)))


def _company_subjects(db: Connection, built: Built, people: dict[int, Any]) -> dict[int, Subject]:
    """A subject per company: from the facts (every company of a person's linked group),
    and, for companies nobody works at, from their rows loaded the same way."""
    subjects: dict[int, Subject] = {}
    for found in people.values():
        for member in found.company_group:
            subjects[member.company["id"]] = member
    c, o = t.companies, t.opportunities
    rest = [i for i in built.companies if i not in subjects]
    rows = db.execute(sa.select(c).where(c.c.id.in_(rest))).mappings()
    deals = [dict(r) for r in db.execute(sa.select(o).where(o.c.company_id.in_(rest))).mappings()]
    for row in rows:
        own = [d for d in deals if d["company_id"] == row["id"]]
        subjects[row["id"]] = Subject(company=dict(row), opportunities=own)
    return subjects


def _mismatch(node: Node, sql: set[int], py: set[int], subjects: dict[int, Any]) -> str:
    lines = [
        f"filter: {to_text(node)}",
        f"only SQL: {sorted(sql - py)}",
        f"only Python: {sorted(py - sql)}",
    ]
    for key in sorted(sql ^ py):
        lines.append(f"  {key}: {subjects[key]!r}")
    return "\n".join(lines)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(data=st.data())
def test_R19_sql_and_python_forms_agree_on_random_filters(
    db: Connection, data: st.DataObject
) -> None:
    spec = data.draw(worlds(), label="world")
    pool = pools(spec)
    people_filters = data.draw(st.lists(filters(pool, Level.PEOPLE), min_size=1, max_size=4))
    company_filters = data.draw(st.lists(filters(pool, Level.COMPANY), min_size=1, max_size=4))
    with db.begin_nested() as savepoint:
        built = build(db, spec)
        sequence_id = built.world.sequence(steps=STEPS)
        loaded = facts(db, workspace_id=built.ws, person_ids=built.people, sequence_id=sequence_id)
        assert set(loaded) == set(built.people)
        for raw in people_filters:
            node = validate(raw, Level.PEOPLE)
            note(f"people filter: {to_text(node)}")
            sql = _people_in_sql(db, built, node)
            py = {pid for pid, f in loaded.items() if evaluate(node, f.subject, CTX).matched}
            subjects = {pid: f.subject for pid, f in loaded.items()}
            assert sql == py, _mismatch(node, sql, py, subjects)
        companies = _company_subjects(db, built, loaded)
        assert set(companies) == set(built.companies)
        for raw in company_filters:
            node = validate(raw, Level.COMPANY)
            note(f"company filter: {to_text(node)}")
            sql = _companies_in_sql(db, built, node)
            py = {cid for cid, s in companies.items() if evaluate(node, s, CTX).matched}
            assert sql == py, _mismatch(node, sql, py, companies)
        savepoint.rollback()
