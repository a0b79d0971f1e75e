"""Find a person by address or name and a company by domain or name, from any page.

Case-insensitive prefix search on indexed keys only (emails and domains are stored
normalized, names through the expression indexes of migration 0007), so a search over a
million people reads a few index entries: never a `LIKE '%x%'` scan. SQLite compares the
keys as a range; PostgreSQL as a left-anchored LIKE, which its pattern indexes answer
whatever the database's collation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t

MAX_RESULTS = 20
_ABOVE_EVERY_CHARACTER = "\U0010ffff"


@dataclass(frozen=True)
class Found:
    kind: str  # "person" or "company"
    id: int
    label: str  # the address or the domain
    name: str
    exact: bool  # the address or domain is what was typed


def person_name_key(people: sa.FromClause) -> sa.ColumnElement[str]:
    """`lower(first_name || ' ' || last_name)`, written as its index is."""
    space: sa.ColumnElement[str] = sa.literal_column("' '")
    return sa.func.lower(people.c.first_name.op("||")(space).op("||")(people.c.last_name))


def starts_with(db: Connection, key: sa.ColumnElement[Any], prefix: str) -> sa.ColumnElement[bool]:
    """`key` begins with `prefix`, in a form the database answers from an index on `key`."""
    if db.dialect.name == "postgresql":
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return key.like(sa.bindparam(None, escaped + "%", type_=sa.String), escape="\\")
    return sa.and_(key >= prefix, key < prefix + _ABOVE_EVERY_CHARACTER)


def find(db: Connection, *, workspace_id: int, text: str, limit: int = MAX_RESULTS) -> list[Found]:
    """People whose address, full name or last name, and companies whose domain or name,
    begin with `text` (case-insensitive); exact addresses and domains first."""
    words = " ".join(text.strip().lower().split())
    if not words:
        return []
    p, c = t.people, t.companies
    person_columns = (p.c.id, p.c.email, p.c.first_name, p.c.last_name)
    in_people = p.c.workspace_id == workspace_id
    in_companies = c.c.workspace_id == workspace_id
    searches: list[tuple[str, sa.Select[Any]]] = [
        ("person", sa.select(*person_columns).where(in_people, starts_with(db, p.c.email, words))),
        (
            "person",
            sa.select(*person_columns).where(in_people, starts_with(db, person_name_key(p), words)),
        ),
        (
            "person",
            sa.select(*person_columns).where(
                in_people, starts_with(db, sa.func.lower(p.c.last_name), words)
            ),
        ),
        (
            "company",
            sa.select(c.c.id, c.c.domain, c.c.name).where(
                in_companies, starts_with(db, c.c.domain, words.removeprefix("www."))
            ),
        ),
        (
            "company",
            sa.select(c.c.id, c.c.domain, c.c.name).where(
                in_companies, starts_with(db, sa.func.lower(c.c.name), words)
            ),
        ),
    ]
    found: dict[tuple[str, int], Found] = {}
    for kind, query in searches:
        for row in db.execute(query.limit(limit)).mappings():
            if kind == "person":
                name = f"{row['first_name']} {row['last_name']}".strip()
                hit = Found("person", row["id"], row["email"], name, row["email"] == words)
            else:
                label = row["domain"] or ""
                hit = Found("company", row["id"], label, row["name"], label == words)
            found.setdefault((hit.kind, hit.id), hit)
    ordered = sorted(found.values(), key=lambda f: (not f.exact, f.kind != "person", f.label))
    return ordered[:limit]


def destination(found: list[Found]) -> Found | None:
    """Where a search goes straight to: its only result, or its only exact one."""
    if len(found) == 1:
        return found[0]
    exact = [f for f in found if f.exact]
    return exact[0] if len(exact) == 1 else None
