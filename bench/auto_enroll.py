"""Sequences that enroll by themselves, at scale: what 20 actively enrolling sequences on
audiences of about 10% of the workspace each add to the writes that keep them true.

On a copy of the generated workspace (`bench.generate`, 1,000 exclusions; the stored
matches computed first, as a running product keeps them), each operation is measured
twice in the same run: first with no sequence enrolling by itself (the baseline), then
with the 20 sequences switched on. Measured:

1. a CRM sync page of 200 changed contacts through `crm.apply.apply_records` (the path
   every sync page and webhook takes) and the flush before its commit;
2. one person's title changed through `services.directory.people.update`: the flush before commit;
3. an audience edit (`audiences.update` with a new filter) and its flush;
4. the time from the commit of a new matching person to the pass's decision about them,
   with the pass (`automatic.run`) looping in another thread;
5. switching one sequence on (its 100,000-odd members stored and queued), and the passes
   that enroll its queue in batches of `automatic.BATCH`, against the same
   people enrolled by hand (`enrollments.enrolling.enroll`, the same batches).

    .venv/bin/python -m bench.auto_enroll --people 100000
    .venv/bin/python -m bench.auto_enroll                     # 1,000,000 people, SQLite
    .venv/bin/python -m bench.auto_enroll --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bench.generate import WORKSPACE_ID, Params
from bench.load import CACHE, ROOT, Progress, prepare
from optout.clock import utcnow
from optout.crm import connections
from optout.crm.apply import apply_records
from optout.crm.protocol import Record
from optout.crm.records import Target
from optout.db import engine as db_engine
from optout.db import statistics as db_statistics
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.filters import Level
from optout.services import audience_index, decision_index
from optout.services.directory import people
from optout.services.enrollments import automatic, enrolling
from optout.services.filters import load
from optout.services.sequences import audiences, auto_enroll, definitions

WS = WORKSPACE_ID
HEADING = "## Sequences that enroll by themselves at scale (`bench/auto_enroll.py`)"
PAGE = 200
TOKEN_ENV = "BENCH_AUTO_HUBSPOT_TOKEN"


def _cond(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"field": field, "op": op, "value": value}


# Twenty audiences of about 10% of the generated people each (sizes from the generator's
# weights in `bench/shapes.py`, measured at 100,000 people): four on the lead status,
# six on the lead source (each ~8%), five on two industries of the person's company (so a
# company's change re-matches them), four on a word of the title, one on a custom field.
AUDIENCES: list[tuple[str, dict[str, Any]]] = [
    ("Status new", _cond("person.status", "eq", "New")),
    ("Status nurturing", _cond("person.status", "eq", "Nurturing")),
    ("Status working", _cond("person.status", "in", ["Working", "Former Customer", "Partner"])),
    ("Status qualified", _cond("person.status", "in", ["Qualified", "Unqualified"])),
    *[
        (f"Source {source.lower()}", _cond("person.fields.lead_source", "eq", source))
        for source in ("Webinar", "Trade Show", "Inbound", "Outbound", "Partner", "Purchased List")
    ],
    *[
        (f"Industry {' and '.join(pair).lower()}", _cond("company.fields.industry", "in", pair))
        for pair in (
            ["Consulting", "Media"],
            ["Healthcare", "Staffing"],
            ["Manufacturing", "Logistics"],
            ["Financial Services", "Telecommunications"],
            ["Education", "Energy"],
        )
    ],
    *[
        (f"Title {word.lower()}", _cond("person.title", "contains", word))
        for word in ("Sales", "Marketing", "Engineering", "Director")
    ],
    ("Persona buyers", _cond("person.fields.persona", "in", ["champion", "economic buyer"])),
]
# The audience edit: the first audience's filter (`Status new`, ~12%) becomes the first of
# these (~10%); the second is its own filter, the status of the new people of the latency
# measure.
EDITS = [_cond("person.status", "eq", "Nurturing"), _cond("person.status", "eq", "New")]
# Titles a changed contact or person takes in turn: each moves people between audiences.
TITLES = ["Director of Sales", "Marketing Manager", "Engineering Lead"]


@dataclass
class Measure:
    label: str
    runs: list[float] = field(default_factory=list)
    note: str = ""
    # The process's CPU seconds of each run, where measured: on a loaded machine the
    # seconds waited for a core are most of the wall time.
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.runs) if self.runs else float("nan")


@dataclass
class Pair:
    """One operation without and with the sequences enrolling by themselves."""

    label: str
    target: str
    base: Measure
    auto: Measure | None = None
    met: Callable[[Pair], bool] | None = None

    @property
    def extra(self) -> float:
        assert self.auto is not None
        return self.auto.median - self.base.median

    @property
    def ratio(self) -> float:
        assert self.auto is not None
        return self.auto.median / self.base.median if self.base.median else float("nan")


@dataclass
class Result:
    people: int
    backend: str
    command: str
    load: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    pairs: dict[str, Pair] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _uptime() -> str:
    try:
        first = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "unknown"
    return f"{time.strftime('%H:%M:%S')} load average {', '.join(first)}"


def _seconds(value: float) -> str:
    if value != value:  # nan
        return "-"
    if abs(value) >= 10:
        return f"{value:.1f} s"
    if abs(value) >= 1:
        return f"{value:.2f} s"
    return f"{value * 1000:.1f} ms"


# Every flush of the decision index, timed (wall and CPU seconds): the one called by the
# writes themselves (`fresh_rules`, before a re-check) and the one before each commit.
FLUSHES: list[float] = []
FLUSHES_CPU: list[float] = []


def time_flushes() -> None:
    original = decision_index.flush

    def timed(db: Connection) -> None:
        started, cpu = time.perf_counter(), time.process_time()
        try:
            original(db)
        finally:
            FLUSHES.append(time.perf_counter() - started)
            FLUSHES_CPU.append(time.process_time() - cpu)

    decision_index.flush = timed  # type: ignore[assignment]
    hooks = db_engine._BEFORE_COMMIT
    hooks[:] = [timed if hook is original else hook for hook in hooks]


# The workspace --------------------------------------------------------------------------


def _backup(source: Path, copy: Path) -> None:
    """SQLite's backup API: a consistent copy even of a WAL database someone is reading."""
    for stale in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
        stale.unlink(missing_ok=True)
    with sqlite3.connect(source) as original, sqlite3.connect(copy) as target:
        original.backup(target)


