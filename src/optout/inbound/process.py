"""THE use-case for mail that comes back (R4-R7, R21, R34-R36): every way
in (SMTP listener, IMAP poller, `optout inbound process`, an HTTP route) hands the
raw message to `process_message`, inside the one transaction it opens.

What happens, by class:

- reply (R5): only the enrollment it answers ends (`replied`); the reply is
  activity from source `email`, so the person's and company's `last_replied_at`
  move and enforced exclusions are re-checked at once (R6, R14, R21);
- unsubscribe request (R4): the same, and the person is opted out with the new
  text as evidence, or flagged for review when the workspace switched automatic
  opt-out off; our List-Unsubscribe mailto always opts out;
- auto-reply (R7): nothing changes but an event, so the history shows it;
- bounce (R7): a permanent failure suppresses the address (`optouts.bounce`);
  transient ones are counted per address and turn permanent at the limit;
- spam complaint (R36): a feedback-loop report about one of our emails suppresses
  the person (`optouts.complain`); a `not-spam` report is recorded and changes nothing.

Every message is stored in `inbound_messages`, matched or not, with its class,
evidence and outcome; the same message twice (same Message-ID and body) is
recognized and changes nothing the second time. Input that is not a message
raises InvalidInput before anything is written.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.clock import as_stored
from optout.db import tables as t
from optout.errors import InvalidInput
from optout.filters.sqlfunc import in_list
from optout.inbound.actions import Outcome, act
from optout.inbound.classify import Classification, classify
from optout.inbound.effects import ACTOR, Effects, apply, words
from optout.inbound.known import Known, know
from optout.inbound.match import Match, Target, Unmatched, match_all
from optout.inbound.parse import ParsedMessage, clean, parse_message
from optout.mail.tokens import UnsubscribeTokens
from optout.services import activities, workspaces
from optout.services.enforcement import Removal

SOURCE_MAX = 200
# Messages that a way in receiving many at once (the IMAP poller, `optout inbound process`
# over several files, the SMTP listener under load) processes in one transaction.
BATCH = 100


@dataclass(frozen=True)
class InboundOptions:
    """How inbound mail is read; the defaults suit most installs."""

    tokens: UnsubscribeTokens | None = None  # reads unsubscribe and VERP tokens (R3)
    reply_window: timedelta = timedelta(days=30)  # a From address matches our emails this recent
    soft_bounce_limit: int = 3  # transient bounces of one address that count as a hard one
    soft_bounce_window: timedelta = timedelta(days=30)  # ... when each follows within this
    max_message_bytes: int = 25 * 1024 * 1024
    max_stored_bytes: int = 256 * 1024  # of the raw message kept in inbound_messages

    def __post_init__(self) -> None:
        if self.soft_bounce_limit < 1:
            raise InvalidInput("soft_bounce_limit must be at least 1")
        if self.max_message_bytes < 1 or self.max_stored_bytes < 0:
            raise InvalidInput("message size limits must be positive")


DEFAULT_OPTIONS = InboundOptions()


@dataclass(frozen=True)
class InboundResult:
    id: int  # the inbound_messages row
    duplicate: bool  # seen before: nothing was done this time
    kind: str
    rule: str
    evidence: str
    outcome: str  # replied, opted_out, review_needed, auto_reply, bounced, soft_bounce, ...
    match_by: str | None
    workspace_id: int | None
    person_id: int | None
    enrollment_id: int | None
    email_id: int | None
    review_needed: bool
    reason: str
    actions: tuple[str, ...] = field(default_factory=tuple)

    @property
    def matched(self) -> bool:
        return self.match_by is not None


@dataclass(frozen=True)
class Incoming:
    """One raw message and where it came from (`smtp`, `imap:<folder>`, `file:<name>`)."""

    raw: bytes
    source: str


def process_message(
    db: Connection,
    *,
    raw: bytes,
    now: datetime,
    source: str,
    workspace_id: int | None = None,
    options: InboundOptions = DEFAULT_OPTIONS,
) -> InboundResult:
    """Classify one inbound message, match it to what it answers, act, and store it.

    `workspace_id` limits matching to one workspace (a way in that serves one);
    without it the match decides whose message it is. Input that is not a message
    raises InvalidInput.
    """
    (result,) = process_messages(
        db,
        messages=[Incoming(raw, source)],
        now=now,
        workspace_id=workspace_id,
        options=options,
    )
    if isinstance(result, InvalidInput):
        raise result
    return result


def process_messages(
    db: Connection,
    *,
    messages: Sequence[Incoming],
    now: datetime,
    workspace_id: int | None = None,
    options: InboundOptions = DEFAULT_OPTIONS,
) -> list[InboundResult | InvalidInput]:
    """`process_message` for several messages in the caller's one transaction: each is
    parsed and classified, then they are matched together (`match.match_all`: a few
    statements for the whole batch), acted on in turn from what was read for them all
    (`known`), stored together, and what they change (events, endings, suppressions, the
    replies' activity with one re-check of the exclusions it may trip, R6, R14) is applied
    together (`effects`). No statement is asked per message.

    A message that is not one gives its InvalidInput in its place and changes nothing;
    the others go on. A message seen before (here or earlier in the same list) is done
    once.
    """
    now = as_stored(now)
    if workspace_id is not None:
        workspaces.get_by_id(db, workspace_id=workspace_id)
    arrived = [_arrive(message, workspace_id, options) for message in messages]
    stored = _stored(db, {a.key for a in arrived if isinstance(a, _Arrived)})
    slots: list[_Arrived | InboundResult | InvalidInput | str] = []
    fresh: dict[str, tuple[_Arrived, Classification]] = {}
    for one in arrived:
        if isinstance(one, InvalidInput):
            slots.append(one)
        elif one.key in stored:
            slots.append(stored[one.key])
        elif one.key in fresh:
            slots.append(one.key)  # a copy of a message of this batch
        else:
            try:
                verdict = classify(one.parsed)
            except InvalidInput as exc:
                slots.append(exc)
                continue
            fresh[one.key] = (one, verdict)
            slots.append(one)
    done = _read_all(db, list(fresh.values()), now, workspace_id, options)
    _store(db, [r for r in done.values() if isinstance(r, _Read)], now=now, options=options)
    batch: dict[int, Effects] = defaultdict(Effects)
    for each in done.values():
        if isinstance(each, _Read) and each.target is not None:
            batch[each.target.workspace_id].extend(each.effects)
    rechecked: dict[int, Removal] = {}
    for workspace, effects in batch.items():
        apply(db, workspace_id=workspace, effects=effects, now=now)
        if effects.activities:
            rechecked[workspace] = activities.record(
                db, workspace_id=workspace, activities=effects.activities, now=now, actor=ACTOR
            )
    read: list[_Read | InboundResult | InvalidInput | _Copy] = []
    for slot in slots:
        if isinstance(slot, _Arrived):
            read.append(done[slot.key])
        elif isinstance(slot, str):
            original = done[slot]
            read.append(_Copy(original) if isinstance(original, _Read) else original)
        else:
            read.append(slot)
    return _finish(db, read, batch, rechecked)


def _read_all(
    db: Connection,
    fresh: list[tuple[_Arrived, Classification]],
    now: datetime,
    workspace_id: int | None,
    options: InboundOptions,
) -> dict[str, _Read | InvalidInput]:
    """Match the batch's new messages together, then act on each in turn from what was
    read for them all; the transient bounces they count are added to the stored counts at
    once, and each message that counted one is acted on again with the count the database
    returned (`soft_bounces`)."""
    matches = match_all(
        db,
        [(message.parsed, verdict) for message, verdict in fresh],
        workspace_id=workspace_id,
        tokens=options.tokens,
        now=now,
        window=options.reply_window,
    )
    known = know(
        db,
        [
            (verdict, found)
            for (_, verdict), found in zip(fresh, matches, strict=True)
            if isinstance(found, Target)
        ],
    )
    soft = known.soft_bounces
    done: dict[str, _Read | InvalidInput] = {}
    steps: dict[str, tuple[int, int]] = {}  # message key -> its bounces and resets
    for (message, verdict), found in zip(fresh, matches, strict=True):
        mark = soft.mark()
        try:
            done[message.key] = _act(known, message, verdict, found, now, workspace_id, options)
        except InvalidInput as exc:  # what it counted is taken back; nothing else was done
            soft.undo(mark)
            done[message.key] = exc
            continue
        steps[message.key] = (mark, soft.mark())
    counts = soft.write(db)
    # A message that counted a transient bounce is acted on again with the count the
    # database gave it: another process may have counted the same address meanwhile.
    for (message, verdict), found in zip(fresh, matches, strict=True):
        start, end = steps.get(message.key, (0, 0))
        if soft.counted(start, end):
            with soft.replaying(counts[start:end]):
                done[message.key] = _act(known, message, verdict, found, now, workspace_id, options)
    return done


def _act(
    known: Known,
    message: _Arrived,
    verdict: Classification,
    found: Match,
    now: datetime,
    workspace_id: int | None,
    options: InboundOptions,
) -> _Read:
    """Act on one message of the batch, from what was read for them all."""
    effects = Effects()
    if isinstance(found, Target):
        outcome = act(
            known,
            verdict,
            found,
            now=now,
            soft_bounce_limit=options.soft_bounce_limit,
            soft_bounce_window=options.soft_bounce_window,
            effects=effects,
        )
    else:
        outcome = Outcome("unmatched", reason=found.reason)
    return _Read(message, verdict, found, outcome, workspace_id, effects)


@dataclass(frozen=True)
class _Arrived:
    """A message as it came, checked and parsed, before anything is asked of the database."""

    raw: bytes
    origin: str
    parsed: ParsedMessage
    key: str


@dataclass
class _Read:
    """A message read and matched, whose row and outcome wait for the batch."""

    arrived: _Arrived
    verdict: Classification
    match: Match
    outcome: Outcome
    scope: int | None  # the workspace of the way in, if it serves one
    effects: Effects  # what it changes, applied with the batch's
    row_id: int = 0  # once stored

    @property
    def target(self) -> Target | None:
        return self.match if isinstance(self.match, Target) else None


@dataclass(frozen=True)
class _Copy:
    """A second copy of a message of the same batch: it answers as that one did."""

    of: _Read


def _arrive(
    message: Incoming, scope: int | None, options: InboundOptions
) -> _Arrived | InvalidInput:
    try:
        raw = message.raw
        origin = _check_source(message.source)
        if not isinstance(raw, bytes | bytearray) or not raw:
            raise InvalidInput("an inbound message must be non-empty bytes")
        if len(raw) > options.max_message_bytes:
            raise InvalidInput(
                f"the message is {len(raw)} bytes; the limit is {options.max_message_bytes}"
            )
        parsed = parse_message(bytes(raw))
    except InvalidInput as exc:
        return exc
    return _Arrived(bytes(raw), origin, parsed, dedup_key(parsed, workspace_id=scope))


def _finish(
    db: Connection,
    read: list[_Read | InboundResult | InvalidInput | _Copy],
    batch: dict[int, Effects],
    rechecked: dict[int, Removal],
) -> list[InboundResult | InvalidInput]:
    """Each message's outcome in words, now that the batch is applied, stored on its row
    in one statement; a copy of a message of this batch answers as that message did."""
    done: dict[int, InboundResult] = {}
    rows: list[dict[str, Any]] = []
    for one in read:
        if not isinstance(one, _Read):
            continue
        actions = words(one.outcome.actions)
        target = one.target
        if target is not None and one.effects.activities:
            actions += _rechecked(rechecked.get(target.workspace_id), batch[target.workspace_id])
        outcome = one.outcome
        rows.append(
            {
                "row_id": one.row_id,
                "outcome": outcome.outcome,
                "reason": clean(outcome.reason, 2000),
                "review_needed": outcome.review_needed,
                "evidence": _evidence(one.arrived.parsed, one.verdict, actions, one.match),
            }
        )
        done[one.row_id] = InboundResult(
            id=one.row_id,
            duplicate=False,
            kind=one.verdict.kind.value,
            rule=one.verdict.rule,
            evidence=one.verdict.evidence,
            outcome=outcome.outcome,
            match_by=target.by if target else None,
            workspace_id=target.workspace_id if target else _workspace_of(one.match, one.scope),
            person_id=target.person_id if target else None,
            enrollment_id=target.enrollment_id if target else None,
            email_id=target.email_id if target else None,
            review_needed=outcome.review_needed,
            reason=outcome.reason,
            actions=tuple(actions),
        )
    if rows:
        m = t.inbound_messages
        db.execute(
            m.update()
            .where(m.c.id == sa.bindparam("row_id"))
            .values(
                outcome=sa.bindparam("outcome"),
                reason=sa.bindparam("reason"),
                review_needed=sa.bindparam("review_needed"),
                evidence=sa.bindparam("evidence", type_=m.c.evidence.type),
            ),
            rows,
        )
    results: list[InboundResult | InvalidInput] = []
    for one in read:
        if isinstance(one, _Read):
            results.append(done[one.row_id])
        elif isinstance(one, _Copy):
            results.append(replace(done[one.of.row_id], duplicate=True))
        else:
            results.append(one)
    return results


def _rechecked(removal: Removal | None, effects: Effects) -> list[str]:
    """What the one re-check of the batch's activity ended, said on each message whose
    activity it was."""
    if removal is None or not removal.enrollments_ended:
        return []
    line = (
        f"{removal.enrollments_ended} enrollment(s) ended by exclusions that the activity "
        f"now matches"
    )
    if len(effects.activities) > 1:
        line += f" (re-checked once for the {len(effects.activities)} messages processed together)"
    return [line]


def dedup_key(parsed: ParsedMessage, *, workspace_id: int | None) -> str:
    """The same message delivered or fetched twice has the same key: its Message-ID and
    body (trace headers added on the way differ), within the scope of the way in."""
    identity = parsed.message_id or "\n".join(
        (parsed.header("From"), parsed.header("Date"), parsed.subject)
    )
    scope = "*" if workspace_id is None else str(workspace_id)
    text = f"{scope}\n{identity}\n{parsed.body_hash}"
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _check_source(source: str) -> str:
    origin = source.strip() if isinstance(source, str) else ""
    if not origin or len(origin) > SOURCE_MAX or not origin.isprintable():
        raise InvalidInput(f"say where the message came from (source, 1-{SOURCE_MAX} characters)")
    return origin


def _workspace_of(match: Match, scope: int | None) -> int | None:
    if isinstance(match, Target):
        return match.workspace_id
    return match.workspace_id if match.workspace_id is not None else scope


def _store(db: Connection, read: list[_Read], *, now: datetime, options: InboundOptions) -> None:
    """Store the messages read, matched or not, in one statement; each then names its row
    on the events it causes."""
    if not read:
        return
    m = t.inbound_messages
    rows: list[dict[str, Any]] = []
    for one in read:
        message, match, target = one.arrived, one.match, one.target
        parsed = message.parsed
        rows.append(
            {
                "workspace_id": _workspace_of(match, one.scope),
                "received_at": now,
                "source": clean(message.origin, SOURCE_MAX),
                "dedup_key": message.key,
                "message_id": clean(parsed.message_id, 500) or None,
                "from_address": clean(parsed.from_address, 320),
                "subject": clean(parsed.subject, 2000),
                "headers": parsed.header_block,
                "raw": message.raw[: options.max_stored_bytes],
                "raw_size": len(message.raw),
                "kind": one.verdict.kind.value,
                "rule": one.verdict.rule,
                "evidence": {},
                "new_text": one.verdict.text.text,
                "match_by": target.by if target else None,
                "person_id": target.person_id if target else None,
                "enrollment_id": target.enrollment_id if target else None,
                "email_id": target.email_id if target else None,
                "outcome": "pending",
                "reason": clean(match.reason, 2000) if isinstance(match, Unmatched) else "",
                "review_needed": False,
            }
        )
    db.execute(m.insert(), rows)
    # Their keys are new and distinct (copies were set apart): they name the new rows.
    keys = [one.arrived.key for one in read]
    found = db.execute(sa.select(m.c.dedup_key, m.c.id).where(in_list(m.c.dedup_key, keys)))
    ids: dict[str, int] = {str(key): int(row_id) for key, row_id in found}
    for one in read:
        one.row_id = int(ids[one.arrived.key])
        one.effects.stamp(one.row_id)


def _evidence(
    parsed: ParsedMessage, verdict: Classification, actions: list[str], match: Match
) -> dict[str, Any]:
    report = verdict.report
    return {
        "checks": [
            {"rule": c.rule, "hit": c.hit, "evidence": clean(c.evidence, 500)}
            for c in verdict.checks
        ],
        "text_source": verdict.text.source,
        "cut_at": verdict.text.cut_at,
        "forwarded": verdict.text.forwarded,
        "defects": [clean(d, 200) for d in parsed.defects[:20]],
        "report": None
        if report is None
        else {
            "format": report.format,
            "reader": report.reader,
            "original_message_id": clean(report.original_message_id, 500),
            "recipients": [
                {
                    "address": r.address,
                    "original": r.original,
                    "action": r.action,
                    "status": r.status,
                    "severity": r.severity,
                    "why": clean(r.basis, 300),
                    "diagnostic": clean(r.diagnostic, 500),
                }
                for r in report.recipients[:20]
            ],
        },
        "complaint": _complaint_evidence(verdict, match),
        "actions": [clean(a, 500) for a in actions[:50]],
    }


def _complaint_evidence(verdict: Classification, match: Match) -> dict[str, Any] | None:
    """What a feedback-loop report said, and how it found (or missed) our email (R36)."""
    feedback = verdict.feedback
    if feedback is None:
        return None
    return {
        "format": feedback.format,
        "feedback_type": clean(feedback.feedback_type, 40),
        "reporting_domain": clean(feedback.reporting_domain, 255),
        "reporting_mta": clean(feedback.reporting_mta, 255),
        "user_agent": clean(feedback.user_agent, 200),
        "source_ip": clean(feedback.source_ip, 64),
        "arrival_date": clean(feedback.arrival_date, 100),
        "original_message_id": clean(feedback.message_id, 500),
        "cfbl_feedback_id": clean(feedback.cfbl_feedback_id, 500),
        "recipients": [clean(a, 320) for a in feedback.recipients],
        "redacted": feedback.redacted,
        "matched_by": match.by if isinstance(match, Target) else None,
        "match_evidence": clean(match.evidence if isinstance(match, Target) else match.reason, 500),
    }


def _stored(db: Connection, keys: set[str]) -> dict[str, InboundResult]:
    """The messages of these keys stored before, as the duplicates they now are."""
    if not keys:
        return {}
    m = t.inbound_messages
    rows = db.execute(sa.select(m).where(m.c.dedup_key.in_(sorted(keys)))).mappings()
    return {row["dedup_key"]: from_row(row, duplicate=True) for row in rows}


def from_row(row: Any, *, duplicate: bool = False) -> InboundResult:
    """An InboundResult from a stored inbound_messages row."""
    checks = (row["evidence"] or {}).get("checks") or []
    decided: dict[str, Any] = next((c for c in checks if c.get("hit")), {})
    return InboundResult(
        id=row["id"],
        duplicate=duplicate,
        kind=row["kind"],
        rule=row["rule"],
        evidence=str(decided.get("evidence", "")),
        outcome=row["outcome"],
        match_by=row["match_by"],
        workspace_id=row["workspace_id"],
        person_id=row["person_id"],
        enrollment_id=row["enrollment_id"],
        email_id=row["email_id"],
        review_needed=row["review_needed"],
        reason=row["reason"],
        actions=tuple((row["evidence"] or {}).get("actions") or ()),
    )
