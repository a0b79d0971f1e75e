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

from optout.crm.mapping import OPT_OUT, translate
from optout.crm.protocol import Kind, Record, Ref
from optout.crm.records import Target, fresh, links, remember, resolve
from optout.crm.staged import reset_touched, touched
from optout.crm.upsert_deals import write_deals, write_roles
from optout.crm.upsert_people import (
    Written,
    named_companies,
    page_companies,
    page_people,
    write_companies,
    write_people,
)
from optout.errors import InvalidInput
from optout.normalize import domain_label, normalize_domain, normalize_email
from optout.services.directory import association
from optout.services.mailboxes.assignment import OWNER_FIELD
from optout.services.monitoring import recheck_people


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
            new = fresh(db, target, obj.name, batch, force)
            applied.unchanged += len(batch) - len(new)
            batch = new
        if not batch:
            continue
        writer = _WRITERS[obj.kind]
        local = writer(db, target, obj.name, batch, now, applied, actor)
        remember(db, target.connection_id, obj.name, batch, local)
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
    if written.created:
        _associate(db, target, applied, now, actor, companies=page_companies())
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
        fields = dict(values.get("fields", {}))
        if owner := _text(values, "owner", 320):
            fields[OWNER_FIELD] = owner  # picks the mailbox of the person's enrollments
        rows[address.address] = {
            "email": address.address,
            "email_domain": address.domain,
            "first_name": _text(values, "first_name", 200),
            "last_name": _text(values, "last_name", 200),
            "title": _text(values, "title", 300),
            "status": _text(values, "status", 100),
            "fields": fields,
            "time_zone": values.get("time_zone"),
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
    named = any(row["company_domain"] for row in rows.values())
    _associate(
        db,
        target,
        applied,
        now,
        actor,
        people=page_people(),
        companies=named_companies(target.workspace_id) if named else None,
    )
    return {crm_id: ids.get(a) if a else None for crm_id, a in addresses.items()}


def _associate(
    db: Connection,
    target: Target,
    applied: Applied,
    now: datetime,
    actor: str,
    *,
    people: sa.Select[Any] | None = None,
    companies: sa.Select[Any] | None = None,
) -> None:
    """People the CRM gives no company join the company of their email domain."""
    linked = association.associate(
        db,
        workspace_id=target.workspace_id,
        people=people,
        companies=companies,
        now=now,
        actor=actor,
        cause="crm sync",
    )
    applied.unenrolled += linked.removal.enrollments_ended
    applied.cancelled += linked.removal.emails_cancelled


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
        refs.update(links(record))
    local = resolve(db, target, refs)
    rows: list[dict[str, Any]] = []
    pairs: set[tuple[str, int]] = set()
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
                pairs.add((record.id, person_id))
    if not rows:
        return {r.id: None for r in batch}
    written, ids = write_deals(
        db,
        workspace_id=target.workspace_id,
        rows=rows,
        links=[{"crm_id": c, "person_id": p} for c, p in sorted(pairs)],
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
    local = resolve(db, target, [ref for r in batch for ref in links(r)])
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
