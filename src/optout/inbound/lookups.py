"""What the messages of one batch refer to, read from the database together: the sent
emails their Message-IDs and feedback ids name, then, for the messages those leave
unmatched, the people their tokens stand for (with our latest email to each) and our
recent emails to the addresses they come from. A batch of a hundred messages asks a
handful of statements, whatever their number; `match` decides each message's match from
these answers alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.hints import broadly
from optout.filters.sqlfunc import in_list
from optout.mail.feedback_ids import FeedbackClaims, InvalidFeedbackId
from optout.mail.tokens import Claims, InvalidToken, UnsubscribeTokens

# Our most recent emails to one address that matching by address reads.
RECENT_PER_ADDRESS = 20


@dataclass(frozen=True)
class SentEmail:
    """One of our sent emails, with the address of the person it went to."""

    id: int
    workspace_id: int
    person_id: int
    enrollment_id: int | None
    sequence_id: int | None
    message_id: str | None
    sent_at: datetime
    email: str


@dataclass(frozen=True)
class TokenPerson:
    workspace_id: int
    email: str


@dataclass
class Lookups:
    """The answers for one batch. Filled in two rounds: the sent emails the messages name
    by id, then the token people and addresses that matching asked for (`asked_people`,
    `asked`) and found not read yet."""

    scope: int | None  # the workspace of the way in, if it serves one
    since: datetime  # matching by address reads emails sent since
    tokens: UnsubscribeTokens | None
    by_message_id: dict[str, SentEmail] = field(default_factory=dict)
    by_email_id: dict[int, SentEmail] = field(default_factory=dict)
    claims: dict[str, Claims | None] = field(default_factory=dict)
    feedback: dict[str, FeedbackClaims | None] = field(default_factory=dict)
    people: dict[int, TokenPerson | None] = field(default_factory=dict)
    latest: dict[int, SentEmail] = field(default_factory=dict)  # by person id
    by_address: dict[str, list[SentEmail]] = field(default_factory=dict)
    asked_people: set[int] = field(default_factory=set)
    asked: set[str] = field(default_factory=set)
    wanted_ids: set[str] = field(default_factory=set)
    missed: bool = False  # the last match asked an address not read yet

    def want_message_ids(self, ids: Iterable[str]) -> None:
        self.wanted_ids.update(ids)

    def claims_of(self, token: str) -> Claims | None:
        """The claims of a token, read once per batch; None when it is not ours."""
        if token not in self.claims:
            try:
                self.claims[token] = self.tokens.read(token) if self.tokens else None
            except InvalidToken:
                self.claims[token] = None
        return self.claims[token]

    def feedback_of(self, value: str) -> FeedbackClaims | None:
        if value not in self.feedback:
            try:
                read = self.tokens.feedback_ids.read(value) if self.tokens else None
            except InvalidFeedbackId:
                read = None
            self.feedback[value] = read
        return self.feedback[value]

    def person(self, person_id: int) -> TokenPerson | None:
        """The person a token names, once read; until then nobody, and the person is
        noted for the next round."""
        if person_id not in self.people:
            self.asked_people.add(person_id)
            self.missed = True
            return None
        return self.people[person_id]

    def sent_to(self, canonical: str) -> list[SentEmail]:
        """Our most recent emails to an address (newest first), once read; until then
        nothing, and the address is noted for the next round."""
        found = self.by_address.get(canonical)
        if found is None:
            self.asked.add(canonical)
            self.missed = True
            return []
        return found

    def read_named(self, db: Connection) -> None:
        """The first round: the sent emails the messages' Message-IDs and feedback ids
        name."""
        o = t.outbound_emails
        if self.wanted_ids:
            wanted = sorted(self.wanted_ids)
            rows = db.execute(self._scoped(_sent().where(in_list(o.c.message_id, wanted))))
            self.by_message_id = {row.message_id: _email(row) for row in rows}
        email_ids = sorted({c.email_id for c in self.feedback.values() if c is not None})
        if email_ids:
            rows = db.execute(self._scoped(_sent().where(in_list(o.c.id, email_ids))))
            self.by_email_id = {row.id: _email(row) for row in rows}

    def read_asked(self, db: Connection) -> None:
        """The second round: the people asked, with our latest email to each, and our
        recent emails to the addresses asked."""
        self._read_people(db, sorted(self.asked_people - set(self.people)))
        self._read_addresses(db, sorted(self.asked - set(self.by_address)))

    def _read_people(self, db: Connection, asked: list[int]) -> None:
        if not asked:
            return
        p, o = t.people, t.outbound_emails
        found = {
            row.id: TokenPerson(row.workspace_id, row.email)
            for row in db.execute(
                sa.select(p.c.id, p.c.workspace_id, p.c.email).where(in_list(p.c.id, asked))
            )
        }
        for person_id in asked:
            self.people[person_id] = found.get(person_id)
        if not found:
            return
        rows = db.execute(
            _sent()
            .where(in_list(o.c.person_id, sorted(found)))
            .order_by(o.c.sent_at.desc(), o.c.id.desc())
        )
        for row in rows:
            if row.workspace_id == found[row.person_id].workspace_id:
                self.latest.setdefault(row.person_id, _email(row))

    def _read_addresses(self, db: Connection, asked: list[str]) -> None:
        if not asked:
            return
        o, p = t.outbound_emails, t.people
        found: dict[str, list[SentEmail]] = defaultdict(list)
        rows = db.execute(
            self._scoped(
                _sent()
                .where(in_list(p.c.email, asked), o.c.sent_at >= self.since)
                .order_by(o.c.sent_at.desc(), o.c.id.desc())
            )
        )
        for row in rows:
            kept = found[row.email]
            if len(kept) < RECENT_PER_ADDRESS:
                kept.append(_email(row))
        for address in asked:
            self.by_address[address] = found.get(address, [])

    def _scoped(self, query: sa.Select[Any]) -> sa.Select[Any]:
        o = t.outbound_emails
        return query if self.scope is None else query.where(o.c.workspace_id == self.scope)


def _sent() -> sa.Select[Any]:
    o, e, p = t.outbound_emails, t.enrollments, t.people
    return (
        sa.select(
            o.c.id,
            o.c.workspace_id,
            o.c.person_id,
            o.c.enrollment_id,
            e.c.sequence_id,
            o.c.message_id,
            o.c.sent_at,
            p.c.email,
        )
        .join(e, e.c.id == o.c.enrollment_id)
        .join(p, p.c.id == o.c.person_id)
        # Nearly every email is sent: SQLite must start from the Message-ID or the person.
        .where(broadly(o.c.status == "sent"))
    )


def _email(row: Any) -> SentEmail:
    return SentEmail(
        row.id,
        row.workspace_id,
        row.person_id,
        row.enrollment_id,
        row.sequence_id,
        row.message_id,
        row.sent_at,
        row.email,
    )
