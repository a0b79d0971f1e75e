"""The send-time gate: the first reason, if any, that stops an email now (R14, R28).

The same checks and order as `decide()`, but it stops at the first block and asks
only the exclusions that apply, which is what the worker needs for every email it
claims. A workspace may hold a thousand rules, most of them plain lists
(`company.domain in (...)`): the gate indexes those single-condition membership
rules by value once per situation, so a person is tested against a list rule only
when one of their values is on it; every other rule is evaluated as always.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from optout.eligibility.checks import _Exclusions, _hit
from optout.eligibility.model import ExclusionSpec, Facts, Outcome, Situation, Status
from optout.eligibility.precedence import PRECEDENCE
from optout.filters.ast import Condition
from optout.filters.evaluate import Subject
from optout.filters.fields import FieldType, Level
from optout.filters.fields import lookup as lookup_field
from optout.filters.sqlfunc import ascii_fold

_MEMBERSHIP = ("eq", "in")


class _Tier:
    """One exclusion tier's applying rules: an index for list rules, the rest in order."""

    def __init__(self, rules: list[ExclusionSpec]) -> None:
        self.rules = rules
        self.order = {rule.id: i for i, rule in enumerate(rules)}
        self.index: dict[tuple[str, object], list[ExclusionSpec]] = defaultdict(list)
        self.fields: dict[Level, set[str]] = defaultdict(set)
        self.others: list[ExclusionSpec] = []
        for rule in rules:
            node = rule.filter
            if (
                isinstance(node, Condition)
                and node.op in _MEMBERSHIP
                and not lookup_field(node.field).relation.collection
            ):
                values = node.value if isinstance(node.value, tuple) else (node.value,)
                for value in values:
                    self.index[(node.field, value)].append(rule)
                self.fields[rule.level].add(node.field)
            else:
                self.others.append(rule)

    def candidates(self, facts: Facts) -> list[ExclusionSpec]:
        """Rules that may match this person, in their original order."""
        if facts.matched_exclusions is not None:
            known = facts.matched_exclusions
            return [r for r in self.rules if r.id in known]
        found = {rule.id: rule for rule in self.others}
        subjects = {
            Level.PEOPLE: [facts.subject],
            Level.COMPANY: list(facts.company_group),
        }
        for level, names in self.fields.items():
            for field_name in names:
                for value in _values(field_name, subjects[level]):
                    for rule in self.index.get((field_name, value), ()):
                        if rule.level is level:
                            found[rule.id] = rule
        return sorted(found.values(), key=lambda rule: self.order[rule.id])


def _values(field_name: str, subjects: Iterable[Subject]) -> set[object]:
    field = lookup_field(field_name)
    out: set[object] = set()
    for subject in subjects:
        for row in subject.rows(field.relation):
            if row is None:
                continue
            value = field.value(row)
            if value is None:
                continue
            out.add(
                ascii_fold(value)
                if field.type is FieldType.TEXT and isinstance(value, str)
                else value
            )
    return out


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
            if isinstance(rule.check, _Exclusions)
        }

    def first_block(self, facts: Facts) -> Outcome | None:
        """The highest-precedence blocking outcome for this person, or None when allowed."""
        situation = self.situation
        for rule in PRECEDENCE:
            if situation.purpose not in rule.purposes:
                continue
            check = rule.check
            if isinstance(check, _Exclusions):
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
