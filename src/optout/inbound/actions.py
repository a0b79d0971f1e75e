"""What a matched inbound message changes, by class (R4, R5, R6, R7, R21, R35, R36).

Called by `process_message` inside its transaction. Every change goes through the
services that own it (enforcement, people, optouts, events), so the events and
re-checks those services guarantee happen here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound.classify import Classification, Kind
from optout.inbound.dsn import RecipientStatus
from optout.inbound.match import Target
from optout.normalize import normalize_email
from optout.services import events, optouts, people, workspaces
from optout.services.activities import Activity
from optout.services.enforcement import end_enrollments

ACTOR = "inbound"
SENDING_REFUSED = "sending_refused"  # the event of a bounce that refused our side
_BY_MESSAGE = ("report_message_id", "in_reply_to", "references", "verp_token")
_SEVERITY_ORDER = ("bounced", "soft_bounce", "sending_refused", "delayed", "ignored")


@dataclass
class Outcome:
    outcome: str
    reason: str = ""
    review_needed: bool = False
    actions: list[str] = field(default_factory=list)


def act(
    db: Connection,
    verdict: Classification,
    target: Target,
    *,
    inbound_id: int,
    now: datetime,
    soft_bounce_limit: int,
    soft_bounce_window: timedelta,
    activities: list[Activity],
) -> Outcome:
    """Act on one matched message. Activity it is (a reply) is appended to `activities`,
    which the caller records once for every message it processes together."""
    if verdict.kind is Kind.BOUNCE:
        return _bounce(
            db,
            verdict,
            target,
            inbound_id=inbound_id,
            now=now,
            limit=soft_bounce_limit,
            window=soft_bounce_window,
        )
    if target.person_id is None:
        return Outcome("unmatched", reason="the message names no person of ours")
    if verdict.kind is Kind.COMPLAINT:
        return _complaint(db, verdict, target, inbound_id=inbound_id, now=now)
    if verdict.kind is Kind.AUTO_REPLY:
        _event(db, "auto_reply_received", verdict, target, inbound_id=inbound_id, now=now)
        return Outcome("auto_reply", actions=["auto-reply recorded; the sequence continues (R7)"])
    if verdict.kind is Kind.UNCLASSIFIED:
        _event(db, "inbound_unclassified", verdict, target, inbound_id=inbound_id, now=now)
        return Outcome("unclassified", reason=verdict.evidence)
    if verdict.kind is Kind.UNSUBSCRIBE and target.by == "unsubscribe_token":
        return _mailto_unsubscribe(db, verdict, target, now=now)
    outcome = _reply(db, verdict, target, inbound_id=inbound_id, now=now)
    activities.append(Activity(target.person_id, "reply", "email", now, target.sequence_id))
    if verdict.kind is Kind.UNSUBSCRIBE:
        _unsubscribe_request(db, verdict, target, outcome, inbound_id=inbound_id, now=now)
    return outcome


def _event(
    db: Connection,
    kind: str,
    verdict: Classification,
    target: Target,
    *,
    inbound_id: int,
    now: datetime,
    **detail: Any,
) -> None:
    events.record(
        db,
        workspace_id=target.workspace_id,
        kind=kind,
        actor=ACTOR,
        now=now,
        rule=verdict.rule,
        person_id=target.person_id,
        sequence_id=target.sequence_id,
        enrollment_id=target.enrollment_id,
        email_id=target.email_id,
        detail={
            "inbound_id": inbound_id,
            "match": target.by,
            "evidence": verdict.evidence[:500],
            **detail,
        },
    )


def _reply(
    db: Connection, verdict: Classification, target: Target, *, inbound_id: int, now: datetime
) -> Outcome:
    """R5: end only the enrollment answered. The reply is activity from `email` (R6, R21):
    `act` adds it to the activities its caller records."""
    assert target.person_id is not None
    outcome = Outcome("replied")
    _event(db, "reply_received", verdict, target, inbound_id=inbound_id, now=now)
    if target.enrollment_id is not None:
        ended = end_enrollments(
            db,
            workspace_id=target.workspace_id,
            targets=sa.select(sa.literal(target.enrollment_id, sa.Integer).label("enrollment_id")),
            status="replied",
            reason="replied by email",
            rule="reply",
            actor=ACTOR,
            now=now,
        )
        outcome.actions.append(
            f"enrollment {target.enrollment_id} ended: replied"
            if ended.enrollments_ended
            else f"enrollment {target.enrollment_id} had ended already"
        )
    outcome.actions.append("reply recorded as activity from source email")
    person = people.get(db, workspace_id=target.workspace_id, person_id=target.person_id)
    sb = t.inbound_soft_bounces
    db.execute(
        sb.delete().where(sb.c.workspace_id == target.workspace_id, sb.c.email == person["email"])
    )
    return outcome


def _unsubscribe_request(
    db: Connection,
    verdict: Classification,
    target: Target,
    outcome: Outcome,
    *,
    inbound_id: int,
    now: datetime,
) -> None:
    """R4: opt out with the reply as evidence, or flag for review when the workspace says so."""
    assert target.person_id is not None
    workspace = workspaces.get_by_id(db, workspace_id=target.workspace_id)
    email = people.get(db, workspace_id=target.workspace_id, person_id=target.person_id)["email"]
    if not workspace.auto_opt_out_on_unsubscribe_reply:
        _event(db, "unsubscribe_review_needed", verdict, target, inbound_id=inbound_id, now=now)
        outcome.outcome, outcome.review_needed = "review_needed", True
        outcome.reason = "asked to unsubscribe; automatic opt-out is off in this workspace"
        outcome.actions.append(f"{email} flagged for review (unsubscribe request)")
        return
    done = optouts.opt_out(
        db,
        workspace_id=target.workspace_id,
        email=email,
        actor=ACTOR,
        channel="reply",
        now=now,
        reason="asked to unsubscribe in a reply",
        evidence=verdict.text.text or verdict.evidence,
    )
    outcome.outcome = "opted_out"
    outcome.actions.append(
        f"{email} opted out (channel reply); {done.enrollments_ended} more enrollment(s) ended"
    )


def _mailto_unsubscribe(
    db: Connection, verdict: Classification, target: Target, *, now: datetime
) -> Outcome:
    """Our List-Unsubscribe mailto (R3): always opts out; a button, not a reply."""
    assert target.person_id is not None
    email = people.get(db, workspace_id=target.workspace_id, person_id=target.person_id)["email"]
    done = optouts.opt_out(
        db,
        workspace_id=target.workspace_id,
        email=email,
        actor="recipient",
        channel="unsubscribe_link",
        now=now,
        reason="List-Unsubscribe mailto",
        evidence=verdict.evidence,
    )
    return Outcome(
        "opted_out",
        actions=[
            f"{email} opted out (List-Unsubscribe mailto); "
            f"{done.enrollments_ended} enrollment(s) ended"
        ],
    )


def _complaint(
    db: Connection, verdict: Classification, target: Target, *, inbound_id: int, now: datetime
) -> Outcome:
    """R36: a spam complaint suppresses the person like an opt-out, in this transaction;
    a not-spam report is recorded and suppresses nothing."""
    assert target.person_id is not None
    feedback = verdict.feedback
    assert feedback is not None
    email = people.get(db, workspace_id=target.workspace_id, person_id=target.person_id)["email"]
    _event(
        db,
        "not_spam_reported" if feedback.is_not_spam else "complaint_received",
        verdict,
        target,
        inbound_id=inbound_id,
        now=now,
        feedback_type=feedback.feedback_type,
        reporting_domain=feedback.reporting_domain,
    )
    if feedback.is_not_spam:
        return Outcome(
            "not_spam",
            actions=[f"{email}: a not-spam report from {feedback.reporting_domain}; nothing done"],
        )
    done = optouts.complain(
        db,
        workspace_id=target.workspace_id,
        email=email,
        actor=ACTOR,
        now=now,
        feedback_type=feedback.feedback_type,
        reporting_domain=feedback.reporting_domain,
        reason=f"matched by {target.by.replace('_', ' ')}",
        evidence=f"{verdict.evidence[:1500]}\n{target.evidence[:400]}",
    )
    return Outcome(
        "complained",
        actions=[
            f"{email} suppressed: {feedback.feedback_type} report from "
            f"{feedback.reporting_domain or 'a provider'}; {done.enrollments_ended} "
            f"enrollment(s) ended, {done.emails_cancelled} queued email(s) cancelled"
        ],
    )


def _bounce(
    db: Connection,
    verdict: Classification,
    target: Target,
    *,
    inbound_id: int,
    now: datetime,
    limit: int,
    window: timedelta,
) -> Outcome:
    """R7: permanent failures suppress the address; transient ones count toward `limit`."""
    report = verdict.report
    if report is None or not report.recipients:
        return Outcome("ignored", reason="the bounce names no recipient")
    emailed = _emailed(db, target.workspace_id, [a for r in report.recipients for a in r.addresses])
    failing = [r for r in report.recipients if r.severity != "none"]
    fallback = ""
    if target.by in _BY_MESSAGE and len(failing) == 1 and target.person_id is not None:
        # The report is about the email we matched: its recipient is the one that failed.
        fallback = str(
            people.get(db, workspace_id=target.workspace_id, person_id=target.person_id)["email"]
        )
    results: list[str] = []
    actions: list[str] = []
    for recipient in report.recipients:
        address = next((emailed[a] for a in recipient.addresses if a in emailed), "")
        address = address or (fallback if recipient.severity != "none" else "")
        if not address:
            actions.append(f"{recipient.address}: not an address we emailed; nothing done")
            continue
        result, action = _one_recipient(
            db,
            recipient,
            address,
            target,
            reader=report.reader,
            inbound_id=inbound_id,
            now=now,
            limit=limit,
            window=window,
        )
        results.append(result)
        actions.append(action)
    outcome = next((s for s in _SEVERITY_ORDER if s in results), "ignored")
    reason = "" if results else "the bounce names none of the addresses we emailed"
    return Outcome(outcome, reason=reason, actions=actions)


def _emailed(db: Connection, workspace_id: int, candidates: list[str]) -> dict[str, str]:
    """Candidate address (as written) to canonical address, for those we sent email to."""
    canonical: dict[str, str] = {}
    for address in candidates:
        try:
            canonical[address] = normalize_email(address).address
        except InvalidInput:
            continue
    if not canonical:
        return {}
    p, o = t.people, t.outbound_emails
    sent_to = set(
        db.scalars(
            sa.select(p.c.email)
            .where(
                p.c.workspace_id == workspace_id,
                p.c.email.in_(set(canonical.values())),
                sa.exists().where(o.c.person_id == p.c.id, o.c.status == "sent"),
            )
            .distinct()
        )
    )
    return {written: c for written, c in canonical.items() if c in sent_to}


def _one_recipient(
    db: Connection,
    recipient: RecipientStatus,
    address: str,
    target: Target,
    *,
    reader: str,
    inbound_id: int,
    now: datetime,
    limit: int,
    window: timedelta,
) -> tuple[str, str]:
    ws = target.workspace_id
    detail = f"{recipient.status or recipient.action or 'failed'} {recipient.diagnostic}".strip()
    detail = f"{detail[:300]} (read by {reader}: {recipient.basis})"
    if recipient.severity == "permanent":
        done = optouts.bounce(
            db,
            workspace_id=ws,
            email=address,
            actor=ACTOR,
            now=now,
            reason=f"hard bounce: {detail}",
            evidence=recipient.diagnostic[:2000],
        )
        return "bounced", f"{address} hard-bounced; {done.enrollments_ended} enrollment(s) ended"
    if recipient.severity == "delayed":
        _address_event(
            db,
            ws,
            address,
            "delivery_delayed",
            now=now,
            inbound_id=inbound_id,
            status=recipient.status,
        )
        return "delayed", f"{address}: delivery delayed (the server keeps trying); nothing done"
    if recipient.severity == "none":
        return "ignored", f"{address}: {recipient.action}; no failure"
    if recipient.severity == "sending_side":
        _sending_refused(db, recipient, target, inbound_id=inbound_id, now=now)
        return "sending_refused", (
            f"{address}: our sending was refused ({recipient.basis}); nothing marked on the address"
        )
    failures = _count_soft_bounce(db, ws, address, recipient.status, now=now, window=window)
    if failures >= limit:
        done = optouts.bounce(
            db,
            workspace_id=ws,
            email=address,
            actor=ACTOR,
            now=now,
            reason=f"{failures} transient bounces (last: {detail})",
            evidence=recipient.diagnostic[:2000],
        )
        return "bounced", (
            f"{address}: transient bounce {failures} of {limit}: now treated as hard; "
            f"{done.enrollments_ended} enrollment(s) ended"
        )
    _address_event(
        db,
        ws,
        address,
        "soft_bounce",
        now=now,
        inbound_id=inbound_id,
        status=recipient.status,
        failures=failures,
        limit=limit,
    )
    return "soft_bounce", f"{address}: transient bounce {failures} of {limit}"


def _sending_refused(
    db: Connection, recipient: RecipientStatus, target: Target, *, inbound_id: int, now: datetime
) -> None:
    """A refusal of our sender or server: recorded against the sending side, with the
    email it refused, so the dashboard shows it; nothing is held against the address."""
    events.record(
        db,
        workspace_id=target.workspace_id,
        kind=SENDING_REFUSED,
        actor=ACTOR,
        now=now,
        rule="bounce",
        sequence_id=target.sequence_id,
        email_id=target.email_id,
        detail={
            "inbound_id": inbound_id,
            "email": recipient.address,
            "status": recipient.status,
            "diagnostic": recipient.diagnostic[:500],
            "why": recipient.basis,
        },
    )


def _count_soft_bounce(
    db: Connection, workspace_id: int, email: str, status: str, *, now: datetime, window: timedelta
) -> int:
    """One more transient failure of `email`; the count restarts after a quiet `window`."""
    sb = t.inbound_soft_bounces
    row = db.execute(
        sa.select(sb.c.id, sb.c.failures, sb.c.last_at).where(
            sb.c.workspace_id == workspace_id, sb.c.email == email
        )
    ).first()
    if row is None:
        db.execute(
            sb.insert().values(
                workspace_id=workspace_id,
                email=email,
                failures=1,
                first_at=now,
                last_at=now,
                last_status=status[:32],
            )
        )
        return 1
    fresh = now - row.last_at > window
    failures = 1 if fresh else int(row.failures) + 1
    values: dict[str, Any] = {"failures": failures, "last_at": now, "last_status": status[:32]}
    if fresh:
        values["first_at"] = now
    db.execute(sb.update().where(sb.c.id == row.id).values(**values))
    return failures


def _address_event(
    db: Connection, workspace_id: int, email: str, kind: str, *, now: datetime, **detail: Any
) -> None:
    p = t.people
    events.record_from_select(
        db,
        workspace_id=workspace_id,
        kind=kind,
        actor=ACTOR,
        now=now,
        rule="bounce",
        detail={"email": email, **detail},
        select=sa.select(p.c.id.label("person_id")).where(
            p.c.workspace_id == workspace_id, p.c.email == email
        ),
    )
