"""SPEC R16 as data: every check, highest precedence first, and when it runs.

Read top to bottom. Tier 1 is absolute. Tier 2 decides whether tiers 3 and 4
run at all. Tier 3 cannot be switched off by an audience; tier 4 can, and
applies only at enrollment. Tier 5 are the sequence's own limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from optout.eligibility.checks import (
    AlreadyEnrolled,
    AudienceMembership,
    Bounced,
    Check,
    CompanyCap,
    Complained,
    Cooldown,
    DefaultExclusions,
    EnforcedExclusions,
    OptedOut,
    RulesetSwitch,
)
from optout.eligibility.model import Purpose

BOTH = frozenset({Purpose.ENROLL, Purpose.SEND})
ENROLL = frozenset({Purpose.ENROLL})


@dataclass(frozen=True)
class Rule:
    tier: int
    check: Check
    purposes: frozenset[Purpose]


PRECEDENCE: tuple[Rule, ...] = (
    Rule(1, Complained(), BOTH),  # complaint > bounce > opt-out, all absolute (R16, R36)
    Rule(1, Bounced(), BOTH),
    Rule(1, OptedOut(), BOTH),
    Rule(2, RulesetSwitch(), BOTH),
    Rule(3, EnforcedExclusions(), BOTH),
    Rule(4, DefaultExclusions(), BOTH),  # at send time it reports, but never blocks (R15)
    Rule(5, AudienceMembership(), ENROLL),
    Rule(5, AlreadyEnrolled(), ENROLL),
    Rule(5, Cooldown(), ENROLL),
    Rule(5, CompanyCap(), ENROLL),
)

CHECK_LABELS: dict[str, str] = {rule.check.name: rule.check.label for rule in PRECEDENCE}


def check_label(name: str) -> str:
    """What a user reads for the check (or the rule of an event) called `name`: its
    label, else the name in words ("manual_unenroll": "manual unenroll"; an event's
    "exclusion:12": "exclusion", the page names the rule next to it)."""
    base = name.split(":", 1)[0]
    return CHECK_LABELS.get(base, base.replace("_", " "))
