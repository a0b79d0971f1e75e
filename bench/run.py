"""Run the benchmark: `python -m bench.run [--people N] [--companies N] [--exclusions N]
[--database-url URL] [--no-reuse] [--analyze]`.

Measures, on one database in one run: (a) the impact preview of the 1,000-domain rule,
(b) the eligible set of the sequence over everyone, (c) explain for one person, (d) the
eligibility check `enrollments.enrolling.enroll` runs for one person; each next to a per-row Python
loop and hand-written SQL, whose answers are asserted equal to the project's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bench import handsql, pyloop
from bench.generate import NOW, SEQUENCE_ID, SEQUENCE_NAME, WORKSPACE_ID, Params
from bench.load import ROOT, Progress, ensure_indexes, prepare
from bench.measure import Timing, measure
from bench.rules import BIG_RULE_NAME
from optout.db import statistics
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.eligibility import Purpose, decide
from optout.eligibility.sql import eligible_people
from optout.services import decision_index, filters
from optout.services.eligibility import explain, facts, situation
from optout.services.enrollments import enrolling
from optout.services.exclusions import preview as preview_service
from optout.services.exclusions import saves
from optout.services.exclusions.reached import people_reached

WS = WORKSPACE_ID


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, help="default: people / 10")
    parser.add_argument("--exclusions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=Params.seed)
    parser.add_argument("--database-url", help="default: a cached SQLite file in var/bench/")
    parser.add_argument("--reuse", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--analyze", action="store_true", help="measure a copy with planner statistics (ANALYZE)"
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per measurement")
    parser.add_argument("--limit", type=float, default=400.0, help="seconds per query")
    parser.add_argument("--sample-a", type=int, default=20_000, help="Python loop sample for (a)")
    parser.add_argument("--sample-b", type=int, default=2_000, help="Python loop sample for (b)")
    parser.add_argument("--only", default="iabcd", help="sections to run, e.g. 'ac'")
    return parser.parse_args(argv)


class Bench:
    def __init__(self, db: Connection, args: argparse.Namespace, people: int) -> None:
        self.db = db
        self.args = args
        self.people = people
        self.timings: list[Timing] = []
        self.checks: list[str] = []

    def time(self, section: str, label: str, fn: Any, **kw: Any) -> Timing:
        kw.setdefault("repeat", self.args.repeat)
        kw.setdefault("budget", self.args.budget)
        kw.setdefault("limit", self.args.limit)
        started = time.perf_counter()
        timing = measure(self.db, section, label, fn, **kw)
        print(
            f"  ({section}) {label}: median {timing.shown('median')} s, "
            f"min {timing.shown('min')} s, {len(timing.runs)} run(s), "
            f"{time.perf_counter() - started:.1f}s wall",
            file=sys.stderr,
            flush=True,
        )
        self.timings.append(timing)
        return timing

    def same(self, what: str, *timings: Timing) -> None:
        """The answers of every finished timing agree."""
        done = [x for x in timings if x.limit_hit is None]
        values = {repr(x.value) for x in done}
        assert len(values) <= 1, f"{what}: answers differ: " + "; ".join(
            f"{x.label}={x.value!r}" for x in done
        )
        self.checks.append(f"{what}: {' = '.join(x.label for x in done)} -> {done[0].value!r}")

    # (a) ---------------------------------------------------------------------------------

    def preview(self) -> None:
        db = self.db
        spec = saves.get(db, workspace_id=WS, name=BIG_RULE_NAME)
        domains = list(spec.filter.value)  # type: ignore[union-attr, arg-type]

        def project() -> tuple[Any, ...]:
            p = preview_service.preview(db, workspace_id=WS, exclusion=spec, now=NOW)
            return (
                p.people_total,
                p.people_matched,
                p.companies_matched,
                p.enrollments_removed,
                p.emails_cancelled,
                tuple(row["email"] for row in p.sample),
                tuple((n.listed, n.present) for n in p.near_misses),
            )

        def hand() -> tuple[Any, ...]:
            h = handsql.preview(db, workspace_id=WS, domains=domains)
            return (
                h.people_total,
                h.people_matched,
                h.companies_matched,
                h.enrollments_removed,
                h.emails_cancelled,
                h.sample,
                h.near_misses,
            )

        a = self.time("a", "project: preview()", project)
        b = self.time("a", "hand-written SQL", hand)
        self.same("(a) preview", a, b)
        ids = pyloop.sample_ids(db, workspace_id=WS, size=self.args.sample_a)
        reached = people_reached(spec, workspace_id=WS, now=NOW)
        in_sample = int(
            db.scalar(
                sa.select(sa.func.count()).select_from(
                    reached.where(reached.selected_columns[0].in_(ids)).subquery()
                )
            )
        )
        loop = self.time(
            "a",
            f"Python loop (evaluate per person, {len(ids):,} sampled, x{self.people / len(ids):g})",
            lambda: pyloop.rule_matches(db, workspace_id=WS, exclusion=spec, ids=ids, now=NOW),
            repeat=min(3, self.args.repeat),
            scale=self.people / len(ids),
        )
        assert loop.value == in_sample, f"(a) loop {loop.value} != SQL {in_sample} on the sample"
        self.checks.append(f"(a) sample of {len(ids):,}: Python loop = project SQL -> {in_sample}")

    # (b) ---------------------------------------------------------------------------------

    def eligible(self) -> None:
        db = self.db

        def where() -> Any:
            return situation(
                db, workspace_id=WS, sequence_id=SEQUENCE_ID, purpose=Purpose.ENROLL, now=NOW
            )

        def count(select: sa.Select[Any]) -> int:
            return int(db.scalar(sa.select(sa.func.count()).select_from(select.subquery())))

        self.time(
            "b", "situation() alone (1,000 exclusions loaded)", lambda: len(where().exclusions)
        )
        hand_query = handsql.eligible_sql(db, workspace_id=WS, sequence_id=SEQUENCE_ID, now=NOW)
        hand = self.time(
            "b",
            "hand-written SQL",
            lambda: handsql.eligible_count(
                db, handsql.eligible_sql(db, workspace_id=WS, sequence_id=SEQUENCE_ID, now=NOW)
            ),
        )
        project = self.time(
            "b",
            "project: count(eligible_people(situation()))",
            lambda: count(eligible_people(where())),
        )
        timings = [project, hand]
        self.same("(b) eligible set", *timings)
        ids = pyloop.sample_ids(db, workspace_id=WS, size=self.args.sample_b)
        in_sample = handsql.eligible_count(db, hand_query, only=ids)
        sit = where()
        loop = self.time(
            "b",
            f"Python loop (facts + decide, {len(ids):,} sampled, x{self.people / len(ids):g})",
            lambda: pyloop.allowed(db, situation=sit, ids=ids),
            repeat=1,
            scale=self.people / len(ids),
        )
        assert loop.value == in_sample, f"(b) loop {loop.value} != SQL {in_sample} on the sample"
        self.checks.append(f"(b) sample of {len(ids):,}: decide() = hand SQL -> {in_sample}")

    # (c), (d) ----------------------------------------------------------------------------

    def subject(self) -> tuple[int, str]:
        """A person at a company with deals whose linked group is the largest, in a deal."""
        p, c, o, oc = t.people, t.companies, t.opportunities, t.opportunity_contacts
        size = (
            sa.select(c.c.group_id, sa.func.count().label("n"))
            .where(c.c.workspace_id == WS)
            .group_by(c.c.group_id)
            .having(sa.func.count() > 1)
            .subquery()
        )
        row = self.db.execute(
            sa.select(p.c.id, p.c.email)
            .join(c, c.c.id == p.c.company_id)
            .join(size, size.c.group_id == c.c.group_id)
            .where(
                sa.exists().where(o.c.company_id == c.c.id),
                sa.exists().where(oc.c.person_id == p.c.id),
            )
            .order_by(size.c.n.desc(), p.c.id)
            .limit(1)
        ).one()
        return int(row.id), str(row.email)

    def explain(self) -> None:
        db = self.db
        person_id, email = self.subject()

        def run() -> tuple[bool, int]:
            found = explain(db, workspace_id=WS, email=email, sequence=SEQUENCE_NAME, now=NOW)
            return found.decision.allowed, len(found.decision.outcomes)

        def outcomes() -> list[str]:
            found = explain(db, workspace_id=WS, email=email, sequence=SEQUENCE_NAME, now=NOW)
            return [f"{o.status}: {o.summary}" for o in found.decision.outcomes]

        filters._load.cache_clear()
        cold = self.time("c", "explain(), cold (filter cache empty)", run, repeat=1)
        warm = self.time("c", "explain()", run, repeat=max(self.args.repeat, 20))
        expected = outcomes()
        assert outcomes() == expected
        sit = situation(
            db, workspace_id=WS, sequence_id=SEQUENCE_ID, purpose=Purpose.ENROLL, now=NOW
        )
        self.time(
            "c",
            "  situation() part",
            lambda: len(
                situation(
                    db, workspace_id=WS, sequence_id=SEQUENCE_ID, purpose=Purpose.ENROLL, now=NOW
                ).exclusions
            ),
            repeat=20,
        )
        self.time(
            "c",
            "  facts() part",
            lambda: len(
                facts(db, workspace_id=WS, person_ids=[person_id], sequence_id=SEQUENCE_ID)
            ),
            repeat=20,
        )
        known = facts(db, workspace_id=WS, person_ids=[person_id], sequence_id=SEQUENCE_ID)
        one = known[person_id]
        self.time(
            "c",
            "  decide() part",
            lambda: decide(one, sit).allowed,
            repeat=max(20, self.args.repeat),
        )
        self.same("(c) explain", cold, warm)
        hand_query = handsql.eligible_sql(db, workspace_id=WS, sequence_id=SEQUENCE_ID, now=NOW)
        hand = self.time(
            "c",
            "hand-written SQL for this one person",
            lambda: handsql.eligible_count(db, hand_query, only=[person_id]) == 1,
        )
        assert hand.value == warm.value[0], "(c) explain and the hand-written SQL disagree"
        self.checks.append(
            f"(c) {email} (person {person_id}, group of {len(one.company_group)} companies): "
            f"explain allowed={warm.value[0]} with {warm.value[1]} outcomes = hand SQL"
        )
        if "d" in self.args.only:
            self.enroll_one(person_id, warm.value[0])

    def enroll_one(self, person_id: int, allowed: bool) -> None:
        """`enrolling.enroll` for one person, the service call the CLI makes (rolled back)."""
        db = self.db

        def project() -> bool:
            with db.begin_nested() as unit:
                result = enrolling.enroll(
                    db,
                    workspace_id=WS,
                    sequence_id=SEQUENCE_ID,
                    people=[person_id],
                    actor="bench",
                    now=NOW,
                )
                unit.rollback()
            return result.enrolled == 1

        run = self.time("d", "project: enrollments.enroll(one person)", project, repeat=9)
        if run.limit_hit is None:
            assert run.value == allowed, "(d) enroll and explain disagree"

    # (i) the decision index ----------------------------------------------------------------

    def index(self) -> None:
        """Building the stored matches as the product does after a bulk load (statistics,
        then every rule computed once), and keeping them true on a one-person write."""
        db = self.db
        stored = decision_index.unstored(db, workspace_id=WS)

        def build() -> int:
            with db.begin_nested():
                statistics.analyze(db)
                return decision_index.advance(db, workspace_id=WS, now=NOW)

        if stored:
            self.time(
                "i", f"build: statistics + {stored:,} rules stored", build, repeat=1, limit=7200
            )
            db.commit()
        person_id, _ = self.subject()
        titles = ["Head of Operations", "VP Sales", "Office Manager"]

        def update_one() -> int:
            with db.begin_nested() as unit:
                p = t.people
                title = titles[len(self.timings) % len(titles)]
                db.execute(p.update().where(p.c.id == person_id).values(title=title))
                decision_index.flush(db)
                matched = len(
                    db.scalars(
                        sa.select(t.exclusion_matches.c.exclusion_id).where(
                            t.exclusion_matches.c.person_id == person_id
                        )
                    ).all()
                )
                unit.rollback()
            return matched

        self.time("i", "one person updated, rules re-matched (flush)", update_one, repeat=21)
        small = decision_index.SMALL_QUEUE
        decision_index.SMALL_QUEUE = 0
        try:
            self.time(
                "i",
                "  the same, re-matched in set-based SQL (the path for bulk writes)",
                update_one,
                repeat=5,
            )
        finally:
            decision_index.SMALL_QUEUE = small


def machine(db: Connection) -> dict[str, Any]:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    info = {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sa.__version__,
        "platform": platform.platform(),
        "load_average_at_start": os.getloadavg(),
        "database": db.dialect.name,
    }
    if db.dialect.name == "postgresql":
        info["postgresql"] = db.exec_driver_sql("SHOW server_version").scalar()
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], capture_output=True, text=True)
    info["commit"] = head.stdout.strip() + (
        " + uncommitted changes in src/" if dirty.stdout else ""
    )
    return info


def analyzed_copy(url: str, progress: Progress) -> str:
    """A copy of the cached SQLite file with planner statistics, cached beside it."""
    source = Path(sa.make_url(url).database or "")
    target = source.with_name(source.stem + "-analyzed.sqlite3")
    if not target.exists():
        tmp = target.with_name(target.name + ".building")
        shutil.copyfile(source, tmp)
        raw = sqlite3.connect(tmp)
        raw.execute("ANALYZE")
        raw.close()
        os.replace(tmp, target)
        progress.say(f"ANALYZE on a copy: {target.name}")
    return f"sqlite:///{target}"


def report(bench: Bench, info: dict[str, Any], command: str) -> str:
    lines = [f"command: {command}", f"machine: {json.dumps(info)}", ""]
    lines.append("| | measurement | median s | min s | runs | vs Python loop | vs hand SQL |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for section in "iabcd":
        rows = [x for x in bench.timings if x.section == section]
        loop = next((x for x in rows if x.label.startswith("Python loop")), None)
        hand = next((x for x in rows if x.label.startswith("hand-written")), None)
        for x in rows:
            vs_loop = _ratio(x, loop) if x is not loop else ""
            vs_hand = _ratio(x, hand) if x is not hand else ""
            lines.append(
                f"| {section} | {x.label} | {x.shown('median')} | {x.shown('min')} | "
                f"{len(x.runs)} | {vs_loop} | {vs_hand} |"
            )
    lines += ["", "checks (asserted):", *(f"- {c}" for c in bench.checks)]
    return "\n".join(lines)


def _ratio(x: Timing, base: Timing | None) -> str:
    if base is None or base.median is None:
        return ""
    if x.limit_hit is not None:
        return f"> {x.limit_hit / base.median:.3g}x"
    assert x.median is not None
    return f"{x.median / base.median:.3g}x"


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    params = Params(
        people=args.people,
        companies=args.companies or max(10, args.people // 10),
        exclusions=args.exclusions,
        seed=args.seed,
    )
    progress = Progress()
    url = prepare(params, url=args.database_url, reuse=args.reuse, progress=progress)
    if args.analyze:
        url = analyzed_copy(url, progress)
    engine = create_engine(url)
    missing = ensure_indexes(engine)
    if missing:
        progress.say(f"created indexes declared in tables.py but not in migrations: {missing}")
    command = " ".join(["python -m bench.run", *(argv if argv is not None else sys.argv[1:])])
    with engine.connect() as db:
        info = machine(db)
        bench = Bench(db, args, params.people)
        sections = {
            "i": bench.index,
            "a": bench.preview,
            "b": bench.eligible,
            "c": bench.explain,
        }
        for key, run in sections.items():
            if key in args.only:
                progress.say(f"section ({key})")
                run()
        if "d" in args.only and "c" not in args.only:
            person_id, _ = bench.subject()
            bench.enroll_one(person_id, allowed=_allowed(db, person_id))
    engine.dispose()
    text = report(bench, info, command)
    print(text)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = out / f"{stamp}-{params.key()}-{info['database']}.json"
    path.write_text(
        json.dumps(
            {
                "command": command,
                "machine": info,
                "timings": [x.as_dict() for x in bench.timings],
                "checks": bench.checks,
            },
            indent=2,
        )
    )
    progress.say(f"results in {path.relative_to(ROOT)}")


def _allowed(db: Connection, person_id: int) -> bool:
    query = handsql.eligible_sql(db, workspace_id=WS, sequence_id=SEQUENCE_ID, now=NOW)
    return handsql.eligible_count(db, query, only=[person_id]) == 1


if __name__ == "__main__":
    main()
