"""Transient bounces of one address counted by several processes at once (the SMTP
listener and the IMAP poller each process a batch): every bounce is counted, none twice,
and the limit that turns them into a hard bounce is crossed by exactly one message (R7)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound import InboundOptions, InboundResult
from optout.inbound.process import Incoming, process_messages
from tests.conftest import NOW
from tests.factories import World
from tests.inbound.helpers import OPTIONS, corpus, readdress, sent_world

ADDRESS = "gus@globex.io"
BATCHES = (1, 2, 1)  # transient bounces of the address in each process's batch
LIMIT = sum(BATCHES)  # ... so that together, and only together, they reach the limit
COUNT = re.compile(rf"{re.escape(ADDRESS)}: transient bounce (\d+) of (\d+)")


@pytest.mark.parametrize("earlier", [0, 1], ids=["first-bounces", "counted-before"])
def test_R7_transient_bounces_counted_at_once_add_up_and_turn_hard_exactly_once(
    fresh_engine: Engine, earlier: int
) -> None:
    """`earlier` bounces were counted (and committed) before the processes start: the
    count they add to is a stored row, not a new one."""
    raw = corpus("bounce_mailbox_full_4xx_dsn.eml")
    limit = earlier + LIMIT
    options = InboundOptions(tokens=OPTIONS.tokens, soft_bounce_limit=limit)
    with fresh_engine.begin() as db:
        sent_world(World(db, NOW), [ADDRESS])
        for n in range(earlier):
            message = readdress(raw, Message_Id=f"<earlier-{n}@mx.acme-sales.com>")
            process_messages(
                db,
                messages=[Incoming(message, "earlier")],
                now=NOW + timedelta(minutes=30),
                options=options,
            )
    batches: list[list[bytes]] = []
    for n, size in enumerate(BATCHES):
        batches.append(
            [readdress(raw, Message_Id=f"<soft-{n}-{m}@mx.acme-sales.com>") for m in range(size)]
        )
    together = threading.Barrier(len(batches))
    results: list[list[InboundResult | InvalidInput]] = [[] for _ in batches]
    failures: list[BaseException] = []

    def process(n: int) -> None:
        try:
            with fresh_engine.connect() as db:
                together.wait(timeout=60)
                with db.begin():
                    results[n] = process_messages(
                        db,
                        messages=[Incoming(message, f"way-in-{n}") for message in batches[n]],
                        now=NOW + timedelta(hours=1),
                        options=options,
                    )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=process, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    done = [r for batch in results for r in batch]
    assert all(isinstance(r, InboundResult) for r in done), done
    counts = sorted(
        int(found.group(1))
        for r in done
        if isinstance(r, InboundResult)
        for action in r.actions
        if (found := COUNT.search(action))
    )
    assert counts == list(range(earlier + 1, limit + 1)), [
        r.actions for r in done if isinstance(r, InboundResult)
    ]
    outcomes = sorted(r.outcome for r in done if isinstance(r, InboundResult))
    assert outcomes == ["bounced"] + ["soft_bounce"] * (LIMIT - 1)
    sb = t.inbound_soft_bounces
    with fresh_engine.connect() as db:
        stored = db.execute(sa.select(sb.c.failures).where(sb.c.email == ADDRESS)).scalar_one()
        soft_events = db.scalar(sa.select(sa.func.count()).where(t.events.c.kind == "soft_bounce"))
        ledger = t.suppression_ledger
        suppressed = db.execute(
            sa.select(ledger.c.kind, ledger.c.action).where(ledger.c.email == ADDRESS)
        ).all()
    assert stored == limit
    assert soft_events == limit - 1
    assert [tuple(row) for row in suppressed] == [("bounce", "added")]
