"""Applying CRM records here: the one path that sync pages and pushed changes (webhooks)
share, inside the caller's transaction.

Records are translated through the field mappings (R31), grouped by object and written in
sync order (companies, people, deals, roles), each group set-based. A record whose
modification was applied already (an overlapping read, a repeated push) is skipped. Every
person whose data changed is re-checked at the end, in the same transaction (R14).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.crm.mapping import OPT_OUT, FieldMapping, translate
from optout.crm.protocol import CrmObject, Kind, Record, Ref
from optout.crm.staged import reset_touched, touched
from optout.crm.upsert_deals import write_deals, write_roles
from optout.crm.upsert_people import Written, write_companies, write_people
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.normalize import domain_label, normalize_domain, normalize_email
from optout.services.monitoring import recheck_people

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


@dataclass
class Applied:
    read: int = 0  # records received
    unchanged: int = 0  # their modification was applied already
    skipped: int = 0  # unusable: no valid address, a deal without a known company
    created: int = 0
    updated: int = 0
    opted_out: int = 0  # addresses newly suppressed because the CRM says so
    unenrolled: int = 0  # enrollments ended (opt-outs and exclusions now matched)
    cancelled: int = 0  # queued emails cancelled with them
    by_object: dict[str, int] = field(default_factory=dict)  # records read per object

    def add(self, other: Applied) -> None:
        for name, value in asdict(other).items():
            if name == "by_object":
                for obj, count in value.items():
                    self.by_object[obj] = self.by_object.get(obj, 0) + count
            else:
                setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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
        refs = {ref for r in pending for ref in _links(r) if ref not in have}
        missing = refs - set(resolve(db, target, refs))
        if not missing:
            break
        fetched: list[Record] = []
        for obj, ids in _by_object(missing).items():
            if target.kind_of(obj) is not None:
                fetched.extend(fetch(obj, sorted(ids)))
        everything.extend(fetched)
        have |= {(r.object, r.id) for r in fetched}
        forced |= {(r.object, r.id) for r in fetched}
        pending = fetched
    return everything, forced


def apply_records(
    db: Connection,
    target: Target,
    records: Sequence[Record],
    *,
    now: datetime,
    forced: Iterable[Ref] = (),
    dedupe: bool = True,
    actor: str = "crm-sync",
    cause: str = "crm sync",
) -> Applied:
    """Apply `records` and re-check everyone whose data changed (R14)."""
    reset_touched(db)
    applied = Applied()
    latest: dict[str, dict[str, Record]] = defaultdict(dict)
    for record in records:
        seen = latest[record.object].get(record.id)
        if seen is None or record.modified_at >= seen.modified_at:
            latest[record.object][record.id] = record
    force = set(forced)
    for obj in target.objects:
        batch = sorted(latest.get(obj.name, {}).values(), key=lambda r: (r.modified_at, r.id))
        if not batch:
            continue
        applied.read += len(batch)
        applied.by_object[obj.name] = applied.by_object.get(obj.name, 0) + len(batch)
        if dedupe:
            fresh = _fresh(db, target, obj.name, batch, force)
            applied.unchanged += len(batch) - len(fresh)
            batch = fresh
        if not batch:
            continue
        writer = _WRITERS[obj.kind]
        local = writer(db, target, obj.name, batch, now, applied, actor)
        _remember(db, target.connection_id, obj.name, batch, local)
    removal = recheck_people(
        db,
        workspace_id=target.workspace_id,
        people=sa.select(touched.c.id),
        actor=actor,
        now=now,
        cause=cause,
    )
    applied.unenrolled += removal.enrollments_ended
    applied.cancelled += removal.emails_cancelled
    return applied


def resolve(db: Connection, target: Target, refs: Iterable[Ref]) -> dict[Ref, int | None]:
    """What the referenced CRM records became here: an id, or None for a record seen but
    unusable. Refs never seen, or whose row was deleted here since, are left out."""
    found: dict[Ref, int | None] = {}
    r = t.crm_records
    for obj, ids in _by_object(refs).items():
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


# --- one writer per kind -------------------------------------------------------------------

Writer = Callable[
    [Connection, Target, str, list[Record], datetime, Applied, str], dict[str, int | None]
]


def _companies(
    db: Connection,
    target: Target,
    obj: str,
    batch: list[Record],
    now: datetime,
    applied: Applied,
    actor: str,
) -> dict[str, int | None]:
    own = resolve(db, target, [(obj, r.id) for r in batch])
    rows: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for record in batch:
        values = translate(record, target.mappings, Kind.COMPANY)
        domain = _domain(values.get("domain"))
        key = domain or f"crm:{record.id}"
        keys[record.id] = key
        rows[key] = {
            "key": key,
            "domain": domain,
            "domain_label": domain_label(domain) if domain else None,
            "name": _text(values, "name", 300) or None,
            "fields": values.get("fields", {}),
            "crm_id": record.id,
            "company_id": None if domain else own.get((obj, record.id)),
        }
    written, ids = write_companies(
        db, workspace_id=target.workspace_id, rows=list(rows.values()), now=now
    )
    _count(applied, written)
    return {crm_id: ids.get(key) for crm_id, key in keys.items()}


def _people(
    db: Connection,
    target: Target,
    obj: str,
    batch: list[Record],
    now: datetime,
    applied: Applied,
    actor: str,
) -> dict[str, int | None]:
    companies = resolve(db, target, [r.company for r in batch if r.company])
    rows: dict[str, dict[str, Any]] = {}
    addresses: dict[str, str | None] = {}
    for record in batch:
        values = translate(record, target.mappings, Kind.PERSON)
        try:
            address = normalize_email(str(values.get("email") or ""))
        except InvalidInput:
            applied.skipped += 1
            addresses[record.id] = None
            continue
        addresses[record.id] = address.address
        rows[address.address] = {
            "email": address.address,
            "email_domain": address.domain,
            "first_name": _text(values, "first_name", 200),
            "last_name": _text(values, "last_name", 200),
            "title": _text(values, "title", 300),
            "status": _text(values, "status", 100),
            "fields": values.get("fields", {}),
            "opt_out": values.get(OPT_OUT),
            "activity_at": values.get("last_activity_at"),
            "company_id": companies.get(record.company) if record.company else None,
            "company_domain": _domain(values.get("company_domain")),
            "company_name": _text(values, "company_name", 300) or None,
            "crm_id": record.id,
        }
    if not rows:
        return dict.fromkeys(addresses)
    written, ids = write_people(
        db,
        workspace_id=target.workspace_id,
        rows=list(rows.values()),
        crm=target.crm,
        actor=actor,
        now=now,
    )
    _count(applied, written)
    return {crm_id: ids.get(a) if a else None for crm_id, a in addresses.items()}


def _deals(
    db: Connection,
    target: Target,
    obj: str,
    batch: list[Record],
    now: datetime,
    applied: Applied,
    actor: str,
) -> dict[str, int | None]:
    refs: set[Ref] = {(obj, r.id) for r in batch}
    for record in batch:
        refs.update(_links(record))
    local = resolve(db, target, refs)
    rows: list[dict[str, Any]] = []
    links: set[tuple[str, int]] = set()
    for record in batch:
        company_id = local.get(record.company) if record.company else None
        if company_id is None:
            applied.skipped += 1
            continue
        values = translate(record, target.mappings, Kind.DEAL)
        is_won = values.get("is_won")
        is_closed = True if is_won else values.get("is_closed")
        rows.append(
            {
                "crm_id": record.id,
                "name": _text(values, "name", 300),
                "stage": _text(values, "stage", 100),
                "amount": values.get("amount"),
                "is_closed": is_closed,
                "is_won": is_won,
                "close_date": values.get("close_date"),
                "fields": values.get("fields", {}),
                "company_id": company_id,
                "opportunity_id": local.get((obj, record.id)),
                "contacts_given": record.contacts is not None,
            }
        )
        for ref in record.contacts or ():
            person_id = local.get(ref)
            if person_id is not None:
                links.add((record.id, person_id))
    if not rows:
        return {r.id: None for r in batch}
    written, ids = write_deals(
        db,
        workspace_id=target.workspace_id,
        rows=rows,
        links=[{"crm_id": c, "person_id": p} for c, p in sorted(links)],
        now=now,
    )
    _count(applied, written)
    return {r.id: ids.get(r.id) for r in batch}


def _roles(
    db: Connection,
    target: Target,
    obj: str,
    batch: list[Record],
    now: datetime,
    applied: Applied,
    actor: str,
) -> dict[str, int | None]:
    local = resolve(db, target, [ref for r in batch for ref in _links(r)])
    rows: list[dict[str, Any]] = []
    for record in batch:
        deal = local.get(record.deal) if record.deal else None
        person = local.get(record.person) if record.person else None
        if deal is None or person is None:
            applied.skipped += 1
            continue
        values = translate(record, target.mappings, Kind.ROLE)
        rows.append(
            {
                "crm_id": record.id,
                "opportunity_id": deal,
                "person_id": person,
                "role": _text(values, "role", 100),
                "deleted": record.deleted,
            }
        )
    if rows:
        _count(applied, write_roles(db, rows=rows))
    return dict.fromkeys((r.id for r in batch), None)


_WRITERS: dict[Kind, Writer] = {
    Kind.COMPANY: _companies,
    Kind.PERSON: _people,
    Kind.DEAL: _deals,
    Kind.ROLE: _roles,
}


# --- helpers -----------------------------------------------------------------------------


def _fresh(
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


def _remember(
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


def _links(record: Record) -> list[Ref]:
    refs = [record.company, record.deal, record.person, *(record.contacts or ())]
    return [ref for ref in refs if ref is not None]


def _by_object(refs: Iterable[Ref]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = defaultdict(set)
    for obj, crm_id in refs:
        grouped[obj].add(crm_id)
    return grouped


def _count(applied: Applied, written: Written) -> None:
    applied.created += written.created
    applied.updated += written.updated
    applied.opted_out += written.opted_out
    applied.unenrolled += written.removal.enrollments_ended
    applied.cancelled += written.removal.emails_cancelled


def _text(values: dict[str, Any], key: str, length: int) -> str | None:
    """The mapped value cut to the column's length; None when the field is not mapped."""
    if key not in values:
        return None
    return str(values[key] or "")[:length]


def _domain(raw: Any) -> str | None:
    if not raw:
        return None
    try:
        return normalize_domain(str(raw))
    except InvalidInput:
        return None
