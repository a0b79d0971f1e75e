"""The decision core: may this person be enrolled in or emailed by this sequence, and why.

Pure: each check is a small named object with a Python form (evidence for one
person) and a SQL form (a predicate over every person at once); the precedence
of SPEC R16 is one ordered table (`precedence.PRECEDENCE`).
"""

from optout.eligibility.decide import decide
from optout.eligibility.model import (
    AudienceSpec,
    Decision,
    ExclusionSpec,
    Facts,
    Outcome,
    Purpose,
    RulesetSpec,
    SequenceSpec,
    Situation,
    Status,
)

__all__ = [
    "AudienceSpec",
    "Decision",
    "ExclusionSpec",
    "Facts",
    "Outcome",
    "Purpose",
    "RulesetSpec",
    "SequenceSpec",
    "Situation",
    "Status",
    "decide",
]
