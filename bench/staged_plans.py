"""Staged rows analysed or not, on SQLite: `python -m bench.staged_plans [--people N]`.

Every operation that stages rows it computed in Python (a CSV part, a CRM page) goes
through `services.staging.stage_rows`, which analyses the staged table after filling it.
This bench measures that choice against the same code with the ANALYZE skipped for the
tables the CSV import and the CRM people page stage (what those two paths did before
they shared the helper), on copies of one workspace of `--people` people:

- the query plans of every statement that reads a staged table, captured with
  EXPLAIN QUERY PLAN as the statement runs, and the statements whose plan differs;
- the time of a CSV people import of `--rows` rows (half of them people already there
  with a new title, half new people) and of `--pages` CRM people pages of `--page`
  records (the same half and half), both arms interleaved `--repeat` times.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.crm.staged import reset_touched
from optout.crm.upsert_people import write_people
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.services import staging, workspaces
from optout.services.imports import people_files

STAGED = ("optout_import_people", "optout_import_companies", "optout_crm_people")
MAPPING = people_files.parse_mapping(["Email=email", "Title=title"])


@dataclass
class Plans:
    """The plan of each distinct statement that reads a staged table, as it ran."""

    by_statement: dict[str, list[str]] = field(default_factory=dict)
    analyse_seconds: float = 0.0  # spent in the ANALYZE statements of the staged tables
    analyses: int = 0

    def record(self, raw: Any, statement: str, parameters: Any) -> None:
        words = statement.lstrip().split(None, 1)
        if not words or words[0].upper() not in ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH"):
            return
        if not any(name in statement for name in STAGED) or statement in self.by_statement:
            return
        if words[0].upper() == "INSERT" and "SELECT" not in statement.upper():
            return  # filling the staged table: no plan to read
        rows = raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters or ()).fetchall()
        self.by_statement[statement] = [str(row[-1]) for row in rows]


@contextlib.contextmanager
def capturing(engine: Engine, plans: Plans) -> Iterator[None]:
    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not isinstance(parameters, list):  # one statement, not an executemany
            plans.record(cursor.connection, statement, parameters)

    started: list[float] = []

    def timed(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("ANALYZE") and any(name in statement for name in STAGED):
            started.append(time.perf_counter())

    def after(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if started and statement.startswith("ANALYZE"):
            plans.analyse_seconds += time.perf_counter() - started.pop()
            plans.analyses += 1

    sa.event.listen(engine, "before_cursor_execute", before)
    sa.event.listen(engine, "before_cursor_execute", timed)
    sa.event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        sa.event.remove(engine, "before_cursor_execute", before)
        sa.event.remove(engine, "before_cursor_execute", timed)
        sa.event.remove(engine, "after_cursor_execute", after)


@contextlib.contextmanager
def unanalysed() -> Iterator[None]:
    """The import's and the CRM page's staged tables filled without ANALYZE."""
    original = staging.analyzed

    def maybe(db: Any, table: sa.Table) -> None:
        if table.name not in STAGED:
            original(db, table)

    staging.analyzed = maybe  # type: ignore[assignment]
    try:
        yield
    finally:
        staging.analyzed = original  # type: ignore[assignment]


def _csv(first: int, count: int, title: str) -> str:
    lines = ["Email,Title"]
    lines += [
        f"person{n:07d}@company{n % 5000:05d}.example,{title}" for n in range(first, first + count)
    ]
    return "\n".join(lines) + "\n"


def _import(engine: Engine, ws: int, text: str) -> float:
    started = time.perf_counter()
    with engine.begin() as db:
        report = people_files.import_people(
            db,
            workspace_id=ws,
            source=io.StringIO(text, newline=""),
            mapping=MAPPING,
            actor="bench",
            now=utcnow(),
        )
    if report.errors:
        raise SystemExit(f"the import was refused: {report.errors[:3]}")
    return time.perf_counter() - started


def _crm_rows(first: int, count: int) -> list[dict[str, Any]]:
    return [
        {
            "email": f"person{n:07d}@company{n % 5000:05d}.example",
            "email_domain": f"company{n % 5000:05d}.example",
            "first_name": f"First{n}",
            "last_name": None,
            "title": "Director",
            "status": None,
            "fields": {},
            "opt_out": False,
            "activity_at": None,
            "company_id": None,
            "company_domain": None,
            "company_name": None,
            "time_zone": None,
            "crm_id": f"crm{n}",
        }
        for n in range(first, first + count)
    ]


def _crm_pages(engine: Engine, ws: int, people: int, pages: int, page: int) -> float:
    started = time.perf_counter()
    for number in range(pages):
        half = page // 2
        rows = _crm_rows(number * half, half) + _crm_rows(people * 2 + number * half, half)
        with engine.begin() as db:
            reset_touched(db)
            write_people(db, workspace_id=ws, rows=rows, crm="HubSpot", actor="bench", now=utcnow())
    return time.perf_counter() - started


@dataclass
class Arm:
    name: str
    imports: list[float] = field(default_factory=list)
    pages: list[float] = field(default_factory=list)
    plans: Plans = field(default_factory=Plans)


def _run(base: Path, work: Path, arm: Arm, args: argparse.Namespace, ws: int) -> None:
    copy = work / f"{arm.name}.sqlite3"
    shutil.copyfile(base, copy)
    engine = create_engine(f"sqlite:///{copy}")
    try:
        half = args.rows // 2
        text = _csv(0, half, "Head of Data") + _csv(args.people, half, "Analyst").split("\n", 1)[1]
        context = unanalysed() if arm.name == "unanalysed" else contextlib.nullcontext()
        with context, capturing(engine, arm.plans):
            arm.imports.append(_import(engine, ws, text))
            arm.pages.append(_crm_pages(engine, ws, args.people, args.pages, args.page))
    finally:
        engine.dispose()
        copy.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=20_000, help="rows of the CSV import")
    parser.add_argument("--pages", type=int, default=20, help="CRM people pages")
    parser.add_argument("--page", type=int, default=200, help="records per CRM page")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="optout-staged-") as folder:
        work = Path(folder)
        base = work / "base.sqlite3"
        url = f"sqlite:///{base}"
        engine = create_engine(url)
        upgrade(engine)
        with engine.begin() as db:
            ws = workspaces.create(db, slug="staged", name="Staged rows", now=utcnow()).id
        print(f"workspace of {args.people:,} people ...", flush=True)
        seconds = _import(engine, ws, _csv(0, args.people, "Engineer"))
        print(f"  imported in {seconds:.1f} s", flush=True)
        engine.dispose()
        arms = [Arm("analysed"), Arm("unanalysed")]
        for round_ in range(args.repeat):
            for arm in arms if round_ % 2 == 0 else reversed(arms):
                _run(base, work, arm, args, ws)
                print(
                    f"  {arm.name:<10} import {arm.imports[-1]:.2f} s, "
                    f"CRM pages {arm.pages[-1]:.2f} s",
                    flush=True,
                )
    analysed, unanalysed_ = arms
    for what in ("imports", "pages"):
        a = statistics.median(getattr(analysed, what))
        b = statistics.median(getattr(unanalysed_, what))
        print(f"{what}: analysed {a:.2f} s, unanalysed {b:.2f} s, ratio {a / b:.2f}x (median)")
    plans = analysed.plans
    print(
        f"ANALYZE of the staged tables: {plans.analyses} statements, "
        f"{plans.analyse_seconds:.3f} s in all over {args.repeat} rounds "
        f"({plans.analyse_seconds / max(plans.analyses, 1) * 1000:.1f} ms each)"
    )
    differ = [
        s
        for s, plan in analysed.plans.by_statement.items()
        if unanalysed_.plans.by_statement.get(s, plan) != plan
    ]
    print(
        f"statements reading staged tables: {len(analysed.plans.by_statement)}, "
        f"plans that differ: {len(differ)}"
    )
    for statement in differ:
        print("\n" + " ".join(statement.split())[:300])
        print("  analysed:   " + " | ".join(analysed.plans.by_statement[statement]))
        print("  unanalysed: " + " | ".join(unanalysed_.plans.by_statement[statement]))


if __name__ == "__main__":
    main()
