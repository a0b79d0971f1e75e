"""The drain forecast of the capacity page against a plain count of the queued emails,
in the same run (R37).

One workspace of `--people` people (one company per 100), each enrolled in one sequence
(Mon-Fri 09:00-17:00) with one email; all but `--queued` of those emails are sent, the
queued ones fall due over the next three days. The enrollments are dealt over
`--mailboxes` mailboxes (daily limits 20 to 65, a 90 s gap, six time zones, some with
sends today). Then, interleaved run by run, each on a fresh read connection:

- count: `SELECT count(*)` of the workspace's queued emails;
- forecast: `sending.drain.forecast`, what the page, the API and the CLI show.

Reports the median milliseconds of each and their ratio.

  python -m bench.capacity --database-url sqlite:////tmp/capacity.sqlite3 --people 100000
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench import due_queue
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.mail import windows
from optout.sending import drain
from optout.services.mailboxes import sender_mailboxes

NOW = datetime(2026, 11, 2, 9, 0)  # a Monday, UTC
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "Asia/Kolkata")
DUE_BUCKETS = 24  # the queued emails fall due 3 hours apart over three days


def _mailboxes(engine: Engine, *, workspace_id: int, count: int) -> list[int]:
    with engine.begin() as db:
        return [
            sender_mailboxes.create(
                db,
                workspace_id=workspace_id,
                address=f"rep{i}@sender.example",
                daily_limit=20 + i % 46,
                min_gap_seconds=90,
                time_zone=ZONES[i % len(ZONES)],
                actor="bench",
                now=NOW,
            ).id
            for i in range(count)
        ]


def _shape(engine: Engine, *, queue: due_queue.DueQueue, ids: list[int], queued: int) -> int:
    """Deal the enrollments over the mailboxes, send all but `queued` emails, spread the
    rest's due times, give the sequence business hours and some mailboxes sends today:
    set-based. The number of queued emails left."""
    e, o, b, s = t.enrollments, t.outbound_emails, t.mailboxes, t.sequences
    every = max(1, queue.emails // max(1, queued))
    first, count = ids[0], len(ids)
    assert ids == list(range(first, first + count))
    with engine.begin() as db:
        # The queued ones are every `every`-th person: dealt by that quotient, they spread
        # evenly over the mailboxes.
        db.execute(e.update().values(mailbox_id=first + (e.c.person_id // every) % count))
        db.execute(
            o.update()
            .where(o.c.person_id % every != 0)
            .values(status="sent", sent_at=NOW - timedelta(days=1))
        )
        for bucket in range(DUE_BUCKETS):
            db.execute(
                o.update()
                .where(o.c.status == "queued", o.c.person_id % DUE_BUCKETS == bucket)
                .values(due_at=NOW + timedelta(hours=3 * bucket) - timedelta(minutes=1))
            )
        business = windows.BUSINESS_HOURS
        db.execute(
            s.update()
            .where(s.c.id == queue.sequence_id)
            .values(
                send_days=business.days,
                send_from_minute=business.start_minute,
                send_until_minute=business.end_minute,
            )
        )
        db.execute(
            b.update().where(b.c.id % 3 == 0).values(sends_day=NOW.date(), sends_today=b.c.id % 20)
        )
        left = int(
            db.scalar(sa.select(sa.func.count()).select_from(o).where(o.c.status == "queued")) or 0
        )
        db.execute(sa.text("ANALYZE"))
    return left


def _count(engine: Engine, workspace_id: int) -> tuple[float, int]:
    o = t.outbound_emails
    with engine.connect() as db:
        started = time.perf_counter()
        found = db.scalar(
            sa.select(sa.func.count())
            .select_from(o)
            .where(o.c.workspace_id == workspace_id, o.c.status == "queued")
        )
        return time.perf_counter() - started, int(found or 0)


def _forecast(engine: Engine, workspace_id: int) -> tuple[float, drain.Forecast]:
    with engine.connect() as db:
        started = time.perf_counter()
        found = drain.forecast(db, workspace_id=workspace_id, now=NOW)
        return time.perf_counter() - started, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--queued", type=int, default=100_000)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    upgrade(engine)
    started = time.perf_counter()
    queue = due_queue.build(engine, emails=args.people, now=NOW - timedelta(minutes=1))
    ids = _mailboxes(engine, workspace_id=queue.workspace_id, count=args.mailboxes)
    left = _shape(engine, queue=queue, ids=ids, queued=args.queued)
    print(
        f"built {queue.emails:,} people, {left:,} queued emails over {args.mailboxes} "
        f"mailboxes in {time.perf_counter() - started:.0f} s"
    )
    _count(engine, queue.workspace_id)  # warm the caches
    _forecast(engine, queue.workspace_id)
    counts: list[float] = []
    forecasts: list[float] = []
    found: drain.Forecast | None = None
    for _ in range(args.runs):
        seconds, counted = _count(engine, queue.workspace_id)
        counts.append(seconds)
        seconds, found = _forecast(engine, queue.workspace_id)
        forecasts.append(seconds)
    assert found is not None
    assert found.totals.queued == counted == left, (found.totals.queued, counted, left)
    a, b = statistics.median(counts), statistics.median(forecasts)
    print(
        f"count of the queued emails: {a * 1000:.0f} ms "
        f"(runs {', '.join(f'{s * 1000:.0f}' for s in counts)})"
    )
    print(
        f"drain forecast of {len(found.mailboxes)} mailboxes: {b * 1000:.0f} ms "
        f"(runs {', '.join(f'{s * 1000:.0f}' for s in forecasts)})"
    )
    print(f"ratio {b / a:.2f}x; all drained by {found.totals.forecast()[11:]}")


if __name__ == "__main__":
    main()
