"""The send-time gate: the first reason, if any, that stops an email now (R14, R28).

The same checks and order as `decide()`, but it stops at the first block and
evaluates only the exclusions that apply, which is what the worker needs for
every email it claims.
"""

from __future__ import annotations

from optout.eligibility.checks import _Exclusions
from optout.eligibility.matching import match
from optout.eligibility.model import Facts, Outcome, Situation, Status
from optout.eligibility.precedence import PRECEDENCE


def first_block(facts: Facts, situation: Situation) -> Outcome | None:
    """The highest-precedence blocking outcome for this person, or None when allowed."""
    for rule in PRECEDENCE:
        if situation.purpose not in rule.purposes:
            continue
        check = rule.check
        if isinstance(check, _Exclusions):
            if not situation.sequence.ruleset.exclusions_enabled:
                continue
            for exclusion in check.candidates(situation):
                if check.not_applying(exclusion, situation) is not None:
                    continue
                hit = match(exclusion, facts, situation.now)
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
