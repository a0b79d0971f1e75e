"""One small named object per eligibility check.

Each check has a Python form (`evaluate`: findings with evidence for one person)
and a SQL form (`blocks_sql`: a predicate, true for every person row the check
blocks, or None when it blocks nobody). The parity tests hold the two together.
Which checks run, in which order and when, is `precedence.PRECEDENCE`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Protocol

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

from optout.audit_words import channel_words
from optout.db import tables as t
from optout.eligibility.complaints import read_complaint_reason
from optout.eligibility.matching import any_matches, match
from optout.eligibility.model import ExclusionSpec, Facts, Purpose, Situation, Status
from optout.filters.ast import All, Condition, Node, Not
from optout.filters.evaluate import evaluate
from optout.filters.operators import Context
from optout.filters.sql import SqlScope, compile_sql
from optout.filters.sqlfunc import ascii_fold


@dataclass(frozen=True)
class Finding:
    status: Status
    summary: str
    evidence: dict[str, Any] = field(default_factory=dict)
    exclusion_id: int | None = None


@dataclass(frozen=True)
class SqlEnv:
    """The rows a SQL form reads: people, with their company left-joined."""

    person: FromClause
    company: FromClause
    # A table of person ids (`id`) the question is limited to, or None for everyone.
    among: FromClause | None = None


class Check(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def label(self) -> str:
        """The check's name as a user reads it on a page or a terminal."""
        ...

    @property
    def description(self) -> str: ...

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]: ...

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None: ...


def _suppressed(env: SqlEnv, column: str) -> ColumnElement[bool]:
    """The person row's own mark, which triggers keep from the suppressions (R1, R7, R36)."""
    return env.person.c[column].is_(sa.true())


def _suppression_evidence(row: Any) -> dict[str, Any]:
    return {k: str(row[k]) for k in ("since", "actor", "channel", "reason") if row.get(k)}


class Complained:
    name = "complained"
    label = "Spam complaint"
    description = (
        "The address reported one of our emails as spam: absolute and sticky like an "
        "opt-out, and first in line (R36)."
    )

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        if facts.complained is None:
            return [Finding(Status.PASS, f"{facts.email} has sent no spam complaint")]
        row = facts.complained
        report = read_complaint_reason(str(row.get("reason") or ""))
        evidence = _suppression_evidence(row)
        evidence["feedback_type"] = report.feedback_type
        evidence["reporting_domain"] = report.reporting_domain
        source = f"{report.feedback_type} report"
        if report.reporting_domain:
            source += f" from {report.reporting_domain}"
        return [
            Finding(
                Status.BLOCK,
                f"{facts.email} sent a spam complaint on {row['since']:%Y-%m-%d} ({source})",
                evidence,
            )
        ]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return _suppressed(env, "complained")


class OptedOut:
    name = "opted_out"
    label = "Opted out"
    description = "The address opted out: absolute, nothing overrides it (R1)."

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        if facts.opted_out is None:
            return [Finding(Status.PASS, f"{facts.email} has not opted out")]
        row = facts.opted_out
        return [
            Finding(
                Status.BLOCK,
                f"{facts.email} opted out on {row['since']:%Y-%m-%d} "
                f"via {channel_words(row['channel'])}",
                _suppression_evidence(row),
            )
        ]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return _suppressed(env, "opted_out")


class Bounced:
    name = "bounced"
    label = "Hard bounce"
    description = "The address hard-bounced: it is never sent to again (R7)."

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        if facts.bounced is None:
            return [Finding(Status.PASS, f"{facts.email} has not bounced")]
        row = facts.bounced
        return [
            Finding(
                Status.BLOCK,
                f"{facts.email} hard-bounced on {row['since']:%Y-%m-%d}",
                _suppression_evidence(row),
            )
        ]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return _suppressed(env, "bounced")


class RulesetSwitch:
    name = "ruleset"
    label = "Ruleset"
    description = "A ruleset with exclusions off ignores every exclusion (R16 level 2)."

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        ruleset = situation.sequence.ruleset
        if ruleset.exclusions_enabled:
            return [Finding(Status.PASS, f"ruleset {ruleset.name!r} applies exclusions")]
        return [
            Finding(
                Status.SKIP,
                f"ruleset {ruleset.name!r} has exclusions off: no exclusion applies",
            )
        ]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return None