@contextlib.contextmanager
def _copy(source_url: str, key: str, progress: Progress) -> Iterator[str]:
    """A throwaway copy of the generated workspace at `source_url` with its stored matches
    computed, dropped afterwards. On SQLite the settled workspace is kept beside the
    generated one (`auto-enroll-<key>-settled.sqlite3`) and copied on the next run."""
    source = sa.make_url(source_url)
    if source.get_backend_name() == "sqlite":
        assert source.database is not None
        settled = CACHE / f"auto-enroll-{key}-settled.sqlite3"
        copy = CACHE / f"auto-enroll-{key}.sqlite3"
        if settled.exists() and _generated(settled) == _generated(Path(source.database)):
            progress.say(f"reusing the settled copy {settled.relative_to(ROOT)}")
            _backup(settled, copy)
            _upgrade(f"sqlite:///{copy}")
        else:
            _backup(Path(source.database), copy)
            _settle(f"sqlite:///{copy}", progress)
            _backup(copy, settled)
        try:
            yield f"sqlite:///{copy}"
        finally:
            for stale in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
                stale.unlink(missing_ok=True)
        return
    name = f"{source.database}_auto_enroll"
    admin = create_engine(source.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
            db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            db.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source.database}"')
        try:
            url = source.set(database=name).render_as_string(hide_password=False)
            _settle(url, progress)
            yield url
        finally:
            with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as db:
                db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _generated(path: Path) -> str | None:
    """What the generator wrote into a file (`bench_meta`: the parameters and the
    generator's fingerprint); a settled copy carries its source's. A migration changes
    neither, so a settled copy is reused across migrations, brought up to date with them
    as the generated file is."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            row = db.execute("SELECT key FROM bench_meta").fetchone()
        except sqlite3.OperationalError:
            return None
    return str(row[0]) if row else None


def _upgrade(url: str) -> None:
    engine = create_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()


def _settle(url: str, progress: Progress) -> None:
    engine = create_engine(url)
    try:
        started = time.perf_counter()
        rules = settle(engine, utcnow())
        progress.say(f"{rules} rules stored in {time.perf_counter() - started:.0f} s")
    finally:
        engine.dispose()


def settle(engine: Engine, now: datetime) -> int:
    """Planner statistics and every rule's stored matches, as the product keeps them."""
    with engine.begin() as db:
        db_statistics.analyze(db)
        return decision_index.advance(db, workspace_id=WS, now=now)


