"""Impact preview of an exclusion before it is saved (R22, R18).

How many people and companies it matches, which active enrollments and queued
emails a save would remove, a sample, the near-miss domain variants present in
the data, and whether the save needs explicit confirmation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level
from optout.filters.ast import conditions, is_negative_only
from optout.filters.fields import FieldType
from optout.filters.fields import lookup as lookup_field
from optout.filters.sqlfunc import in_list
from optout.normalize import domain_label
from optout.services import workspaces
from optout.services.exclusions import look_alikes
from optout.services.exclusions.domain_hints import UnreachedAtDomains, unreached_at_domains
from optout.services.exclusions.reached import (
    companies_reached,
    people_reached,
    removable_enrollments,
)
from optout.services.staging import previewed_people, stage

SAMPLE_SIZE = 10
NEAR_MISS_LIMIT = 50


@dataclass(frozen=True)
class NearMiss:
    listed: str  # the domain the filter names
    present: str  # a variant of it found in the data, not covered by the filter
    kind: str = "suffix"  # same name, other suffix; or "look_alike": reads the same on screen


@dataclass(frozen=True)
class Preview:
    people_matched: int
    people_total: int
    companies_matched: int
    enrollments_removed: int
    emails_cancelled: int
    sample: list[dict[str, Any]]
    near_misses: list[NearMiss]
    warnings: list[str] = field(default_factory=list)
    confirmation_reasons: list[str] = field(default_factory=list)
    # People at a listed email domain whom the rule misses (no company, or another one).
    unreached: UnreachedAtDomains | None = None

    @property
    def share(self) -> float:
        return self.people_matched / self.people_total if self.people_total else 0.0

    @property
    def needs_confirmation(self) -> bool:
        return bool(self.confirmation_reasons)


def _count(db: Connection, select: sa.Select[Any]) -> int:
    return int(db.scalar(sa.select(sa.func.count()).select_from(select.subquery())) or 0)


def preview(
    db: Connection, *, workspace_id: int, exclusion: ExclusionSpec, now: datetime
) -> Preview:
    # The rule is asked once; every figure below reads the people it reaches from here.
    found = people_reached(exclusion, workspace_id=workspace_id, now=now).subquery()
    person_id = next(iter(found.c)).label("id")
    people_matched = stage(db, previewed_people, sa.select(person_id).distinct())
    reached = sa.select(previewed_people.c.id)
    p, c, o = t.people, t.companies, t.outbound_emails
    people_total = _count(db, sa.select(p.c.id).where(p.c.workspace_id == workspace_id))
    companies = (
        _count(db, companies_reached(exclusion, workspace_id=workspace_id, now=now))
        if exclusion.level is Level.COMPANY
        else 0
    )
    removed = removable_enrollments(
        exclusion, workspace_id=workspace_id, now=now, reached=reached
    ).subquery()
    if exclusion.unenroll_existing_on_save and exclusion.enabled:
        enrollments = _count(db, sa.select(removed.c.enrollment_id))
        emails = _count(
            db,
            sa.select(o.c.id).where(
                o.c.enrollment_id.in_(sa.select(removed.c.enrollment_id)), o.c.status == "queued"
            ),
        )
    else:
        enrollments = emails = 0
    sample_rows = db.execute(
        sa.select(p.c.email, p.c.first_name, p.c.last_name, p.c.title, c.c.domain.label("company"))
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.id.in_(reached))
        .order_by(p.c.id)
        .limit(SAMPLE_SIZE)
    ).mappings()
    impact = Preview(
        people_matched=people_matched,
        people_total=people_total,
        companies_matched=companies,
        enrollments_removed=enrollments,
        emails_cancelled=emails,
        sample=[dict(r) for r in sample_rows],
        near_misses=near_misses(db, workspace_id=workspace_id, exclusion=exclusion)
        + [
            NearMiss(listed=found.listed, present=found.present, kind="look_alike")
            for found in look_alikes.in_workspace(
                db, workspace_id=workspace_id, filter=exclusion.filter
            )
        ],
        unreached=unreached_at_domains(
            db, workspace_id=workspace_id, exclusion=exclusion, reached=reached
        ),
    )
    _judge(db, impact, workspace_id=workspace_id, exclusion=exclusion)
    return impact


def _judge(db: Connection, impact: Preview, *, workspace_id: int, exclusion: ExclusionSpec) -> None:
    settings = workspaces.get_by_id(db, workspace_id=workspace_id)
    if is_negative_only(exclusion.filter):
        impact.warnings.append(
            "every condition is negative (!=, not in, not contains): this matches almost "
            "everyone; add a positive condition"
        )
    if impact.people_matched == 0:
        impact.warnings.append("this filter matches nobody now")
    if impact.unreached is not None:
        impact.warnings.append(impact.unreached.message())
    if exclusion.enabled and impact.share > settings.mass_exclusion_share:
        impact.confirmation_reasons.append(
            f"it matches {impact.people_matched} of {impact.people_total} people "
            f"({impact.share:.0%}, above the workspace's {settings.mass_exclusion_share:.0%})"
        )
    if impact.enrollments_removed > settings.mass_unenroll_limit:
        impact.confirmation_reasons.append(
            f"it would unenroll {impact.enrollments_removed} active enrollments "
            f"(above the workspace's limit of {settings.mass_unenroll_limit})"
        )


def near_misses(db: Connection, *, workspace_id: int, exclusion: ExclusionSpec) -> list[NearMiss]:
    """Domains present in the data that share a listed domain's name under another suffix
    (`acme.co.uk` when `acme.com` is listed): whole-domain matching skips them (R18)."""
    listed: set[str] = set()
    for cond in conditions(exclusion.filter):
        field = lookup_field(cond.field)
        if field.type is FieldType.DOMAIN and cond.op in ("eq", "in"):
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            listed.update(str(v) for v in values)
    if not listed:
        return []
    by_label: dict[str, list[str]] = {}
    for domain in sorted(listed):
        by_label.setdefault(domain_label(domain), []).append(domain)
    c = t.companies
    rows = db.execute(
        sa.select(c.c.domain, c.c.domain_label)
        .where(
            c.c.workspace_id == workspace_id,
            in_list(c.c.domain_label, sorted(by_label)),
            sa.not_(in_list(c.c.domain, sorted(listed))),
        )
        .order_by(c.c.domain)
        .limit(NEAR_MISS_LIMIT)
    )
    return [NearMiss(listed=by_label[label][0], present=domain) for domain, label in rows]