def _hit(exclusion: ExclusionSpec, facts: Facts, situation: Situation) -> dict[str, Any] | None:
    """Evidence that the exclusion matches the person, or None. With the decision index's
    answer at hand, only the matching rules are evaluated, for their evidence."""
    known = facts.matched_exclusions
    if known is None:
        return match(exclusion, facts, situation.now)
    if exclusion.id not in known:
        return None
    return match(exclusion, facts, situation.now) or {}


def _excluded(exclusion: ExclusionSpec, hit: dict[str, Any]) -> Finding:
    evidence = {"exclusion": exclusion.name, **_toggles(exclusion), **hit}
    return Finding(Status.BLOCK, f"excluded by {exclusion.name!r}", evidence, exclusion.id)


def _toggles(exclusion: ExclusionSpec) -> dict[str, Any]:
    return {
        "level": exclusion.level.value,
        "exclude_from_sequences": exclusion.exclude_from_sequences,
        "unenroll_existing_on_save": exclusion.unenroll_existing_on_save,
    }


class ExclusionTier:
    """Shared shape of the two exclusion tiers; subclasses say which exclusions and when."""

    name: ClassVar[str]
    description: ClassVar[str]

    def candidates(self, situation: Situation) -> list[ExclusionSpec]:
        raise NotImplementedError

    def not_applying(self, exclusion: ExclusionSpec, situation: Situation) -> str | None:
        """Why this exclusion does not apply here, or None when it does."""
        return None

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        ruleset = situation.sequence.ruleset
        findings = []
        for exclusion in self.candidates(situation):
            evidence = {"exclusion": exclusion.name, **_toggles(exclusion)}
            why_not = (
                f"ruleset {ruleset.name!r} has exclusions off"
                if not ruleset.exclusions_enabled
                else self.not_applying(exclusion, situation)
            )
            hit = _hit(exclusion, facts, situation)
            if hit is not None:
                evidence.update(hit)
            if why_not is not None:
                state = "would match" if hit else "does not match"
                summary = f"exclusion {exclusion.name!r} {state}, but {why_not}"
                findings.append(Finding(Status.SKIP, summary, evidence, exclusion.id))
            elif hit is not None:
                findings.append(_excluded(exclusion, hit))
            else:
                summary = f"exclusion {exclusion.name!r} does not match"
                findings.append(Finding(Status.PASS, summary, evidence, exclusion.id))
        return findings

    def blocking(
        self, facts: Facts, situation: Situation, applying: Sequence[ExclusionSpec]
    ) -> Iterator[Finding]:
        """`evaluate`'s blocking findings, one at a time, asking only `applying` (this
        tier's rules that apply in `situation`, prepared once): what the send-time gate
        needs, stopping at the first."""
        known = facts.matched_exclusions
        for exclusion in applying:
            if known is not None and exclusion.id not in known:
                continue  # the decision index says it does not match
            hit = _hit(exclusion, facts, situation)
            if hit is not None:
                yield _excluded(exclusion, hit)

    def applying(self, situation: Situation) -> list[ExclusionSpec]:
        """The exclusions of this tier that block in `situation`."""
        if not situation.sequence.ruleset.exclusions_enabled:
            return []
        return [e for e in self.candidates(situation) if self.not_applying(e, situation) is None]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return exclusions_sql(self.applying(situation), env, situation)


def exclusions_sql(
    applying: list[ExclusionSpec], env: SqlEnv, situation: Situation
) -> ColumnElement[bool] | None:
    """True for a person row one of `applying` matches; None when there is none."""
    if not applying:
        return None
    return any_matches(
        applying,
        person=env.person,
        company=env.company,
        workspace_id=situation.workspace_id,
        now=situation.now,
        among=env.among,
    )


class EnforcedExclusions(ExclusionTier):
    name = "enforced_exclusion"
    label = "Exclusion in every sequence"
    description = (
        "Enabled exclusions with exclude_from_sequences on: they apply to every sequence that "
        "allows exclusions, at enrollment and before every send; no audience can switch them "
        "off (R14, R16 level 3)."
    )

    def candidates(self, situation: Situation) -> list[ExclusionSpec]:
        return [e for e in situation.exclusions if e.enabled and e.exclude_from_sequences]


