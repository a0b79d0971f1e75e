"""The values the decision core works on and returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from optout.filters.ast import Node
from optout.filters.evaluate import Subject
from optout.filters.fields import Level


class Purpose(StrEnum):
    ENROLL = "enroll"  # may this person enter the sequence now?
    SEND = "send"  # may this enrolled person be emailed by it now?


class Status(StrEnum):
    PASS = "pass"
    BLOCK = "block"
    SKIP = "skip"  # the check does not apply here; `summary` says why


@dataclass(frozen=True)
class ExclusionSpec:
    id: int
    name: str
    level: Level
    filter: Node
    enabled: bool
    exclude_from_sequences: bool
    unenroll_existing_on_save: bool = False
    # The instant its stored matches hold for (`services.decision_index`); None: not stored.
    matched_at: datetime | None = None


@dataclass(frozen=True)
class RulesetSpec:
    id: int
    name: str
    exclusions_enabled: bool
    reenroll_cooldown_days: int
    max_active_per_company: int | None


@dataclass(frozen=True)
class AudienceSpec:
    id: int
    name: str
    filter: Node | None
    persona_name: str | None = None
    include_keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    switched_off: frozenset[int] = frozenset()  # exclusion ids


@dataclass(frozen=True)
class SequenceSpec:
    id: int
    name: str
    status: str
    ruleset: RulesetSpec


@dataclass(frozen=True)
class Situation:
    """Everything about the question that is not about the person."""

    workspace_id: int
    sequence: SequenceSpec
    exclusions: Sequence[ExclusionSpec]
    purpose: Purpose
    now: datetime
    # Set when the enrollment comes from this audience (automatic enrollment).
    audience: AudienceSpec | None = None


@dataclass(frozen=True)
class Facts:
    """Everything about one person that a check may look at."""

    person_id: int
    email: str
    subject: Subject  # the person, their company and opportunities, for people-level filters
    company_group: Sequence[Subject] = ()  # every company linked to the person's company
    opted_out: Mapping[str, Any] | None = None  # the suppression row, when suppressed
    bounced: Mapping[str, Any] | None = None
    complained: Mapping[str, Any] | None = None
    active_enrollment: Mapping[str, Any] | None = None  # in this sequence
    last_ended_at: datetime | None = None  # latest end of an enrollment in this sequence
    company_active: int = 0  # active enrollments in this sequence at the person's company
    # The ids of the exclusions that match the person, read from the decision index; None
    # when unknown, and then every exclusion is evaluated.
    matched_exclusions: frozenset[int] | None = None


@dataclass(frozen=True)
class Outcome:
    """One line of an explanation: which check, what it found and why."""

    check: str
    tier: int
    status: Status
    summary: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    exclusion_id: int | None = None

    @property
    def blocks(self) -> bool:
        return self.status is Status.BLOCK


@dataclass(frozen=True)
class Decision:
    """The answer with its evidence: every check in R16 order, and the blocking ones."""

    allowed: bool
    purpose: Purpose
    outcomes: tuple[Outcome, ...]

    @property
    def reasons(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.blocks)

    @property
    def primary_reason(self) -> Outcome | None:
        return self.reasons[0] if self.reasons else None
