"""Time as a parameter: business code takes `now`; only the edges read the clock."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current time as optout stores it: naive UTC."""
    return datetime.now(UTC).replace(tzinfo=None)


def as_stored(moment: datetime) -> datetime:
    """Naive UTC for any datetime (an aware one is converted, a naive one taken as UTC)."""
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment
