"""`decide()`: run the precedence table for one person and return the decision with evidence.

`outcomes` is the one loop over the table: `decide` takes every outcome, the send-time
gate (`gate.Gate`) only the first that blocks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from optout.eligibility.checks import ExclusionTier, Finding
from optout.eligibility.model import Decision, ExclusionSpec, Facts, Outcome, Situation, Status
from optout.eligibility.precedence import PRECEDENCE


def decide(facts: Facts, situation: Situation) -> Decision:
    """Every check of R16, in order, each with its outcome; allowed when none blocks."""
    found = tuple(outcomes(facts, situation))
    allowed = not any(o.blocks for o in found)
    return Decision(allowed=allowed, purpose=situation.purpose, outcomes=found)


def outcomes(
    facts: Facts,
    situation: Situation,
    *,
    applying: Mapping[str, Sequence[ExclusionSpec]] | None = None,
) -> Iterator[Outcome]:
    """The outcomes of R16's checks for one person, in precedence order, one at a time.

    With `applying` (each exclusion tier's rules that apply in the situation, prepared
    once for many people), only the blocking outcomes come, and an exclusion tier asks
    only those rules: the send-time gate's question, with the same evidence."""
    blocks_only = applying is not None
    for rule in PRECEDENCE:
        check = rule.check
        if situation.purpose not in rule.purposes:
            if not blocks_only:
                purposes = " or ".join(sorted(rule.purposes))
                yield Outcome(check.name, rule.tier, Status.SKIP, f"checked only to {purposes}")
            continue
        if applying is not None and isinstance(check, ExclusionTier):
            findings: Iterator[Finding] | list[Finding] = check.blocking(
                facts, situation, applying[check.name]
            )
        else:
            findings = check.evaluate(facts, situation)
        for finding in findings:
            if blocks_only and finding.status is not Status.BLOCK:
                continue
            yield Outcome(
                check.name,
                rule.tier,
                finding.status,
                finding.summary,
                finding.evidence,
                finding.exclusion_id,
            )