def setup(engine: Engine, now: datetime) -> tuple[list[int], Target]:
    """The 20 audiences, a sequence on each (not enrolling by itself yet), and a HubSpot
    connection whose mappings the CRM pages go through."""
    with engine.begin() as db:
        ruleset = db.scalar(
            sa.select(t.rulesets.c.name).where(t.rulesets.c.workspace_id == WS).order_by("id")
        )
        assert ruleset is not None
        ids = []
        for name, filter_ in AUDIENCES:
            audiences.create(db, workspace_id=WS, name=name, filter=filter_, now=now)
            ids.append(
                definitions.create(
                    db,
                    workspace_id=WS,
                    name=f"Auto {name}",
                    ruleset=ruleset,
                    audience=name,
                    steps=[definitions.Step(kind="email", subject="Hi", body_text="Hello")],
                    from_address="auto@bench.example",
                    now=now,
                )
            )
        connection = connections.connect(
            db,
            workspace_id=WS,
            kind="hubspot",
            base_url="http://127.0.0.1:9",
            secrets={"token": TOKEN_ENV},
            now=now,
        )
        fields = connections.mappings(db, connection_id=connection.id)
    connector = connections.connector_for(connection, fields, {TOKEN_ENV: "unused"})
    objects = connector.objects
    connector.close()
    return ids, Target(WS, connection.id, connection.kind, objects, fields)


def sizes(engine: Engine, now: datetime) -> tuple[dict[str, int], Measure]:
    """Each audience's members, counted from scratch; the time of each count is the
    baseline of switching a sequence on."""
    out = {}
    timing = Measure("counting an audience's members from scratch")
    a = t.audiences
    with engine.connect() as db:
        for name, _ in AUDIENCES:
            audience_id, filter_ = db.execute(
                sa.select(a.c.id, a.c.filter).where(a.c.workspace_id == WS, a.c.name == name)
            ).one()
            audience = audience_index.StoredAudience(
                id=audience_id, node=load(filter_, Level.PEOPLE), matched_at=now
            )
            started = time.perf_counter()
            members = audience_index.members(audience, workspace_id=WS, now=now).subquery()
            out[name] = int(db.scalar(sa.select(sa.func.count()).select_from(members)) or 0)
            timing.runs.append(time.perf_counter() - started)
    return out, timing


# The measured operations ----------------------------------------------------------------


