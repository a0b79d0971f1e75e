"""CRM sync benchmark: 100,000 changed HubSpot contacts through the real connector and the
real sync engine, over HTTP.

The HubSpot emulator of the test suite (`tests/crm/emulators/hubspot.py`) runs in this
process under uvicorn on a free local port, with no rate limit of its own, so the figures
measure optout: paging, staging each page, the set-based upserts, opt-outs and the R14
re-check. Two runs: the first sync (every contact new), then a sync after every contact
changed (a title for all, an opt-out for 1%, a title an enforced exclusion matches for
1%), with enrollments active so the re-check has work to do.

    .venv/bin/python -m bench.crm_sync                      # SQLite file under var/bench
    .venv/bin/python -m bench.crm_sync --database-url postgresql+psycopg://...
    .venv/bin/python -m bench.crm_sync --contacts 10000 --write   # and update BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import math
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from tests.crm.emulators.hubspot import HubSpot
from tests.web.conftest import serving

from optout.clock import utcnow
from optout.crm import connections, sync
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.services import workspaces
from optout.services.enrollments import enrolling
from optout.services.exclusions import saves
from optout.services.sequences import definitions, rulesets

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "pat-na1-bench"
HEADING = "## CRM sync"
SEARCH_PER_SECOND = 4  # HubSpot's documented search limit per token


@dataclass
class Run:
    name: str
    seconds: float
    contacts: int
    calls: dict[str, int]  # search calls per object
    total_calls: int
    minimum: dict[str, int]
    unenrolled: int
    opted_out: int

    @property
    def rate(self) -> float:
        return self.contacts / self.seconds if self.seconds else 0.0


def _portal(contacts: int, companies: int) -> tuple[HubSpot, list[str]]:
    hubspot = HubSpot(token=TOKEN)
    company_ids = [
        hubspot.company(f"company{n:05d}.example", f"Company {n}") for n in range(companies)
    ]
    contact_ids = []
    for n in range(contacts):
        contact_ids.append(
            hubspot.create(
                "contacts",
                email=f"person{n:06d}@company{n % companies:05d}.example",
                firstname=f"First{n}",
                lastname=f"Last{n}",
                jobtitle="Engineer",
                associatedcompanyid=company_ids[n % companies],
            )
        )
    return hubspot, contact_ids


def _workspace(engine: Engine) -> tuple[int, int]:
    now = utcnow()
    with engine.begin() as db:
        ws = workspaces.create(db, slug=f"bench-{uuid.uuid4().hex[:8]}", name="CRM bench", now=now)
        rulesets.create(db, workspace_id=ws.id, name="Default", now=now)
        sequence_id = definitions.create(
            db,
            workspace_id=ws.id,
            name="Outbound",
            ruleset="Default",
            steps=[definitions.Step(kind="email", subject="Hi", body_text="Hello")],
            from_address="bench@optout.example",
            now=now,
        )
        saves.create(
            db,
            workspace_id=ws.id,
            name="Churned",
            level="people",
            filter='person.title = "Churned"',
            exclude_from_sequences=True,
            actor="bench",
            now=now,
            confirm=True,
        )
    return ws.id, sequence_id


def _run(
    name: str,
    engine: Engine,
    hubspot: HubSpot,
    ws: int,
    connection_id: int,
    contacts: int,
    companies: int,
    page: int,
) -> Run:
    before = dict(hubspot.calls)
    with engine.connect() as db:
        connection = connections.by_id(db, connection_id=connection_id)
        fields = connections.mappings(db, connection_id=connection_id)
    connector = connections.connector_for(connection, fields, {"BENCH_HUBSPOT_TOKEN": TOKEN})
    started = time.perf_counter()
    [report] = sync.sync_workspace(engine, workspace_id=ws, connectors={connection_id: connector})
    seconds = time.perf_counter() - started
    connector.close()
    if report.status != "ok":
        raise SystemExit(f"{name}: sync {report.status}: {report.error}")
    calls = {
        obj: hubspot.calls[f"POST /crm/v3/objects/{obj}/search"]
        - before.get(f"POST /crm/v3/objects/{obj}/search", 0)
        for obj in ("companies", "contacts", "deals")
    }
    minimum = {
        "companies": max(1, math.ceil(companies / page)),
        "contacts": math.ceil(contacts / page),
    }
    minimum["deals"] = 1
    return Run(
        name,
        seconds,
        report.applied.by_object.get("contacts", 0),
        calls,
        report.api_calls,
        minimum,
        report.applied.unenrolled,
        report.applied.opted_out,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=1_000)
    parser.add_argument("--enrolled", type=int, default=20_000)
    parser.add_argument("--page", type=int, default=200, help="search page size (HubSpot max 200)")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--write", action="store_true", help="update the section in BENCHMARKS.md")
    args = parser.parse_args(argv)

    url = args.database_url
    if not url:
        path = ROOT / "var" / "bench" / "crm-sync.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob("crm-sync.sqlite3*"):
            stale.unlink()
        url = f"sqlite:///{path}"
    engine = create_engine(url)
    upgrade(engine)
    say(f"building the portal: {args.companies:,} companies, {args.contacts:,} contacts")
    hubspot, contact_ids = _portal(args.contacts, args.companies)
    ws, sequence_id = _workspace(engine)
    runs: list[Run] = []
    with serving(hubspot.app) as base:
        with engine.begin() as db:
            connection = connections.connect(
                db,
                workspace_id=ws,
                kind="hubspot",
                base_url=base,
                secrets={"token": "BENCH_HUBSPOT_TOKEN"},
                settings={
                    "search_page_size": args.page,
                    "requests_per_10s": None,
                    "search_per_second": None,
                },
                now=utcnow(),
            )
        say("first sync: every contact new")
        runs.append(_run("first sync (all new)", engine, hubspot, ws, connection.id,
                         args.contacts, args.companies, args.page))  # fmt: skip
        say(f"enrolling {args.enrolled:,} people")
        with engine.begin() as db:
            ids = list(
                db.scalars(
                    sa.select(t.people.c.id)
                    .where(t.people.c.workspace_id == ws)
                    .order_by(t.people.c.id)
                    .limit(args.enrolled)
                )
            )
            enrolling.enroll(db, workspace_id=ws, sequence_id=sequence_id, people=ids,
                               actor="bench", now=utcnow())  # fmt: skip
        say("changing every contact in the CRM")
        for n, contact_id in enumerate(contact_ids):
            change: dict[str, object] = {"jobtitle": "Senior Engineer"}
            if n % 100 == 1:
                change["jobtitle"] = "Churned"
            if n % 100 == 2:
                change["hs_email_optout"] = True
            hubspot.update("contacts", contact_id, **change)
        say("second sync: every contact changed")
        runs.append(_run("sync after every contact changed", engine, hubspot, ws, connection.id,
                         args.contacts, 0, args.page))  # fmt: skip
    engine.dispose()
    text = report(runs, args, url)
    print(text)
    if args.write:
        write(text)


def report(runs: list[Run], args: argparse.Namespace, url: str) -> str:
    backend = sa.make_url(url).get_backend_name()
    lines = [
        HEADING,
        "",
        f"`bench/crm_sync.py`: {args.contacts:,} HubSpot contacts at {args.companies:,} "
        f"companies, through the real connector and sync engine over HTTP to the in-process "
        f"HubSpot emulator (uvicorn, no rate limit), into {backend}; search pages of "
        f"{args.page}; {args.enrolled:,} people enrolled before the second run, with one "
        "enforced people-level exclusion. "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}.",
        "",
        "| run | contacts | seconds | contacts/s | contact searches (minimum) | all API calls "
        "| opted out | unenrolled |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        lines.append(
            f"| {run.name} | {run.contacts:,} | {run.seconds:.1f} | {run.rate:,.0f} | "
            f"{run.calls['contacts']:,} ({run.minimum['contacts']:,}) | {run.total_calls:,} | "
            f"{run.opted_out:,} | {run.unenrolled:,} |"
        )
    searches = runs[-1].calls["contacts"]
    lines += [
        "",
        "Contact searches exceed the minimum the page size allows by the keyset re-anchoring: "
        "each page starts at the last modification time read and re-reads the records at "
        "that instant (usually one), which keeps paging correct while records change and "
        "never reaches the 10,000-result search cap. At HubSpot's documented search limit "
        f"of {SEARCH_PER_SECOND} requests a second, {searches:,} searches take at least "
        f"{searches / SEARCH_PER_SECOND:,.0f} s against the real API: there, the rate limit, "
        "not optout, bounds a 100,000-contact sync.",
        "",
    ]
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
