"""What acting on a batch's matched messages reads, read once for them all: whether each
workspace opts out on an unsubscribe reply, the people holding each address a bounce
names (and whether we emailed it); and the batch's record of transient bounces and
resets, empty, which acting fills and `SoftBounces.write` adds to the stored counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.filters.sqlfunc import in_list
from optout.inbound.classify import Classification, Kind
from optout.inbound.match import Target
from optout.inbound.soft_bounces import Key, SoftBounces
from optout.normalize import normalize_email


@dataclass
class Known:
    auto_opt_out: dict[int, bool]  # workspace id -> opts out on an unsubscribe reply
    holders: dict[Key, list[int]]  # the people with an address a bounce names
    emailed: set[Key]  # ... of whom at least one was sent an email
    soft_bounces: SoftBounces
    canonical: dict[str, str] = field(default_factory=dict)  # as written -> canonical

    def opts_out(self, workspace_id: int) -> bool:
        if workspace_id not in self.auto_opt_out:
            raise NotFound(f"no workspace with id {workspace_id}")
        return self.auto_opt_out[workspace_id]


def canonical_of(address: str) -> str | None:
    try:
        return normalize_email(address).address
    except InvalidInput:
        return None


def know(db: Connection, matched: Sequence[tuple[Classification, Target]]) -> Known:
    """Read what acting on these matched messages needs, in at most two statements. The
    counts of transient bounces are not read: the batch adds to them in the database
    (`SoftBounces.write`)."""
    canonical: dict[str, str] = {}
    addresses: set[Key] = set()
    for verdict, target in matched:
        ws = target.workspace_id
        if verdict.kind is Kind.BOUNCE:
            report = verdict.report
            for recipient in report.recipients if report is not None else ():
                for written in recipient.addresses:
                    if written not in canonical and (found := canonical_of(written)):
                        canonical[written] = found
                    if written in canonical:
                        addresses.add((ws, canonical[written]))
            if target.email:
                addresses.add((ws, target.email))
    w = t.workspaces
    workspaces = sorted({target.workspace_id for _, target in matched})
    auto_opt_out = (
        {
            row.id: bool(row.auto_opt_out_on_unsubscribe_reply)
            for row in db.execute(
                sa.select(w.c.id, w.c.auto_opt_out_on_unsubscribe_reply).where(
                    in_list(w.c.id, workspaces)
                )
            )
        }
        if workspaces
        else {}
    )
    holders, emailed = _holders(db, addresses)
    return Known(auto_opt_out, holders, emailed, SoftBounces(), canonical)


def _holders(db: Connection, addresses: set[Key]) -> tuple[dict[Key, list[int]], set[Key]]:
    if not addresses:
        return {}, set()
    p, o = t.people, t.outbound_emails
    sent = sa.exists().where(o.c.person_id == p.c.id, o.c.status == "sent")
    rows = db.execute(
        sa.select(p.c.id, p.c.workspace_id, p.c.email, sent.label("sent"))
        .where(
            in_list(p.c.workspace_id, sorted({w for w, _ in addresses})),
            in_list(p.c.email, sorted({e for _, e in addresses})),
        )
        .order_by(p.c.id)
    )
    holders: dict[Key, list[int]] = defaultdict(list)
    emailed: set[Key] = set()
    for row in rows:
        key = (row.workspace_id, row.email)
        if key not in addresses:
            continue
        holders[key].append(row.id)
        if row.sent:
            emailed.add(key)
    return dict(holders), emailed