def _pages(engine: Engine, count: int) -> list[list[tuple[Any, ...]]]:
    """`count` pages of 200 people spread over the workspace (their email, names, status)."""
    p = t.people
    with engine.connect() as db:
        total = int(db.scalar(sa.select(sa.func.max(p.c.id)).where(p.c.workspace_id == WS)) or 0)
        step = max(1, total // (count * PAGE))
        rows = db.execute(
            sa.select(p.c.email, p.c.first_name, p.c.last_name, p.c.status, p.c.crm_id)
            .where(p.c.workspace_id == WS, p.c.id % step == 0)
            .order_by(p.c.id)
            .limit(count * PAGE)
        ).all()
    return [[tuple(r) for r in rows[i * PAGE : (i + 1) * PAGE]] for i in range(count)]


def crm_page(engine: Engine, target: Target, pages: list[list[tuple[Any, ...]]]) -> Measure:
    """Apply each page (titles changed) and flush, as a sync page's transaction does;
    rolled back, so both arms see the same data."""
    measure = Measure("CRM sync page of 200 changed contacts (apply + flush)")
    for n, page in enumerate(pages):
        now = utcnow()
        records = [
            Record(
                object="contacts",
                id=crm_id or f"bench-{email}",
                modified_at=now,
                values={
                    "email": email,
                    "firstname": first,
                    "lastname": last,
                    "jobtitle": TITLES[(n + i) % len(TITLES)],
                    "hs_lead_status": status,
                },
            )
            for i, (email, first, last, status, crm_id) in enumerate(page)
        ]
        with engine.connect() as db:
            transaction = db.begin()
            started, cpu = time.perf_counter(), time.process_time()
            applied = apply_records(db, target, records, now=now, dedupe=False)
            decision_index.flush(db)
            measure.runs.append(time.perf_counter() - started)
            measure.cpu.append(time.process_time() - cpu)
            transaction.rollback()
        assert applied.updated > 0, applied
    return measure


def one_write(engine: Engine, person_ids: list[int], repeat: int) -> tuple[Measure, Measure]:
    """A title changed through `people.update`, committed; every flush of it timed."""
    flush = Measure("one person's title changed: its flushes")
    whole = Measure("one person's title changed: update + flush + commit")
    for n in range(repeat):
        person_id = person_ids[n % len(person_ids)]
        started, cpu = time.perf_counter(), time.process_time()
        FLUSHES.clear()
        FLUSHES_CPU.clear()
        with engine.begin() as db:
            people.update(
                db,
                workspace_id=WS,
                person_id=person_id,
                changes={"title": TITLES[n % len(TITLES)]},
                actor="bench",
                now=utcnow(),
            )
        whole.runs.append(time.perf_counter() - started)
        whole.cpu.append(time.process_time() - cpu)
        flush.runs.append(sum(FLUSHES))
        flush.cpu.append(sum(FLUSHES_CPU))
    return flush, whole


def audience_edit(engine: Engine, repeat: int) -> Measure:
    """The first audience's filter changed (`Status new` becomes `Nurturing`) and flushed;
    rolled back, so every run makes the same change."""
    measure = Measure("audience edit re-matching everyone (update + flush)")
    name = AUDIENCES[0][0]
    with engine.connect() as db:
        audience_id = int(
            db.scalar(
                sa.select(t.audiences.c.id).where(
                    t.audiences.c.workspace_id == WS, t.audiences.c.name == name
                )
            )
            or 0
        )
    for _ in range(repeat):
        with engine.connect() as db:
            transaction = db.begin()
            started, cpu = time.perf_counter(), time.process_time()
            audiences.update(
                db,
                workspace_id=WS,
                audience_id=audience_id,
                name=name,
                filter=EDITS[0],
                persona=None,
                actor="bench",
                now=utcnow(),
            )
            decision_index.flush(db)
            measure.runs.append(time.perf_counter() - started)
            measure.cpu.append(time.process_time() - cpu)
            transaction.rollback()
    return measure


def switch_on(engine: Engine, sequence_id: int) -> float:
    with engine.connect() as db:
        name = db.scalar(sa.select(t.sequences.c.name).where(t.sequences.c.id == sequence_id))
    started = time.perf_counter()
    with engine.begin() as db:
        auto_enroll.switch(
            db, workspace_id=WS, sequence=str(name), on=True, actor="bench", now=utcnow()
        )
    return time.perf_counter() - started


def queued(engine: Engine, sequence_id: int | None = None) -> int:
    q = t.enrollment_queue
    with engine.connect() as db:
        query = sa.select(sa.func.count()).select_from(q).where(q.c.workspace_id == WS)
        if sequence_id is not None:
            query = query.where(q.c.sequence_id == sequence_id)
        return int(db.scalar(query) or 0)


def by_hand(engine: Engine, sequence_id: int, batches: int) -> Measure:
    """The baseline of the pass: the first queued people enrolled by hand, the same
    batches, through `enrollments.enrolling.enroll`; rolled back."""
    measure = Measure(f"{batches} batches of {automatic.BATCH} enrolled by hand")
    q = t.enrollment_queue
    with engine.connect() as db:
        ids = list(
            db.scalars(
                sa.select(q.c.person_id)
                .where(q.c.sequence_id == sequence_id)
                .order_by(q.c.id)
                .limit(batches * automatic.BATCH)
            )
        )
        audience_id = db.scalar(
            sa.select(t.sequences.c.audience_id).where(t.sequences.c.id == sequence_id)
        )
    for n in range(batches):
        batch = ids[n * automatic.BATCH : (n + 1) * automatic.BATCH]
        with engine.connect() as db:
            transaction = db.begin()
            started = time.perf_counter()
            enrolling.enroll(
                db,
                workspace_id=WS,
                sequence_id=sequence_id,
                people=batch,
                actor="bench",
                now=utcnow(),
                audience_id=audience_id,
            )
            decision_index.flush(db)
            measure.runs.append(time.perf_counter() - started)
            transaction.rollback()
    return measure


def drain(engine: Engine, progress: Progress, passes: int | None = None) -> tuple[Measure, int]:
    """Passes of full batches (`automatic.BATCH`, as the hand-enrolled
    baseline) until the queue is empty, or `passes` of them; each pass timed (one
    transaction, commit)."""
    measure = Measure(f"one pass (a batch of {automatic.BATCH})")
    enrolled = 0
    while queued(engine) and (passes is None or len(measure.runs) < passes):
        started = time.perf_counter()
        with engine.begin() as db:
            enrolled += automatic.run(db, workspace_id=WS, now=utcnow(), limit=automatic.BATCH)
        measure.runs.append(time.perf_counter() - started)
        if len(measure.runs) % 5 == 0:
            progress.say(f"  {len(measure.runs)} passes, {enrolled:,} enrolled")
    return measure, enrolled


def idle_pass(engine: Engine, repeat: int) -> Measure:
    measure = Measure("a pass with nothing queued")
    for _ in range(repeat):
        started = time.perf_counter()
        with engine.begin() as db:
            automatic.run(db, workspace_id=WS, now=utcnow())
        measure.runs.append(time.perf_counter() - started)
    return measure


def latency(
    engine: Engine, *, poll: float, samples: int, tag: str
) -> tuple[Measure, int, list[tuple[float, int]]]:
    """New people who match the first audience, each committed alone, while the pass
    loops every `poll` seconds in another thread: from the commit to the pass's decision
    (an enrollment, or a row of the not-enrolled view). Also each pass: its seconds and
    how many it enrolled."""
    measure = Measure(f"commit to enrollment, the pass every {poll:g} s")
    stop = threading.Event()
    failures: list[BaseException] = []
    passes: list[tuple[float, int]] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                started = time.perf_counter()
                with engine.begin() as db:
                    count = automatic.run(db, workspace_id=WS, now=utcnow())
                passes.append((time.perf_counter() - started, count))
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)
                return
            stop.wait(poll)

    worker = threading.Thread(target=loop, daemon=True)
    worker.start()
    e, k = t.enrollments, t.enrollment_skips
    enrolled = 0
    status = EDITS[1]["value"]
    try:
        for n in range(samples):
            with engine.begin() as db:
                person_id = people.create(
                    db,
                    workspace_id=WS,
                    email=f"auto{tag}{n}@newco{tag}{n}.example",
                    first_name="New",
                    last_name=f"Lead {n}",
                    title="Director of Sales",
                    status=status,
                    now=utcnow(),
                )
            committed = time.perf_counter()
            while True:
                if failures:
                    raise failures[0]
                try:
                    with engine.connect() as db:
                        done = db.execute(
                            sa.select(
                                sa.exists().where(e.c.person_id == person_id),
                                sa.exists().where(k.c.person_id == person_id),
                            )
                        ).one()
                except sa.exc.OperationalError:  # a pass held SQLite's lock past its timeout
                    continue
                if any(done):
                    measure.runs.append(time.perf_counter() - committed)
                    enrolled += bool(done[0])
                    break
                if time.perf_counter() - committed > 300:
                    raise SystemExit(f"person {person_id} not decided after 300 s")
                time.sleep(0.01)
    finally:
        stop.set()
        worker.join()
    return measure, enrolled, passes


# The run -------------------------------------------------------------------------------


def run(args: argparse.Namespace, progress: Progress) -> Result:
    params = Params(
        people=args.people, companies=max(10, args.people // 10), exclusions=args.exclusions
    )
    source = prepare(params, url=args.database_url, reuse=True, progress=progress)
    backend = sa.make_url(source).get_backend_name()
    result = Result(args.people, backend, " ".join(["python -m bench.auto_enroll", *sys.argv[1:]]))
    result.load.append(_uptime())
    with _copy(source, params.key(), progress) as url:
        progress.say(f"working on a copy: {sa.make_url(url).database}")
        engine = create_engine(url)
        try:
            sequence_ids, target = setup(engine, utcnow())
            result.sizes, counting = sizes(engine, utcnow())
            progress.say(f"audience sizes: {result.sizes}")
            _measure(engine, target, sequence_ids, counting, args, progress, result)
        finally:
            engine.dispose()
    result.load.append(_uptime())
    return result


def _measure(
    engine: Engine,
    target: Target,
    sequence_ids: list[int],
    counting: Measure,
    args: argparse.Namespace,
    progress: Progress,
    result: Result,
) -> None:
    pages = _pages(engine, args.pages)
    with engine.connect() as db:
        p = t.people
        writers = list(
            db.scalars(
                sa.select(p.c.id).where(p.c.workspace_id == WS).order_by(p.c.id.desc()).limit(7)
            )
        )
    pairs = result.pairs
    # Untimed: the pages of the workspace these operations read into the system's cache
    # and their statements compiled, so that the baseline arm, which runs first, is not
    # the one that pays for it.
    progress.say("warming up: the CRM pages and the writes once, untimed")
    crm_page(engine, target, pages)
    one_write(engine, writers, 3)
    progress.say("baseline: no sequence enrolls by itself")
    pairs["crm"] = Pair("CRM sync page of 200 changed contacts", "< 50 ms over today's",
                        crm_page(engine, target, pages),
                        met=lambda x: x.extra < 0.050)  # fmt: skip
    flush, whole = one_write(engine, writers, args.repeat)
    pairs["flush"] = Pair("one person's write: the flush", "flush < 10 ms", flush,
                          met=lambda x: x.auto is not None and x.auto.median < 0.010)  # fmt: skip
    pairs["write"] = Pair("one person's write: update + flush + commit", "", whole)
    pairs["edit"] = Pair("audience edit re-matching everyone", "< 3 s",
                         audience_edit(engine, 3),
                         met=lambda x: x.auto is not None and x.auto.median < 3.0)  # fmt: skip
    pairs["idle"] = Pair("a pass with nothing queued", "", idle_pass(engine, 5))
    result.load.append(_uptime())

    progress.say("switching the first sequence on")
    first, rest = sequence_ids[0], sequence_ids[1:]
    switch = Measure("switching one sequence on (members stored and queued)")
    switch.runs.append(switch_on(engine, first))
    members = queued(engine, first)
    switch.note = f"{members:,} queued"
    batches = -(-members // automatic.BATCH)
    hand = by_hand(engine, first, min(batches, args.hand_batches))
    progress.say(f"draining {members:,} queued people: {batches} passes, at most {args.passes}")
    passes, enrolled = drain(engine, progress, args.passes)
    unfinished = queued(engine, first)
    pairs["pass"] = Pair(f"one pass enrolling a batch of {automatic.BATCH}", "",
                         hand, passes)  # fmt: skip
    with engine.connect() as db:
        k = t.enrollment_skips
        left_out = int(
            db.scalar(sa.select(sa.func.count()).select_from(k).where(k.c.sequence_id == first))
            or 0
        )
    result.notes.append(
        f"The first sequence's switch-on queued {members:,} people in {_seconds(switch.runs[0])}"
        f"; {len(passes.runs)} passes ({_seconds(sum(passes.runs))} in all) enrolled "
        f"{enrolled:,} and listed {left_out:,} as not enrolled"
        + (
            f"; {unfinished:,} were still queued (the whole queue at the median pass: about "
            f"{_seconds(batches * passes.median)})."
            if unfinished
            else "."
        )
    )
    progress.say(f"switching the other {len(rest)} sequences on")
    for sequence_id in rest:
        switch.runs.append(switch_on(engine, sequence_id))
    pairs["switch"] = Pair("switching one sequence on (stored + queued)", "", counting,
                           switch)  # fmt: skip
    backlog = queued(engine)
    with engine.begin() as db:
        db.execute(t.enrollment_queue.delete().where(t.enrollment_queue.c.workspace_id == WS))
    result.notes.append(
        f"The other {len(rest)} switch-ons queued {backlog:,} people; that backlog was "
        "dropped rather than enrolled (a steady state where it has been worked through), "
        "so the writes below pay for 20 stored audiences and their queueing, with one "
        "sequence's not-enrolled view filled."
    )
    result.load.append(_uptime())
    progress.say("with 20 sequences enrolling by themselves")
    pairs["crm"].auto = crm_page(engine, target, pages)
    pairs["flush"].auto, pairs["write"].auto = one_write(engine, writers, args.repeat)
    pairs["edit"].auto = audience_edit(engine, 3)
    drain(engine, progress)  # who the committed writes above queued
    pairs["idle"].auto = idle_pass(engine, 5)
    print(report(result), file=sys.stderr, flush=True)  # kept if the rest fails
    progress.say("commit to enrollment, the pass looping in another thread")
    for poll, samples in ((args.poll, args.samples), (5.0, max(3, args.samples // 2))):
        measure, enrolled, passes = latency(engine, poll=poll, samples=samples, tag=f"p{poll:g}")
        key = f"latency{poll:g}"
        pairs[key] = Pair(measure.label, "< 2 s" if poll == args.poll else "",
                          pairs["idle"].base, measure,
                          met=lambda x: x.auto is not None and x.auto.median < 2.0)  # fmt: skip
        result.notes.append(
            f"Pass every {poll:g} s: {enrolled} of {samples} new people enrolled, the rest "
            "listed as not enrolled with the check that stopped them; from the commit: "
            + ", ".join(_seconds(r) for r in measure.runs)
            + f". The {len(passes)} passes of that time took "
            + ", ".join(f"{_seconds(seconds)} ({count} enrolled)" for seconds, count in passes)
            + "."
        )
    result.load.append(_uptime())


# The report -----------------------------------------------------------------------------


def report(result: Result) -> str:
    lines = [
        f"### {result.people:,} people, {result.backend}",
        "",
        "```",
        f".venv/bin/{result.command.replace('python', 'python', 1)}",
        "```",
        "",
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{platform.machine()}; the stored matches of the 1,000 exclusions computed "
        "first. Machine load (`/proc/loadavg`) during the run: " + "; ".join(result.load) + ".",
        "",
        "Audience sizes: "
        + ", ".join(f"{name} {count:,}" for name, count in result.sizes.items())
        + ".",
        "",
        "| operation | baseline (no sequence enrolls by itself) | 20 sequences enrolling "
        "| extra | ratio | target | met |",
        "| --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for pair in result.pairs.values():
        auto = pair.auto
        met = "" if pair.met is None or auto is None else ("yes" if pair.met(pair) else "no")
        lines.append(
            f"| {pair.label} | {_seconds(pair.base.median)} ({pair.base.label}, "
            f"{len(pair.base.runs)} runs{_cpu(pair.base)}) | "
            + (f"{_seconds(auto.median)} ({len(auto.runs)} runs{_cpu(auto)})" if auto else "-")
            + " | "
            + (f"{_seconds(pair.extra)} | {pair.ratio:.2f}x" if auto else "- | -")
            + f" | {pair.target} | {met} |"
        )
    lines += ["", *[f"- {note}" for note in result.notes], ""]
    return "\n".join(lines)


def _cpu(measure: Measure) -> str:
    return f"; CPU {_seconds(statistics.median(measure.cpu))}" if measure.cpu else ""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.auto_enroll", description=__doc__)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--exclusions", type=int, default=1000)
    parser.add_argument("--database-url", help="default: a copy of the cached SQLite file")
    parser.add_argument("--pages", type=int, default=5, help="CRM pages measured per arm")
    parser.add_argument("--repeat", type=int, default=21, help="one-person writes per arm")
    parser.add_argument("--hand-batches", type=int, default=5)
    parser.add_argument("--passes", type=int, default=60, help="at most this many passes timed")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between passes")
    parser.add_argument("--samples", type=int, default=10, help="new people timed per poll")
    args = parser.parse_args(argv)
    progress = Progress()
    time_flushes()
    result = run(args, progress)
    print(report(result))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{datetime.now():%Y%m%d-%H%M%S}-auto-enroll-p{args.people}-{result.backend}.md"
    path.write_text(report(result))
    progress.say(f"results in {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