class DefaultExclusions(ExclusionTier):
    name = "exclusion"
    label = "Exclusion"
    description = (
        "Other enabled exclusions: they block new enrollments, never unenroll anyone "
        "mid-sequence, and an audience may switch them off for its own enrollments "
        "(R15, R16 level 4). A disabled exclusion applies nowhere."
    )

    def candidates(self, situation: Situation) -> list[ExclusionSpec]:
        return [e for e in situation.exclusions if not e.exclude_from_sequences or not e.enabled]

    def not_applying(self, exclusion: ExclusionSpec, situation: Situation) -> str | None:
        if not exclusion.enabled:
            return "it is disabled"
        if situation.purpose is Purpose.SEND:
            return "it does not remove anyone mid-sequence (exclude_from_sequences is off)"
        audience = situation.audience
        if audience is not None and exclusion.id in audience.switched_off:
            return f"audience {audience.name!r} switches it off"
        return None


def persona_filter(include: tuple[str, ...], exclude: tuple[str, ...]) -> Node | None:
    """The persona as a filter over `person.title` (R24)."""
    parts: list[Node] = []
    if include:
        parts.append(Condition("person.title", "contains_any", tuple(map(ascii_fold, include))))
    if exclude:
        words = tuple(map(ascii_fold, exclude))
        parts.append(Not(Condition("person.title", "contains_any", words)))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else All(tuple(parts))


class AudienceMembership:
    name = "audience"
    label = "Audience"
    description = (
        "An enrollment from an audience needs the person to be in it: its filter and its "
        "persona's title keywords (R24)."
    )

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        audience = situation.audience
        if audience is None:
            return [Finding(Status.SKIP, "not an enrollment from an audience")]
        ctx = Context(now=situation.now)
        findings = []
        if audience.filter is not None:
            trace = evaluate(audience.filter, facts.subject, ctx)
            status = Status.PASS if trace.matched else Status.BLOCK
            verb = "matches" if trace.matched else "does not match"
            findings.append(Finding(status, f"{verb} the filter of audience {audience.name!r}"))
        persona = persona_filter(audience.include_keywords, audience.exclude_keywords)
        if persona is not None:
            title = str(facts.subject.person.get("title", "")) if facts.subject.person else ""
            matched = evaluate(persona, facts.subject, ctx).matched
            evidence = {
                "persona": audience.persona_name,
                "title": title,
                "include": list(audience.include_keywords),
                "exclude": list(audience.exclude_keywords),
            }
            summary = (
                f"title {title!r} fits persona {audience.persona_name!r}"
                if matched
                else f"title {title!r} does not fit persona {audience.persona_name!r}"
            )
            findings.append(Finding(Status.PASS if matched else Status.BLOCK, summary, evidence))
        return findings or [Finding(Status.PASS, f"audience {audience.name!r} takes everyone")]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        audience = situation.audience
        if audience is None:
            return None
        scope = SqlScope(person=env.person, company=env.company)
        ctx = Context(now=situation.now)
        parts = [
            compile_sql(node, scope=scope, ctx=ctx)
            for node in (
                audience.filter,
                persona_filter(audience.include_keywords, audience.exclude_keywords),
            )
            if node is not None
        ]
        return sa.not_(sa.and_(*parts)) if parts else None


# The aliases the checks' subqueries read, made once: building an alias proxies every
# column of its table, which cost more than the rest of a check's SQL. Each is read by one
# check's subquery only, never in a FROM list that encloses another of them.
_ENROLLED = t.enrollments.alias("enrolled")
_CAP_ENROLLMENTS = t.enrollments.alias("cap_enrollments")
_CAP_PEOPLE = t.people.alias("cap_people")


def _enrolled(env: SqlEnv, situation: Situation, condition: Any) -> ColumnElement[bool]:
    """True for a person with an enrollment in the sequence that meets `condition(e)`: over
    everyone one list of those people that each row probes, about a few a probe each."""
    e = _ENROLLED
    if env.among is None:
        return env.person.c.id.in_(
            sa.select(e.c.person_id).where(e.c.sequence_id == situation.sequence.id, condition(e))
        )
    mine = sa.and_(e.c.person_id == env.person.c.id, e.c.sequence_id == situation.sequence.id)
    return sa.exists(sa.select(1).where(mine, condition(e)))


