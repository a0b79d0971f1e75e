"""Lists and search at scale: `python -m bench.listing [--database PATH] [--repeat N]`.

Opens a benchmark database built by `python -m bench.run` read-only, in place (no copy,
nothing written), and measures on one workspace, each next to a same-run baseline:
(1) the first page of people by email, keyset vs OFFSET 0; (2) the page after 500,000
people by email and newest first, keyset vs OFFSET 500,000; (3) the search box (prefix
search of addresses, names, domains, company names: `services.reads.search.find`) vs a
`LIKE '%x%'` scan of the same columns. Every pair is asserted to answer the same rows.
Without `--database`: the largest finished file in var/bench/.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bench.generate import WORKSPACE_ID
from bench.load import CACHE
from bench.measure import Timing, measure
from optout.db import tables as t
from optout.services.reads import browse, keyset, search
from optout.services.reads.search import person_name_key

PAGE = keyset.DEFAULT_PAGE_SIZE
DEEP = 500_000
WS = WORKSPACE_ID


def _offset_people(db: Connection, order: list[Any], offset: int) -> list[int]:
    p = t.people
    query = (
        sa.select(p.c.id).where(p.c.workspace_id == WS).order_by(*order).limit(PAGE).offset(offset)
    )
    return list(db.scalars(query))


def _cursor_at(db: Connection, sort: keyset.Sort, offset: int) -> str:
    """The cursor a reader holds after paging through `offset` people (taken untimed)."""
    p = t.people
    order = [sort.key.desc(), p.c.id.desc()] if sort.descending else [sort.key, p.c.id]
    key, row_id = db.execute(
        sa.select(sort.key, p.c.id)
        .where(p.c.workspace_id == WS)
        .order_by(*order)
        .limit(1)
        .offset(offset - 1)
    ).one()
    return keyset.encode(key, row_id)


def _ids(page: keyset.Page) -> list[int]:
    return [int(r["id"]) for r in page.rows]


def _scan_search(db: Connection, text: str) -> set[tuple[str, int]]:
    """The baseline: the same columns searched with a contains-scan, then kept to what
    begins with `text` (so both answer the same rows)."""
    p, c = t.people, t.companies
    words = text.lower()
    like = f"%{words}%"
    name = person_name_key(p)
    people_rows = db.execute(
        sa.select(p.c.id, p.c.email, name.label("name"), sa.func.lower(p.c.last_name)).where(
            p.c.workspace_id == WS,
            sa.or_(p.c.email.like(like), name.like(like), sa.func.lower(p.c.last_name).like(like)),
        )
    ).all()
    company_rows = db.execute(
        sa.select(c.c.id, c.c.domain, sa.func.lower(c.c.name)).where(
            c.c.workspace_id == WS,
            sa.or_(c.c.domain.like(like), sa.func.lower(c.c.name).like(like)),
        )
    ).all()
    found = {("person", r[0]) for r in people_rows if any(str(v).startswith(words) for v in r[1:])}
    found |= {
        ("company", r[0])
        for r in company_rows
        if any(str(v or "").startswith(words) for v in r[1:])
    }
    return found


def _prefix_search(db: Connection, text: str) -> set[tuple[str, int]]:
    return {(f.kind, f.id) for f in search.find(db, workspace_id=WS, text=text, limit=1_000_000)}


def _latest(cache: Path) -> Path:
    files = [f for f in cache.glob("optout-bench-p*.sqlite3") if f.is_file()]
    if not files:
        sys.exit(f"no benchmark database in {cache}: run `python -m bench.run` first")
    return max(files, key=lambda f: int(f.name.split("-p", 1)[1].split("-", 1)[0]))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.listing", description=__doc__)
    parser.add_argument("--database", type=Path, help="a SQLite file made by bench.run")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--limit", type=float, default=300.0)
    parser.add_argument("--search", default="mar", help="what is typed in the search box")
    args = parser.parse_args(argv)
    path = (args.database or _latest(CACHE)).resolve()
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    timings: list[Timing] = []
    with engine.connect() as db:
        people = int(db.scalar(sa.select(sa.func.count()).select_from(t.people)) or 0)
        has_0007 = db.scalar(
            sa.text("SELECT count(*) FROM sqlite_master WHERE name = 'ix_people_ws_full_name'")
        )
        print(
            f"{path.name}: {people:,} people; with the indexes of migration 0007: {bool(has_0007)}"
        )

        def run(section: str, label: str, fn: Any) -> Timing:
            timing = measure(
                db, section, label, fn, repeat=args.repeat, budget=args.budget, limit=args.limit
            )
            timings.append(timing)
            print(
                f"  {section:<24} {label:<34} median {timing.shown('median'):>8} s"
                f"   min {timing.shown('min'):>8} s",
                flush=True,
            )
            return timing

        p = t.people
        by_email = keyset.choose(browse.PEOPLE_SORTS, "email")
        newest = keyset.choose(browse.PEOPLE_SORTS, "newest")
        first_k = run(
            "first page, email",
            "keyset",
            lambda: _ids(browse.people(db, workspace_id=WS, sort="email")),
        )
        first_o = run(
            "first page, email", "OFFSET 0", lambda: _offset_people(db, [p.c.email, p.c.id], 0)
        )
        assert first_k.value == first_o.value
        deep = min(DEEP, people // 2)
        for sort, order in ((by_email, [p.c.email, p.c.id]), (newest, [p.c.id.desc()])):
            cursor = _cursor_at(db, sort, deep)
            key = run(
                f"page after {deep:,}, {sort.name}",
                "keyset",
                lambda s=sort, c=cursor: _ids(
                    browse.people(db, workspace_id=WS, sort=s.name, after=c)
                ),
            )
            off = run(
                f"page after {deep:,}, {sort.name}",
                f"OFFSET {deep:,}",
                lambda o=order: _offset_people(db, o, deep),
            )
            assert key.value == off.value, f"{sort.name}: keyset and OFFSET disagree"
        prefix = run(
            f"search {args.search!r}",
            "prefix on indexed keys",
            lambda: _prefix_search(db, args.search),
        )
        scan = run(
            f"search {args.search!r}", "LIKE '%x%' scan", lambda: _scan_search(db, args.search)
        )
        assert prefix.value == scan.value, "prefix search and scan disagree"
        print(f"  search {args.search!r} found {len(prefix.value):,} people and companies")
        box = measure(
            db,
            "search box",
            f"{args.search!r}, first {search.MAX_RESULTS}",
            lambda: len(search.find(db, workspace_id=WS, text=args.search)),
            repeat=args.repeat,
            budget=args.budget,
            limit=args.limit,
        )
        print(
            f"  search box, {args.search!r}, first {search.MAX_RESULTS}: "
            f"median {box.shown('median')} s, min {box.shown('min')} s"
        )

    print("\nratios (baseline median / ours median):")
    pairs = [(timings[i], timings[i + 1]) for i in range(0, len(timings), 2)]
    for ours, baseline in pairs:
        if ours.median and baseline.median:
            print(f"  {ours.section:<28} {baseline.median / ours.median:8.1f}x")
        else:
            print(f"  {ours.section:<28} baseline {baseline.shown('median')} s")


if __name__ == "__main__":
    main()
