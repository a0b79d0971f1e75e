"""Company association benchmark: a CSV import of N people with an email column only,
with association by email domain against the same import without it.

Three imports of the same file, each into a new workspace of one database:

- baseline: the association step skipped (the import as it was before association);
- association, creating companies: no company exists, so the import creates one per
  email domain (the default setting) and links everyone but the free-mail addresses;
- association, companies exist: the companies were imported beforehand, the import
  only links.

    .venv/bin/python -m bench.association                       # SQLite file under var/bench
    .venv/bin/python -m bench.association --people 10000
    .venv/bin/python -m bench.association --database-url postgresql+psycopg://...
    .venv/bin/python -m bench.association --write                # and update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.services import workspaces
from optout.services.directory import association
from optout.services.imports import company_files, people_files

ROOT = Path(__file__).resolve().parent.parent
HEADING = "## Company association"
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com")


@dataclass
class Run:
    name: str
    seconds: list[float]
    linked: int
    companies: int

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def people_csv(people: int, domains: int, personal_every: int) -> str:
    """`Email` only; one address in `personal_every` at a free-mail provider."""
    lines = ["Email"]
    for n in range(people):
        if personal_every and n % personal_every == 0:
            domain = FREE_MAIL[n % len(FREE_MAIL)]
        else:
            domain = f"company{n % domains:05d}.example"
        lines.append(f"person{n:07d}@{domain}")
    return "\n".join(lines) + "\n"


def companies_csv(domains: int) -> str:
    return "Domain\n" + "".join(f"company{n:05d}.example\n" for n in range(domains))


@contextmanager
def association_skipped() -> Iterator[None]:
    """The baseline: the import with its association step replaced by a no-op."""

    def skip(*args: Any, **kwargs: Any) -> association.Association:
        return association.NOTHING

    original = people_files.association.associate
    people_files.association.associate = skip  # type: ignore[assignment]
    try:
        yield
    finally:
        people_files.association.associate = original  # type: ignore[assignment]


def _import(engine: Engine, kind: str, text: str, ws: int, mapping: str) -> float:
    stream = io.StringIO(text, newline="")
    call = people_files.import_people if kind == "people" else company_files.import_companies
    started = time.perf_counter()
    with engine.begin() as db:
        report = call(
            db,
            workspace_id=ws,
            source=stream,
            mapping=people_files.parse_mapping([mapping]),
            actor="bench",
            now=utcnow(),
        )
    seconds = time.perf_counter() - started
    if report.errors:
        raise SystemExit(f"the {kind} import was refused: {report.errors[:3]}")
    return seconds


def _workspace(engine: Engine) -> int:
    with engine.begin() as db:
        ws = workspaces.create(
            db, slug=f"bench-{uuid.uuid4().hex[:8]}", name="Association bench", now=utcnow()
        )
    return ws.id


def _counts(engine: Engine, ws: int) -> tuple[int, int]:
    p, c = t.people, t.companies
    with engine.connect() as db:
        linked = db.scalar(
            sa.select(sa.func.count()).where(p.c.workspace_id == ws, p.c.company_id.is_not(None))
        )
        companies = db.scalar(sa.select(sa.func.count()).where(c.c.workspace_id == ws))
    return int(linked or 0), int(companies or 0)


def measure(engine: Engine, name: str, people: str, *, skip: bool, companies: str | None) -> Run:
    ws = _workspace(engine)
    if companies is not None:
        _import(engine, "companies", companies, ws, "Domain=domain")
    if skip:
        with association_skipped():
            seconds = _import(engine, "people", people, ws, "Email=email")
    else:
        seconds = _import(engine, "people", people, ws, "Email=email")
    return Run(name, [seconds], *_counts(engine, ws))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--personal-every", type=int, default=10, help="1 in N at free mail")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = parser.parse_args(argv)

    url = args.database_url
    if not url:
        path = ROOT / "var" / "bench" / "association.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob("association.sqlite3*"):
            stale.unlink()
        url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine)
    people = people_csv(args.people, args.domains, args.personal_every)
    companies = companies_csv(args.domains)
    plans = [
        ("without association (baseline)", True, None),
        ("association, creating companies", False, None),
        ("association, companies exist", False, companies),
    ]
    runs = {name: Run(name, [], 0, 0) for name, _, _ in plans}
    say("warming up: a small import of each variant")
    small = "\n".join(people.splitlines()[:2001]) + "\n"
    for name, skip, existing in plans:
        measure(engine, name, small, skip=skip, companies=existing)
    for round_ in range(args.repeat):
        # Interleaved, so that a busy machine weighs on every variant alike.
        for name, skip, existing in plans:
            say(f"round {round_ + 1}: {name}")
            run = measure(engine, name, people, skip=skip, companies=existing)
            runs[name].seconds += run.seconds
            runs[name].linked, runs[name].companies = run.linked, run.companies
    engine.dispose()
    text = report(list(runs.values()), args, url)
    print(text)
    if args.write:
        write(text)


def report(runs: list[Run], args: argparse.Namespace, url: str) -> str:
    backend = sa.make_url(url).get_backend_name()
    base = runs[0].median
    lines = [
        HEADING,
        "",
        f"`bench/association.py`: a CSV import of {args.people:,} people with an email column "
        f"only, at {args.domains:,} company domains, 1 in {args.personal_every} at a free-mail "
        f"provider, into {backend}; each variant into a new workspace, {args.repeat} rounds "
        "interleaved after a warm-up, median shown. "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}.",
        "",
        "| import | seconds (median) | runs | against the baseline | people linked | companies |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for run in runs:
        shown = ", ".join(f"{s:.1f}" for s in run.seconds)
        lines.append(
            f"| {run.name} | {run.median:.1f} | {shown} | {run.median / base:.2f}x | "
            f"{run.linked:,} | {run.companies:,} |"
        )
    lines.append("")
    return "\n".join(lines)


def write(section: str) -> None:
    """Replace this benchmark's section at the end of BENCHMARKS.md, or append it."""
    path = ROOT / "BENCHMARKS.md"
    current = path.read_text("utf-8") if path.exists() else ""
    if HEADING in current:
        current = current[: current.index(HEADING)].rstrip() + "\n"
    joined = (current.rstrip() + "\n\n" if current.strip() else "") + section
    path.write_text(joined, "utf-8")
    say(f"wrote the {HEADING[3:]} section of {path}")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
