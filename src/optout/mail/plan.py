"""Where an enrollment goes next: pure arithmetic over a sequence's steps (R26).

An enrollment always points at its next email step (`next_position`) and the
time it is due (`next_run_at`); waits between emails are folded into that time,
and a wait before the first email is the sequence's delay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StepRow:
    id: int
    position: int
    kind: str  # email | wait
    wait_seconds: int


@dataclass(frozen=True)
class Next:
    """The next email step (None: the sequence is done) and the wait before it."""

    step: StepRow | None
    wait_seconds: int


def next_email(steps: Sequence[StepRow], *, after: int | None) -> Next:
    """The first email step after position `after` (None: from the start)."""
    wait = 0
    for step in sorted(steps, key=lambda s: s.position):
        if after is not None and step.position <= after:
            continue
        if step.kind == "wait":
            wait += step.wait_seconds
        else:
            return Next(step, wait)
    return Next(None, wait)
