"""One person's write and the audience edit of `bench.auto_enroll`, alone, on a prepared
copy of the workspace with the 20 sequences already enrolling by themselves: to compare
two trees of the product (one checked out elsewhere, run with its `src` and its `bench`
first on `PYTHONPATH`) on the same copies, interleaved, and to profile either.

    # once: the settled workspace, the 20 audiences and sequences switched on, the queue
    # they filled dropped (as the second arm of bench.auto_enroll), kept in var/bench/
    .venv/bin/python bench/auto_enroll_pair.py prepare
    # each arm: a fresh copy of the prepared file, brought to this tree's schema, then
    # --repeat writes and --edits audience edits; one JSON line on stdout
    PYTHONPATH=/tmp/before/src:/tmp/before .venv/bin/python bench/auto_enroll_pair.py measure
    .venv/bin/python bench/auto_enroll_pair.py measure

The script is run by its path so that `bench` and `optout` come from `PYTHONPATH` (or
this tree, without it). SQLite only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from bench import auto_enroll as ae
from bench.generate import Params
from bench.load import CACHE, Progress, prepare
from optout.clock import utcnow
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade


def _prepared(people: int, name: str) -> Path:
    return CACHE / f"auto-enroll-p{people}-{name}.sqlite3"


def _params(people: int) -> Params:
    return Params(people=people, companies=max(10, people // 10), exclusions=1000)


def prepare_copy(people: int, name: str, progress: Progress) -> Path:
    """The settled workspace with the 20 audiences and sequences, all switched on, and the
    queue their switch-ons filled dropped."""
    params = _params(people)
    source = prepare(params, url=None, reuse=True, progress=progress)
    target = _prepared(people, name)
    with ae._copy(source, params.key(), progress) as url:
        engine = create_engine(url)
        try:
            upgrade(engine)
            sequence_ids, _ = ae.setup(engine, utcnow())
            for n, sequence_id in enumerate(sequence_ids, 1):
                seconds = ae.switch_on(engine, sequence_id)
                progress.say(f"sequence {n} switched on in {seconds:.1f} s")
            with engine.begin() as db:
                db.execute(t.enrollment_queue.delete())
        finally:
            engine.dispose()
        database = sa.make_url(url).database
        assert database is not None
        ae._backup(Path(database), target)
    progress.say(f"prepared: {target}")
    return target


def measure(
    people: int, name: str, repeat: int, edits: int, progress: Progress
) -> dict[str, object]:
    source = _prepared(people, name)
    copy = CACHE / f"auto-enroll-p{people}-twenty-on-run.sqlite3"
    ae._backup(source, copy)
    engine = create_engine(f"sqlite:///{copy}")
    try:
        started = time.perf_counter()
        upgrade(engine)
        progress.say(f"copy at this tree's schema in {time.perf_counter() - started:.1f} s")
        with engine.connect() as db:
            p = t.people
            writers = list(db.scalars(sa.select(p.c.id).order_by(p.c.id.desc()).limit(7)))
        ae.time_flushes()
        ae.one_write(engine, writers, 3)  # warm-up, untimed
        flush, whole = ae.one_write(engine, writers, repeat)
        edit = ae.audience_edit(engine, edits)
    finally:
        engine.dispose()
        for stale in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
            stale.unlink(missing_ok=True)
    return {
        "flush_wall_ms": round(statistics.median(flush.runs) * 1000, 2),
        "flush_cpu_ms": round(statistics.median(flush.cpu) * 1000, 2),
        "write_wall_ms": round(statistics.median(whole.runs) * 1000, 2),
        "write_cpu_ms": round(statistics.median(whole.cpu) * 1000, 2),
        "edit_wall_s": round(statistics.median(edit.runs), 3),
        "edit_cpu_s": round(statistics.median(edit.cpu), 3),
        "edit_runs": [round(x, 3) for x in edit.runs],
        "edit_cpu_runs": [round(x, 3) for x in edit.cpu],
        "flush_cpu_runs": [round(x * 1000, 2) for x in flush.cpu],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/auto_enroll_pair.py", description=__doc__)
    parser.add_argument("what", choices=["prepare", "measure"])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=21, help="one-person writes")
    parser.add_argument("--edits", type=int, default=3, help="audience edits")
    parser.add_argument("--label", default="", help="named in the JSON line")
    parser.add_argument(
        "--copy",
        default="twenty-on",
        help="the prepared file: var/bench/auto-enroll-p<people>-<copy>.sqlite3 (prepared "
        "by each schema's tree, so that its stored rows were written as that tree writes them)",
    )
    args = parser.parse_args(argv)
    progress = Progress()
    if args.what == "prepare":
        prepare_copy(args.people, args.copy, progress)
        return
    started = ae._uptime()
    out = measure(args.people, args.copy, args.repeat, args.edits, progress)
    out = {"label": args.label, "started": started, "ended": ae._uptime(), **out}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
