"""The claim with mailbox limits against the same claim without them (R37).

One queue of due emails (`bench.due_queue`), claimed a batch at a time and rolled back,
so every claim sees the same queue:

- without limits: the enrollments have no mailbox (they send from the sequence's From
  address, as before mailboxes existed);
- with limits: the enrollments are dealt over `--mailboxes` mailboxes (limit 500 a day,
  a 90 s gap), so a claim takes at most one email per mailbox, counted under the mailbox
  rows' locks.

Reports the median seconds per claimed batch of each and their ratio.

  python -m bench.mailbox_claim --database-url sqlite:////tmp/claim.sqlite3 --emails 100000

The queue's workspace holds one person per email; `--people N` pads it to N people with
no enrollment, as `bench.workers` does, so the claim runs in a workspace of that size.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bench import due_queue
from optout.db import tables as t
from optout.db.engine import create_engine
from optout.db.migrate import upgrade
from optout.sending.claim import claim
from optout.services.mailboxes import sender_mailboxes

NOW = datetime(2026, 11, 2, 9, 0)


def _claim_seconds(engine: Engine, *, batch: int, runs: int) -> tuple[list[float], int]:
    seconds: list[float] = []
    claimed = 0
    for _ in range(runs):
        with engine.connect() as db:
            transaction = db.begin()
            started = time.perf_counter()
            result = claim(db, now=NOW, limit=batch)
            seconds.append(time.perf_counter() - started)
            claimed = len(result.claims)
            transaction.rollback()
    return seconds, claimed


def make_mailboxes(
    engine: Engine,
    *,
    workspace_id: int,
    count: int,
    now: datetime = NOW,
    daily_limit: int = 500,
    min_gap_seconds: int = 90,
    zones: Sequence[str] = ("UTC",),
) -> list[int]:
    """`count` mailboxes with consecutive ids, their time zones taken in turn from `zones`."""
    with engine.begin() as db:
        return [
            sender_mailboxes.create(
                db,
                workspace_id=workspace_id,
                address=f"rep{i}@sender.example",
                daily_limit=daily_limit,
                min_gap_seconds=min_gap_seconds,
                time_zone=zones[i % len(zones)],
                actor="bench",
                now=now,
            ).id
            for i in range(count)
        ]


def deal(engine: Engine, *, ids: list[int] | None) -> None:
    """Give the enrollments their mailboxes round-robin (or none), set-based."""
    e = t.enrollments
    with engine.begin() as db:
        if ids is None:
            db.execute(e.update().values(mailbox_id=None))
            return
        first, count = ids[0], len(ids)
        assert ids == list(range(first, first + count))
        db.execute(e.update().values(mailbox_id=first + e.c.id % count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--people",
        type=int,
        default=0,
        help="pad the workspace to this many people with no enrollment (default: one "
        "person per email)",
    )
    args = parser.parse_args()
    engine = create_engine(args.database_url)
    upgrade(engine)
    started = time.perf_counter()
    queue = due_queue.build(engine, emails=args.emails, now=NOW - timedelta(minutes=1))
    ids = make_mailboxes(engine, workspace_id=queue.workspace_id, count=args.mailboxes)
    print(f"built {queue.emails:,} due emails in {time.perf_counter() - started:.0f} s")
    if args.people > queue.emails:
        started = time.perf_counter()
        added = due_queue.pad_people(
            engine, workspace_id=queue.workspace_id, people=args.people, now=NOW
        )
        print(
            f"added {added:,} people with no enrollment (workspace of {args.people:,}) in "
            f"{time.perf_counter() - started:.0f} s"
        )
    deal(engine, ids=None)
    with engine.begin() as db:  # both arms claim with the planner's statistics
        db.execute(sa.text("ANALYZE"))
    _claim_seconds(engine, batch=args.batch, runs=1)  # warm the caches
    plain, plain_claimed = _claim_seconds(engine, batch=args.batch, runs=args.runs)
    deal(engine, ids=ids)
    with engine.begin() as db:
        db.execute(sa.text("ANALYZE"))
    _claim_seconds(engine, batch=args.batch, runs=1)
    limited, limited_claimed = _claim_seconds(engine, batch=args.batch, runs=args.runs)
    a, b = statistics.median(plain), statistics.median(limited)
    print(
        f"without limits: {a * 1000:.0f} ms per claim of {plain_claimed} "
        f"(runs {', '.join(f'{s * 1000:.0f}' for s in plain)})"
    )
    print(
        f"with {args.mailboxes} mailboxes (limit 500, gap 90 s): {b * 1000:.0f} ms per claim of "
        f"{limited_claimed} (runs {', '.join(f'{s * 1000:.0f}' for s in limited)})"
    )
    print(
        f"ratio per claim {b / a:.2f}x; per email "
        f"{(b / limited_claimed) / (a / plain_claimed):.2f}x"
    )


if __name__ == "__main__":
    main()
