"""What a matched inbound message changes, by class (R4, R5, R6, R7, R21, R35, R36).

Called by `process_messages` inside its transaction, message by message, with what the
batch's messages need read beforehand for them all (`known.Known`): acting on one asks
the database nothing. What it counts (transient bounces, a reply's reset) is recorded
in the batch's `SoftBounces` and added to the stored counts once; a message that counted
is acted on again with the count the database returned, so the limit is judged on it.
What it changes beyond that goes into the batch's
`Effects`, applied once for every message processed together through the services that
own each change (enforcement, optouts, activities), so the events and re-checks those
services guarantee happen here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from optout.errors import NotFound
from optout.inbound.classify import Classification, Kind
from optout.inbound.dsn import RecipientStatus
from optout.inbound.effects import ACTOR, Effects, Later
from optout.inbound.known import Known
from optout.inbound.match import Target
from optout.services.activities import Activity
from optout.services.suppression import optouts

SENDING_REFUSED = "sending_refused"  # the event of a bounce that refused our side
_BY_MESSAGE = ("report_message_id", "in_reply_to", "references", "verp_token")
_SEVERITY_ORDER = ("bounced", "soft_bounce", "sending_refused", "delayed", "ignored")


@dataclass
class Outcome:
    outcome: str
    reason: str = ""
    review_needed: bool = False
    actions: list[str | Later] = field(default_factory=list)


def act(
    known: Known,
    verdict: Classification,
    target: Target,
    *,
    now: datetime,
    soft_bounce_limit: int,
    soft_bounce_window: timedelta,
    effects: Effects,
) -> Outcome:
    """Act on one matched message. What it changes beyond its own reading (events, the
    enrollment a reply ends, suppressions, a reply's activity) goes into `effects`, which
    the caller applies once for every message it processes together."""
    if verdict.kind is Kind.BOUNCE:
        return _bounce(
            known,
            verdict,
            target,
            now=now,
            limit=soft_bounce_limit,
            window=soft_bounce_window,
            effects=effects,
        )
    if target.person_id is None:
        return Outcome("unmatched", reason="the message names no person of ours")
    if verdict.kind is Kind.COMPLAINT:
        return _complaint(verdict, target, effects=effects)
    if verdict.kind is Kind.AUTO_REPLY:
        _event(effects, "auto_reply_received", verdict, target)
        return Outcome("auto_reply", actions=["auto-reply recorded; the sequence continues (R7)"])
    if verdict.kind is Kind.UNCLASSIFIED:
        _event(effects, "inbound_unclassified", verdict, target)
        return Outcome("unclassified", reason=verdict.evidence)
    if verdict.kind is Kind.UNSUBSCRIBE and target.by == "unsubscribe_token":
        return _mailto_unsubscribe(verdict, target, effects=effects)
    outcome = _reply(known, verdict, target, effects=effects)
    effects.activities.append(Activity(target.person_id, "reply", "email", now, target.sequence_id))
    if verdict.kind is Kind.UNSUBSCRIBE:
        _unsubscribe_request(known, verdict, target, outcome, effects=effects)
    return outcome


def _event(
    effects: Effects,
    kind: str,
    verdict: Classification,
    target: Target,
    **detail: Any,
) -> None:
    effects.event(
        kind,
        rule=verdict.rule,
        person_id=target.person_id,
        sequence_id=target.sequence_id,
        enrollment_id=target.enrollment_id,
        email_id=target.email_id,
        detail={
            "match": target.by,
            "evidence": verdict.evidence[:500],
            **detail,
        },
    )


def _reply(
    known: Known,
    verdict: Classification,
    target: Target,
    *,
    effects: Effects,
) -> Outcome:
    """R5: end only the enrollment answered. The reply is activity from `email` (R6, R21):
    `act` adds it to the effects' activities."""
    assert target.person_id is not None
    outcome = Outcome("replied")
    _event(effects, "reply_received", verdict, target)
    if target.enrollment_id is not None:
        ending = effects.end_reply(target.enrollment_id)
        outcome.actions.append(
            lambda: (
                f"enrollment {ending.enrollment_id} ended: replied"
                if ending.ended
                else f"enrollment {ending.enrollment_id} had ended already"
            )
        )
    outcome.actions.append("reply recorded as activity from source email")
    # A reply shows the address works: its count of transient bounces starts again.
    known.soft_bounces.reset((target.workspace_id, _email(target)))
    return outcome


def _unsubscribe_request(
    known: Known,
    verdict: Classification,
    target: Target,
    outcome: Outcome,
    *,
    effects: Effects,
) -> None:
    """R4: opt out with the reply as evidence, or flag for review when the workspace says so."""
    assert target.person_id is not None
    email = _email(target)
    if not known.opts_out(target.workspace_id):
        _event(effects, "unsubscribe_review_needed", verdict, target)
        outcome.outcome, outcome.review_needed = "review_needed", True
        outcome.reason = "asked to unsubscribe; automatic opt-out is off in this workspace"
        outcome.actions.append(f"{email} flagged for review (unsubscribe request)")
        return
    ticket = effects.suppress(
        optouts.opting_out(
            email,
            actor=ACTOR,
            channel="reply",
            reason="asked to unsubscribe in a reply",
            evidence=verdict.text.text or verdict.evidence,
        )
    )
    outcome.outcome = "opted_out"
    outcome.actions.append(
        lambda: (
            f"{email} opted out (channel reply); "
            f"{ticket.result.enrollments_ended} more enrollment(s) ended"
        )
    )


def _mailto_unsubscribe(verdict: Classification, target: Target, *, effects: Effects) -> Outcome:
    """Our List-Unsubscribe mailto (R3): always opts out; a button, not a reply."""
    assert target.person_id is not None
    email = _email(target)
    ticket = effects.suppress(
        optouts.opting_out(
            email,
            actor="recipient",
            channel="unsubscribe_link",
            reason="List-Unsubscribe mailto",
            evidence=verdict.evidence,
        )
    )
    return Outcome(
        "opted_out",
        actions=[
            lambda: (
                f"{email} opted out (List-Unsubscribe mailto); "
                f"{ticket.result.enrollments_ended} enrollment(s) ended"
            )
        ],
    )


def _complaint(
    verdict: Classification,
    target: Target,
    *,
    effects: Effects,
) -> Outcome:
    """R36: a spam complaint suppresses the person like an opt-out, in this transaction;
    a not-spam report is recorded and suppresses nothing."""
    assert target.person_id is not None
    feedback = verdict.feedback
    assert feedback is not None
    email = _email(target)
    _event(
        effects,
        "not_spam_reported" if feedback.is_not_spam else "complaint_received",
        verdict,
        target,
        feedback_type=feedback.feedback_type,
        reporting_domain=feedback.reporting_domain,
    )
    if feedback.is_not_spam:
        return Outcome(
            "not_spam",
            actions=[f"{email}: a not-spam report from {feedback.reporting_domain}; nothing done"],
        )
    ticket = effects.suppress(
        optouts.complaining(
            email,
            actor=ACTOR,
            feedback_type=feedback.feedback_type,
            reporting_domain=feedback.reporting_domain,
            reason=f"matched by {target.by.replace('_', ' ')}",
            evidence=f"{verdict.evidence[:1500]}\n{target.evidence[:400]}",
        )
    )
    source = feedback.reporting_domain or "a provider"
    return Outcome(
        "complained",
        actions=[
            lambda: (
                f"{email} suppressed: {feedback.feedback_type} report from {source}; "
                f"{ticket.result.enrollments_ended} enrollment(s) ended, "
                f"{ticket.result.emails_cancelled} queued email(s) cancelled"
            )
        ],
    )


def _bounce(
    known: Known,
    verdict: Classification,
    target: Target,
    *,
    now: datetime,
    limit: int,
    window: timedelta,
    effects: Effects,
) -> Outcome:
    """R7: permanent failures suppress the address; transient ones count toward `limit`."""
    report = verdict.report
    if report is None or not report.recipients:
        return Outcome("ignored", reason="the bounce names no recipient")
    emailed = _emailed(known, target.workspace_id, recipients=report.recipients)
    failing = [r for r in report.recipients if r.severity != "none"]
    fallback = ""
    if target.by in _BY_MESSAGE and len(failing) == 1 and target.person_id is not None:
        # The report is about the email we matched: its recipient is the one that failed.
        fallback = _email(target)
    results: list[str] = []
    actions: list[str | Later] = []
    for recipient in report.recipients:
        address = next((emailed[a] for a in recipient.addresses if a in emailed), "")
        address = address or (fallback if recipient.severity != "none" else "")
        if not address:
            actions.append(f"{recipient.address}: not an address we emailed; nothing done")
            continue
        result, action = _one_recipient(
            known,
            recipient,
            address,
            target,
            reader=report.reader,
            now=now,
            limit=limit,
            window=window,
            effects=effects,
        )
        results.append(result)
        actions.append(action)
    outcome = next((s for s in _SEVERITY_ORDER if s in results), "ignored")
    reason = "" if results else "the bounce names none of the addresses we emailed"
    return Outcome(outcome, reason=reason, actions=actions)


def _emailed(
    known: Known, workspace_id: int, *, recipients: tuple[RecipientStatus, ...]
) -> dict[str, str]:
    """Candidate address (as written) to canonical address, for those we sent email to."""
    emailed: dict[str, str] = {}
    for recipient in recipients:
        for written in recipient.addresses:
            canonical = known.canonical.get(written)
            if canonical is not None and (workspace_id, canonical) in known.emailed:
                emailed[written] = canonical
    return emailed


def _email(target: Target) -> str:
    """The address of the matched person."""
    if not target.email:
        raise NotFound(f"no person with id {target.person_id}")
    return target.email


def _one_recipient(
    known: Known,
    recipient: RecipientStatus,
    address: str,
    target: Target,
    *,
    reader: str,
    now: datetime,
    limit: int,
    window: timedelta,
    effects: Effects,
) -> tuple[str, str | Later]:
    ws = target.workspace_id
    detail = f"{recipient.status or recipient.action or 'failed'} {recipient.diagnostic}".strip()
    detail = f"{detail[:300]} (read by {reader}: {recipient.basis})"
    if recipient.severity == "permanent":
        return "bounced", _hard(
            effects, recipient, address, f"hard bounce: {detail}", f"{address} hard-bounced"
        )
    if recipient.severity == "delayed":
        _address_event(
            known,
            effects,
            ws,
            address,
            "delivery_delayed",
            status=recipient.status,
        )
        return "delayed", f"{address}: delivery delayed (the server keeps trying); nothing done"
    if recipient.severity == "none":
        return "ignored", f"{address}: {recipient.action}; no failure"
    if recipient.severity == "sending_side":
        _sending_refused(recipient, target, effects=effects)
        return "sending_refused", (
            f"{address}: our sending was refused ({recipient.basis}); nothing marked on the address"
        )
    failures = known.soft_bounces.count((ws, address), recipient.status, now=now, window=window)
    if failures >= limit:
        said = f"{address}: transient bounce {failures} of {limit}: now treated as hard"
        reason = f"{failures} transient bounces (last: {detail})"
        return "bounced", _hard(effects, recipient, address, reason, said)
    _address_event(
        known,
        effects,
        ws,
        address,
        "soft_bounce",
        status=recipient.status,
        failures=failures,
        limit=limit,
    )
    return "soft_bounce", f"{address}: transient bounce {failures} of {limit}"


def _hard(
    effects: Effects, recipient: RecipientStatus, address: str, reason: str, said: str
) -> Later:
    """The address is suppressed as a hard bounce with the batch; the action says so and
    how many enrollments that ended."""
    ticket = effects.suppress(
        optouts.bouncing(address, actor=ACTOR, reason=reason, evidence=recipient.diagnostic[:2000])
    )
    return lambda: f"{said}; {ticket.result.enrollments_ended} enrollment(s) ended"


def _sending_refused(recipient: RecipientStatus, target: Target, *, effects: Effects) -> None:
    """A refusal of our sender or server: recorded against the sending side, with the
    email it refused, so the dashboard shows it; nothing is held against the address."""
    effects.event(
        SENDING_REFUSED,
        rule="bounce",
        sequence_id=target.sequence_id,
        email_id=target.email_id,
        detail={
            "email": recipient.address,
            "status": recipient.status,
            "diagnostic": recipient.diagnostic[:500],
            "why": recipient.basis,
        },
    )


def _address_event(
    known: Known,
    effects: Effects,
    workspace_id: int,
    email: str,
    kind: str,
    **detail: Any,
) -> None:
    """An event for each person with the address."""
    for person_id in known.holders.get((workspace_id, email), ()):
        effects.event(kind, rule="bounce", person_id=person_id, detail={"email": email, **detail})
