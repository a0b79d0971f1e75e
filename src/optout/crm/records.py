"""The record map (`crm_records`): what each CRM record became here, and when it was last
modified as applied. It resolves links between records without asking the CRM, skips a
modification applied already (an overlapping read, a repeated push), and names the
linked records never seen, which `complete` fetches before a page is applied.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crm.mapping import FieldMapping
from optout.crm.protocol import CrmObject, Kind, Record, Ref
from optout.db import tables as t

Fetch = Callable[[str, Sequence[str]], list[Record]]


_LOCAL_TABLES = {
    Kind.COMPANY: t.companies,
    Kind.PERSON: t.people,
    Kind.DEAL: t.opportunities,
}


@dataclass(frozen=True)
class Target:
    """Where records land: a workspace, through one connection and its mappings."""

    workspace_id: int
    connection_id: int
    crm: str
    objects: tuple[CrmObject, ...]
    mappings: Sequence[FieldMapping]

    def kind_of(self, obj: str) -> Kind | None:
        return next((o.kind for o in self.objects if o.name == obj), None)


def complete(
    db: Connection, target: Target, records: Sequence[Record], fetch: Fetch, depth: int = 2
) -> tuple[list[Record], set[Ref]]:
    """`records` plus the records they link to that were never seen here (a contact's
    company created after the companies were read), fetched from the CRM. Call it outside
    the write transaction: it may make HTTP requests. The fetched ones are returned as
    `forced` so they are applied even when their modification was seen."""
    everything = list(records)
    have = {(r.object, r.id) for r in records}
    forced: set[Ref] = set()
    pending: Sequence[Record] = records
    for _ in range(depth):
        refs = {ref for r in pending for ref in links(r) if ref not in have}
        missing = refs - set(resolve(db, target, refs))
        if not missing:
            break
        fetched: list[Record] = []
        for obj, ids in by_object(missing).items():
            if target.kind_of(obj) is not None:
                fetched.extend(fetch(obj, sorted(ids)))
        everything.extend(fetched)
        have |= {(r.object, r.id) for r in fetched}
        forced |= {(r.object, r.id) for r in fetched}
        pending = fetched
    return everything, forced


def resolve(db: Connection, target: Target, refs: Iterable[Ref]) -> dict[Ref, int | None]:
    """What the referenced CRM records became here: an id, or None for a record seen but
    unusable. Refs never seen, or whose row was deleted here since, are left out."""
    found: dict[Ref, int | None] = {}
    r = t.crm_records
    for obj, ids in by_object(refs).items():
        kind = target.kind_of(obj)
        if kind is None:
            continue
        rows = db.execute(
            sa.select(r.c.crm_id, r.c.local_id).where(
                r.c.connection_id == target.connection_id,
                r.c.crm_object == obj,
                r.c.crm_id.in_(sorted(ids)),
            )
        ).all()
        local = {row.local_id for row in rows if row.local_id is not None}
        table = _LOCAL_TABLES.get(kind)
        alive = (
            set(db.scalars(sa.select(table.c.id).where(table.c.id.in_(local))))
            if table is not None and local
            else local
        )
        for crm_id, local_id in rows:
            if local_id is None:
                found[(obj, crm_id)] = None
            elif local_id in alive:
                found[(obj, crm_id)] = int(local_id)
    return found


def fresh(
    db: Connection, target: Target, obj: str, batch: list[Record], forced: set[Ref]
) -> list[Record]:
    r = t.crm_records
    stored = dict(
        db.execute(
            sa.select(r.c.crm_id, r.c.modified_at).where(
                r.c.connection_id == target.connection_id,
                r.c.crm_object == obj,
                r.c.crm_id.in_([x.id for x in batch]),
            )
        ).all()
    )
    return [
        x
        for x in batch
        if (obj, x.id) in forced or stored.get(x.id) is None or x.modified_at > stored[x.id]
    ]


def remember(
    db: Connection,
    connection_id: int,
    obj: str,
    batch: list[Record],
    local: dict[str, int | None],
) -> None:
    r = t.crm_records
    ids = [x.id for x in batch]
    db.execute(
        r.delete().where(
            r.c.connection_id == connection_id, r.c.crm_object == obj, r.c.crm_id.in_(ids)
        )
    )
    db.execute(
        r.insert(),
        [
            {
                "connection_id": connection_id,
                "crm_object": obj,
                "crm_id": x.id,
                "local_id": local.get(x.id),
                "modified_at": x.modified_at,
            }
            for x in batch
        ],
    )


def links(record: Record) -> list[Ref]:
    refs = [record.company, record.deal, record.person, *(record.contacts or ())]
    return [ref for ref in refs if ref is not None]


def by_object(refs: Iterable[Ref]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = defaultdict(set)
    for obj, crm_id in refs:
        grouped[obj].add(crm_id)
    return grouped