class AlreadyEnrolled:
    name = "already_enrolled"
    label = "Already enrolled"
    description = "A person is in a sequence at most once at a time."

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        active = facts.active_enrollment
        if active is None:
            return [Finding(Status.PASS, f"not active in {situation.sequence.name!r}")]
        summary = f"already {active['status'].replace('_', ' ')} in {situation.sequence.name!r}"
        return [Finding(Status.BLOCK, summary, {"enrollment_id": active["id"]})]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        return _enrolled(env, situation, lambda e: e.c.status.in_(t.ACTIVE_STATUSES))


class Cooldown:
    name = "cooldown"
    label = "Re-enrollment cooldown"
    description = (
        "Re-enrollment waits the ruleset's cooldown, counted from the end of the previous "
        "enrollment in the sequence, unenrollment included (R9)."
    )

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        days = situation.sequence.ruleset.reenroll_cooldown_days
        if days <= 0:
            return [Finding(Status.PASS, "no re-enrollment cooldown")]
        if facts.last_ended_at is None:
            return [Finding(Status.PASS, f"never enrolled in {situation.sequence.name!r} before")]
        ends = facts.last_ended_at + timedelta(days=days)
        evidence = {"previous_end": facts.last_ended_at.isoformat(sep=" "), "days": days}
        evidence["cooldown_ends"] = ends.isoformat(sep=" ")
        if ends > situation.now:
            return [Finding(Status.BLOCK, f"in cooldown until {ends:%Y-%m-%d %H:%M}", evidence)]
        return [Finding(Status.PASS, f"cooldown ended {ends:%Y-%m-%d %H:%M}", evidence)]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        days = situation.sequence.ruleset.reenroll_cooldown_days
        if days <= 0:
            return None
        cutoff = situation.now - timedelta(days=days)
        return _enrolled(
            env, situation, lambda e: sa.and_(e.c.ended_at.is_not(None), e.c.ended_at > cutoff)
        )


class CompanyCap:
    name = "company_cap"
    label = "People per company"
    description = (
        "At most the ruleset's number of people of one company are active in the sequence at "
        "once (R27); deals and CRM stage play no part."
    )

    def evaluate(self, facts: Facts, situation: Situation) -> list[Finding]:
        cap = situation.sequence.ruleset.max_active_per_company
        company = facts.subject.company
        if cap is None:
            return [Finding(Status.PASS, "no cap per company")]
        if company is None:
            return [Finding(Status.PASS, "no company, so no company cap")]
        evidence = {"active": facts.company_active, "cap": cap, "company": company.get("domain")}
        if facts.company_active >= cap:
            summary = f"{facts.company_active} of {cap} allowed already active at this company"
            return [Finding(Status.BLOCK, summary, evidence)]
        return [Finding(Status.PASS, f"{facts.company_active} of {cap} active", evidence)]

    def blocks_sql(self, env: SqlEnv, situation: Situation) -> ColumnElement[bool] | None:
        cap = situation.sequence.ruleset.max_active_per_company
        if cap is None:
            return None
        company_id = env.person.c.company_id
        if env.among is not None:
            # About a few people: count the active enrollments at each one's company.
            return sa.and_(
                company_id.is_not(None),
                _active_at(situation.sequence.id, company_id).scalar_subquery() >= cap,
            )
        return sa.and_(
            company_id.is_not(None),
            company_id.in_(capped_companies(situation.sequence.id, cap)),
        )


def _active_at(sequence_id: int, company_id: Any) -> sa.Select[Any]:
    """How many people of the company `company_id` are active in the sequence."""
    e, p = _CAP_ENROLLMENTS, _CAP_PEOPLE
    return (
        sa.select(sa.func.count())
        .select_from(e.join(p, p.c.id == e.c.person_id))
        .where(
            p.c.company_id == company_id,
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
        )
    )


def capped_companies(sequence_id: int, cap: int) -> sa.Select[Any]:
    """Companies with `cap` or more people active in the sequence."""
    e, p = t.enrollments.alias(), t.people.alias()
    return (
        sa.select(p.c.company_id)
        .select_from(e.join(p, p.c.id == e.c.person_id))
        .where(
            e.c.sequence_id == sequence_id,
            e.c.status.in_(t.ACTIVE_STATUSES),
            p.c.company_id.is_not(None),
        )
        .group_by(p.c.company_id)
        .having(sa.func.count() >= cap)
    )
