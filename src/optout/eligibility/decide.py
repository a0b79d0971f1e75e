"""`decide()`: run the precedence table for one person and return the decision with evidence."""

from __future__ import annotations

from optout.eligibility.model import Decision, Facts, Outcome, Situation, Status
from optout.eligibility.precedence import PRECEDENCE


def decide(facts: Facts, situation: Situation) -> Decision:
    """Every check of R16, in order, each with its outcome; allowed when none blocks."""
    outcomes: list[Outcome] = []
    for rule in PRECEDENCE:
        check = rule.check
        if situation.purpose not in rule.purposes:
            outcomes.append(
                Outcome(
                    check.name,
                    rule.tier,
                    Status.SKIP,
                    f"checked only to {' or '.join(sorted(rule.purposes))}",
                )
            )
            continue
        for finding in check.evaluate(facts, situation):
            outcomes.append(
                Outcome(
                    check.name,
                    rule.tier,
                    finding.status,
                    finding.summary,
                    finding.evidence,
                    finding.exclusion_id,
                )
            )
    allowed = not any(o.blocks for o in outcomes)
    return Decision(allowed=allowed, purpose=situation.purpose, outcomes=tuple(outcomes))
