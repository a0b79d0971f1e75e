"""Loading what the decision core needs from storage, and asking it.

`facts()` gathers, in a fixed number of queries whatever the number of people,
everything the checks look at; `situation()` the sequence, its ruleset, the
audience and every exclusion; `explain()` answers R29 for one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Decision, Facts, Purpose, Situation, decide
from optout.services import decision_index, fresh_rules, subjects
from optout.services.directory import people
from optout.services.enrollments import automatic_outlook
from optout.services.exclusions import look_alikes
from optout.services.exclusions.domain_hints import explain_hints
from optout.services.mailboxes import availability
from optout.services.sequences import audiences, definitions
from optout.services.suppression import signals


def situation(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    purpose: Purpose,
    now: datetime,
    audience_id: int | None = None,
) -> Situation:
    return Situation(
        workspace_id=workspace_id,
        sequence=definitions.spec(db, workspace_id=workspace_id, sequence_id=sequence_id),
        exclusions=fresh_rules.all_specs(db, workspace_id=workspace_id),
        purpose=purpose,
        now=now,
        audience=(
            audiences.spec(db, workspace_id=workspace_id, audience_id=audience_id)
            if audience_id is not None
            else None
        ),
    )


def facts(
    db: Connection,
    *,
    workspace_id: int,
    person_ids: Sequence[int],
    sequence_id: int,
    matches_for: Situation | None = None,
) -> dict[int, Facts]:
    """Facts for each of `person_ids` about `sequence_id`; with `matches_for`, also which
    of its exclusions match each person, read from the decision index."""
    p, s, e = t.people, t.suppressions, t.enrollments
    loaded = subjects.load(db, workspace_id=workspace_id, person_ids=person_ids)
    persons = list(loaded.people.values())
    company_ids = {r["company_id"] for r in persons if r["company_id"] is not None}
    emails = {r["email"] for r in persons}
    suppressed: dict[tuple[str, str], dict[str, Any]] = {
        (r["email"], r["kind"]): dict(r)
        for r in db.execute(
            sa.select(s).where(s.c.workspace_id == workspace_id, s.c.email.in_(emails))
        ).mappings()
    }
    active: dict[int, dict[str, Any]] = {}
    last_end: dict[int, datetime] = {}
    for enr in db.execute(
        sa.select(e).where(e.c.sequence_id == sequence_id, e.c.person_id.in_(person_ids))
    ).mappings():
        if enr["status"] in t.ACTIVE_STATUSES:
            active[enr["person_id"]] = dict(enr)
        ended = enr["ended_at"]
        if ended is not None and ended > last_end.get(enr["person_id"], datetime.min):
            last_end[enr["person_id"]] = ended
    active_at_company: dict[int, int] = {
        row[0]: row[1]
        for row in db.execute(
            sa.select(p.c.company_id, sa.func.count())
            .join(e, e.c.person_id == p.c.id)
            .where(
                e.c.sequence_id == sequence_id,
                e.c.status.in_(t.ACTIVE_STATUSES),
                p.c.company_id.in_(company_ids),
            )
            .group_by(p.c.company_id)
        )
    }

    matches = (
        decision_index.matches_of(
            db,
            workspace_id=workspace_id,
            person_ids=[r["id"] for r in persons],
            exclusions=matches_for.exclusions,
            now=matches_for.now,
        )
        if matches_for is not None
        else None
    )
    out: dict[int, Facts] = {}
    for person in persons:
        company = loaded.companies.get(person["company_id"])
        out[person["id"]] = Facts(
            person_id=person["id"],
            email=person["email"],
            subject=loaded.person(person["id"]),
            company_group=loaded.group(company["group_id"]) if company else [],
            opted_out=suppressed.get((person["email"], "opt_out")),
            bounced=suppressed.get((person["email"], "bounce")),
            complained=suppressed.get((person["email"], "complaint")),
            active_enrollment=active.get(person["id"]),
            last_ended_at=last_end.get(person["id"]),
            company_active=active_at_company.get(person["company_id"], 0),
            matched_exclusions=(frozenset(matches[person["id"]]) if matches is not None else None),
        )
    return out


@dataclass(frozen=True)
class Explanation:
    person: dict[str, Any]
    sequence: str
    audience: str | None
    decision: Decision
    duplicates: int  # other people with the same address
    # Company rules listing this email's domain that miss the person (no or another company).
    company_hints: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. a look-alike of a listed domain
    # The latest time the address's opt-out was sent to the CRM, and where that stands.
    crm_writeback: signals.CrmWriteback | None = None
    # For a sequence that enrolls by itself: will it enroll them, or what stops it.
    automatic: automatic_outlook.Outlook | None = None


def explain(
    db: Connection,
    *,
    workspace_id: int,
    email: str,
    sequence: str,
    now: datetime,
    purpose: Purpose = Purpose.ENROLL,
    via_audience: bool | None = None,
) -> Explanation:
    """May this person be enrolled in / emailed by this sequence now, and why (R29).

    `via_audience` asks about an enrollment from the sequence's audience (the
    default when it has one); False asks about a manual enrollment.
    """
    ids = people.ids_by_email(db, workspace_id=workspace_id, email=email)
    if not ids:
        people.id_by_email(db, workspace_id=workspace_id, email=email)  # raises NotFound
    target = definitions.spec_by_name(db, workspace_id=workspace_id, name=sequence)
    audience_id = definitions.audience_id(db, workspace_id=workspace_id, sequence_id=target.id)
    use_audience = via_audience if via_audience is not None else audience_id is not None
    where = situation(
        db,
        workspace_id=workspace_id,
        sequence_id=target.id,
        purpose=purpose,
        now=now,
        audience_id=audience_id if use_audience and purpose is Purpose.ENROLL else None,
    )
    found = facts(
        db, workspace_id=workspace_id, person_ids=ids[:1], sequence_id=target.id, matches_for=where
    )[ids[0]]
    assert found.subject.person is not None
    sent = signals.crm_writebacks(db, workspace_id=workspace_id, email=found.email)
    warnings = look_alikes.person_warnings(db, workspace_id=workspace_id, person_id=ids[0])
    waiting = availability.for_person(
        db, workspace_id=workspace_id, person_id=ids[0], sequence_id=target.id, now=now
    )
    decision = decide(found, where)
    automatic = (
        automatic_outlook.outlook(
            db,
            sequence_id=target.id,
            person_id=ids[0],
            decision=decision,
            exclusion_names={x.id: x.name for x in where.exclusions},
            now=now,
        )
        if where.audience is not None
        else None
    )
    return Explanation(
        person=dict(found.subject.person),
        sequence=target.name,
        audience=where.audience.name if where.audience else None,
        decision=decision,
        duplicates=len(ids) - 1,
        company_hints=explain_hints(
            where.exclusions,
            email_domain=found.subject.person["email_domain"],
            company_domain=found.subject.company["domain"] if found.subject.company else None,
        ),
        warnings=[*warnings, waiting] if waiting else warnings,
        crm_writeback=sent[-1] if sent else None,
        automatic=automatic,
    )
