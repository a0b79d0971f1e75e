"""Limits on failed sign-ins, per account and per client address.

Failures are rows in `login_attempts`, so every web process (and every machine) sees the
same count. Within a sliding window (`WINDOW`), an account may fail `PER_ACCOUNT` times
and a client address `PER_CLIENT` times (more, since offices share an address); past
that, sign-in is refused, even with the right password, until the oldest counted
failure leaves the window. Refused attempts are not counted, so a lock lifts on its own
`WINDOW` after the last real try. A successful sign-in ends the count of the account's
failures, not the client's (another account signing in from the same address proves
nothing).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.errors import TooManyAttempts
from optout.normalize import address_key

WINDOW = timedelta(minutes=15)
PER_ACCOUNT = 5
PER_CLIENT = 20
KEEP = timedelta(days=1)  # attempts older than this are deleted as new ones come in


def account_key(email: str) -> str:
    """The account an attempt is counted against: the canonical form of the address, the
    one sign-in looks the user up by, so a respelling (case, a fullwidth letter, a Unicode
    domain) counts against the same account. Counted whether or not such a user exists,
    so a lock reveals nothing."""
    return address_key(email)[:320]


def check(db: Connection, *, email: str, client: str, now: datetime) -> None:
    """Raise TooManyAttempts if the account or the client address is locked out now."""
    a = t.login_attempts
    key = account_key(email)
    window_start = now - WINDOW
    last_success = db.scalar(
        sa.select(sa.func.max(a.c.at)).where(a.c.email == key, a.c.succeeded.is_(True))
    )
    account_since = max(window_start, last_success) if last_success else window_start
    for column, value, since, limit in (
        (a.c.email, key, account_since, PER_ACCOUNT),
        (a.c.client, client[:64], window_start, PER_CLIENT),
    ):
        failures = db.scalars(
            sa.select(a.c.at)
            .where(column == value, a.c.succeeded.is_(False), a.c.at > since)
            .order_by(a.c.at.desc())
            .limit(limit)
        ).all()
        if len(failures) >= limit:
            lifts_at = failures[-1] + WINDOW  # when the oldest counted failure ages out
            seconds = max(1, math.ceil((lifts_at - now).total_seconds()))
            minutes = math.ceil(seconds / 60)
            raise TooManyAttempts(
                "Too many failed sign-ins. For your security, signing in is paused; "
                f"try again in {minutes} minute{'s' if minutes != 1 else ''}.",
                retry_after_seconds=seconds,
            )


def record(db: Connection, *, email: str, client: str, succeeded: bool, now: datetime) -> None:
    """Write down one attempt (a success ends the count of the account's failures)."""
    a = t.login_attempts
    db.execute(a.delete().where(a.c.at < now - KEEP))
    db.execute(
        a.insert().values(email=account_key(email), client=client[:64], succeeded=succeeded, at=now)
    )
