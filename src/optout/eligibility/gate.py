"""The send-time gate: the first reason, if any, that stops an email now (R14, R28).

The same checks and order as `decide()`, but it stops at the first block and asks
only the exclusions that apply, which is what the worker needs for every email it
claims. Which exclusions match a person comes from the decision index
(`Facts.matched_exclusions`): only those are evaluated, for their evidence; without
it every applying exclusion is evaluated in order.
"""

from __future__ import annotations

from optout.eligibility.checks import ExclusionTier, _hit
from optout.eligibility.model import ExclusionSpec, Facts, Outcome, Situation, Status
from optout.eligibility.precedence import PRECEDENCE


class _Tier:
    """One exclusion tier's applying rules, in order."""

    def __init__(self, rules: list[ExclusionSpec]) -> None:
        self.rules = rules

    def candidates(self, facts: Facts) -> list[ExclusionSpec]:
        """Rules that may match this person, in their original order."""
        known = facts.matched_exclusions
        if known is None:
            return self.rules
        return [r for r in self.rules if r.id in known]


class Gate:
    """The checks of one situation, prepared once, asked about person after person."""

    def __init__(self, situation: Situation) -> None:
        self.situation = situation
        enabled = situation.sequence.ruleset.exclusions_enabled
        self.tiers = {
            rule.check.name: _Tier(
                [
                    e
                    for e in rule.check.candidates(situation)
                    if enabled and rule.check.not_applying(e, situation) is None
                ]
            )
            for rule in PRECEDENCE
            if isinstance(rule.check, ExclusionTier)
        }

    def first_block(self, facts: Facts) -> Outcome | None:
        """The highest-precedence blocking outcome for this person, or None when allowed."""
        situation = self.situation
        for rule in PRECEDENCE:
            if situation.purpose not in rule.purposes:
                continue
            check = rule.check
            if isinstance(check, ExclusionTier):
                for exclusion in self.tiers[check.name].candidates(facts):
                    hit = _hit(exclusion, facts, situation)
                    if hit is not None:
                        summary = f"excluded by {exclusion.name!r}"
                        evidence = {"exclusion": exclusion.name, **hit}
                        return Outcome(
                            check.name, rule.tier, Status.BLOCK, summary, evidence, exclusion.id
                        )
                continue
            for finding in check.evaluate(facts, situation):
                if finding.status is Status.BLOCK:
                    return Outcome(
                        check.name,
                        rule.tier,
                        finding.status,
                        finding.summary,
                        finding.evidence,
                        finding.exclusion_id,
                    )
        return None


def first_block(facts: Facts, situation: Situation) -> Outcome | None:
    """The first blocking outcome for one person (see `Gate` for many)."""
    return Gate(situation).first_block(facts)
