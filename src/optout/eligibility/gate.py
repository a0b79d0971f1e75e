"""The send-time gate: the first reason, if any, that stops an email now (R14, R28).

`decide()`'s loop (`decide.outcomes`) stopped at the first block, with the same
checks, order and evidence; it asks only the exclusions that apply, prepared once per
situation, which is what the worker needs for every email it claims. Which exclusions
match a person comes from the decision index (`Facts.matched_exclusions`): only those
are evaluated, for their evidence; without it every applying exclusion is evaluated in
order.
"""

from __future__ import annotations

from optout.eligibility.checks import ExclusionTier
from optout.eligibility.decide import outcomes
from optout.eligibility.model import Facts, Outcome, Situation
from optout.eligibility.precedence import PRECEDENCE


class Gate:
    """The checks of one situation, prepared once, asked about person after person."""

    def __init__(self, situation: Situation) -> None:
        self.situation = situation
        self.applying = {
            rule.check.name: rule.check.applying(situation)
            for rule in PRECEDENCE
            if isinstance(rule.check, ExclusionTier)
        }

    def first_block(self, facts: Facts) -> Outcome | None:
        """The highest-precedence blocking outcome for this person, or None when allowed."""
        return next(outcomes(facts, self.situation, applying=self.applying), None)


def first_block(facts: Facts, situation: Situation) -> Outcome | None:
    """The first blocking outcome for one person (see `Gate` for many)."""
    return Gate(situation).first_block(facts)
