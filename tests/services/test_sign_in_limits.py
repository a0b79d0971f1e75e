"""Failed sign-ins are limited per account and per client address, over a sliding window,
in the database (so every web process counts the same failures)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Connection

from optout.errors import TooManyAttempts
from optout.services.access import sign_in_limits as limits

NOW = datetime(2026, 11, 2, 9, 0, 0)


def _fail(db: Connection, *, email: str, client: str, times: int, at: datetime) -> None:
    for n in range(times):
        limits.record(
            db, email=email, client=client, succeeded=False, now=at + timedelta(seconds=n)
        )


def test_an_account_is_locked_after_five_failures_from_anywhere(db: Connection) -> None:
    for n in range(limits.PER_ACCOUNT - 1):
        _fail(db, email="Ops@Acme.com ", client=f"10.0.0.{n}", times=1, at=NOW)
    limits.check(db, email="ops@acme.com", client="10.9.9.9", now=NOW + timedelta(minutes=1))
    _fail(db, email="ops@acme.com", client="10.0.0.99", times=1, at=NOW)
    with pytest.raises(TooManyAttempts, match="try again in 14 minutes") as locked:
        limits.check(db, email="OPS@acme.com", client="10.9.9.9", now=NOW + timedelta(minutes=1))
    assert 13 * 60 < locked.value.retry_after_seconds <= 14 * 60
    # Another account from the same addresses is not locked.
    limits.check(db, email="other@acme.com", client="10.0.0.1", now=NOW + timedelta(minutes=1))


def test_the_lock_lifts_when_the_oldest_failure_leaves_the_window(db: Connection) -> None:
    _fail(db, email="ops@acme.com", client="10.0.0.1", times=limits.PER_ACCOUNT, at=NOW)
    almost = NOW + limits.WINDOW - timedelta(seconds=1)
    with pytest.raises(TooManyAttempts, match="try again in 1 minute\\."):
        limits.check(db, email="ops@acme.com", client="10.0.0.1", now=almost)
    limits.check(db, email="ops@acme.com", client="10.0.0.1", now=NOW + limits.WINDOW)


def test_a_client_address_is_locked_after_twenty_failures_on_any_accounts(
    db: Connection,
) -> None:
    for n in range(limits.PER_CLIENT):
        _fail(db, email=f"guess{n}@acme.com", client="203.0.113.7", times=1, at=NOW)
    with pytest.raises(TooManyAttempts, match="Too many failed sign-ins"):
        limits.check(db, email="fresh@acme.com", client="203.0.113.7", now=NOW)
    limits.check(db, email="fresh@acme.com", client="203.0.113.8", now=NOW)


def test_a_success_forgets_the_accounts_failures_but_not_the_clients(db: Connection) -> None:
    _fail(db, email="ops@acme.com", client="10.0.0.1", times=limits.PER_ACCOUNT - 1, at=NOW)
    for n in range(limits.PER_CLIENT - limits.PER_ACCOUNT):
        _fail(db, email=f"guess{n}@acme.com", client="10.0.0.1", times=1, at=NOW)
    later = NOW + timedelta(minutes=1)
    limits.record(db, email="ops@acme.com", client="10.0.0.1", succeeded=True, now=later)
    _fail(db, email="ops@acme.com", client="10.0.0.2", times=limits.PER_ACCOUNT - 1, at=later)
    check_at = later + timedelta(minutes=1)
    limits.check(db, email="ops@acme.com", client="10.0.0.2", now=check_at)  # counted afresh
    _fail(db, email="x@acme.com", client="10.0.0.1", times=1, at=later)
    with pytest.raises(TooManyAttempts):  # the client's 4 + 15 + 1 failures all still count
        limits.check(db, email="new@acme.com", client="10.0.0.1", now=check_at)
