"""Where an exclusion applies: in which sequences it decides, and which sequences bypass
it (R16). A sequence whose ruleset has exclusions off ignores every rule, even one set to
apply in every sequence; an audience may switch a rule off for the enrollments it feeds,
unless the rule removes people mid-sequence. Every page that states where a rule applies
reads this one answer, so none can claim more than the decision does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired
from optout.services import fresh_rules
from optout.services.exclusions.reached import people_reached


@dataclass(frozen=True)
class SequenceUse:
    """A sequence that can enroll or send (not archived), with what decides its rules."""

    id: int
    name: str
    status: str
    ruleset_id: int
    ruleset: str
    exclusions_enabled: bool
    audience_id: int | None
    audience: str | None


@dataclass(frozen=True)
class Reach:
    """Where one exclusion applies now."""

    exclusion: ExclusionSpec
    applies_in: tuple[SequenceUse, ...]  # every enrollment there obeys it
    bypassed_by: tuple[SequenceUse, ...]  # its ruleset has exclusions off: ignored there
    switched_off_in: tuple[SequenceUse, ...]  # its audience switches it off (automatic only)

    @property
    def enforced(self) -> bool:
        return self.exclusion.exclude_from_sequences

    def summary(self) -> str:
        """One sentence a page can show wherever it says where the rule applies."""
        if not self.exclusion.enabled:
            return "applies nowhere while disabled"
        parts = [self.where()]
        if self.switched_off_in:
            parts.append(
                "enrollments from "
                + _join(f"audience {s.audience!r} into {s.name}" for s in self.switched_off_in)
                + " skip it"
            )
        if self.enforced:
            parts.append("no audience can switch it off")
        return "; ".join(parts)

    def where(self) -> str:
        """Where it applies, naming the sequences that bypass it, without the audiences."""
        base = "applies to every sequence" if not self.bypassed_by else _applies_in(self)
        return base + self.bypass_clause()

    def bypass_clause(self) -> str:
        """ ", but not in X, whose ruleset 'R' ignores every exclusion", or nothing."""
        return _bypassed(self.bypassed_by)


def _join(items: Iterable[str]) -> str:
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def _applies_in(reach: Reach) -> str:
    if not reach.applies_in and not reach.switched_off_in:
        return "applies in no sequence now"
    names = [s.name for s in (*reach.applies_in, *reach.switched_off_in)]
    return "applies in " + _join(names)


def _bypassed(bypassed_by: Sequence[SequenceUse]) -> str:
    if not bypassed_by:
        return ""
    rulesets = sorted({s.ruleset for s in bypassed_by})
    whose = "whose ruleset" if len(bypassed_by) == 1 else "whose rulesets"
    return (
        f", but not in {_join(s.name for s in bypassed_by)}, {whose} "
        f"{_join(repr(r) for r in rulesets)} "
        f"{'ignores' if len(rulesets) == 1 else 'ignore'} every exclusion"
    )


def sequences_in_use(db: Connection, *, workspace_id: int) -> list[SequenceUse]:
    """Every sequence that is not archived, by name, with its ruleset and audience."""
    s, r, a = t.sequences, t.rulesets, t.audiences
    rows = db.execute(
        sa.select(
            s.c.id,
            s.c.name,
            s.c.status,
            r.c.id.label("ruleset_id"),
            r.c.name.label("ruleset"),
            r.c.exclusions_enabled,
            s.c.audience_id,
            a.c.name.label("audience"),
        )
        .select_from(s.join(r, r.c.id == s.c.ruleset_id).outerjoin(a, a.c.id == s.c.audience_id))
        .where(s.c.workspace_id == workspace_id, s.c.status != "archived")
        .order_by(s.c.name, s.c.id)
    ).mappings()
    return [
        SequenceUse(
            id=row["id"],
            name=row["name"],
            status=row["status"],
            ruleset_id=row["ruleset_id"],
            ruleset=row["ruleset"],
            exclusions_enabled=bool(row["exclusions_enabled"]),
            audience_id=row["audience_id"],
            audience=row["audience"],
        )
        for row in rows
    ]


def _switches(db: Connection, *, workspace_id: int) -> set[tuple[int, int]]:
    """(audience id, exclusion id) of every switch-off in the workspace."""
    sw, a = t.audience_exclusion_switches, t.audiences
    rows = db.execute(
        sa.select(sw.c.audience_id, sw.c.exclusion_id)
        .join(a, a.c.id == sw.c.audience_id)
        .where(a.c.workspace_id == workspace_id)
    )
    return {(int(audience), int(exclusion)) for audience, exclusion in rows}


def reach_of_all(
    db: Connection, *, workspace_id: int, rules: Sequence[ExclusionSpec]
) -> dict[int, Reach]:
    """Where each of `rules` applies, by exclusion id; two reads for all of them."""
    uses = sequences_in_use(db, workspace_id=workspace_id)
    switches = _switches(db, workspace_id=workspace_id)
    return {rule.id: _reach(rule, uses, switches) for rule in rules}


def reach_of(db: Connection, *, workspace_id: int, exclusion: ExclusionSpec) -> Reach:
    return reach_of_all(db, workspace_id=workspace_id, rules=[exclusion])[exclusion.id]


def _reach(
    rule: ExclusionSpec, uses: Sequence[SequenceUse], switches: set[tuple[int, int]]
) -> Reach:
    if not rule.enabled:
        return Reach(rule, (), (), ())
    applies, bypassed, switched = [], [], []
    for use in uses:
        if not use.exclusions_enabled:
            bypassed.append(use)
        elif (
            not rule.exclude_from_sequences
            and use.audience_id is not None
            and (use.audience_id, rule.id) in switches
        ):
            switched.append(use)
        else:
            applies.append(use)
    return Reach(rule, tuple(applies), tuple(bypassed), tuple(switched))


def bypassing_sequences(db: Connection, *, workspace_id: int) -> list[SequenceUse]:
    """The sequences that run with exclusions off (their ruleset's setting)."""
    return [s for s in sequences_in_use(db, workspace_id=workspace_id) if not s.exclusions_enabled]


def ignored_in(
    db: Connection, *, workspace_id: int, sequence: str
) -> tuple[SequenceUse | None, list[ExclusionSpec]]:
    """The sequence named `sequence` and, when its ruleset has exclusions off, every
    enabled exclusion it ignores (enforced ones first); else no rule."""
    use = next(
        (s for s in sequences_in_use(db, workspace_id=workspace_id) if s.name == sequence), None
    )
    if use is None or use.exclusions_enabled:
        return use, []
    rules = [r for r in fresh_rules.all_specs(db, workspace_id=workspace_id) if r.enabled]
    return use, sorted(rules, key=lambda r: (not r.exclude_from_sequences, r.name))


# What turning exclusions off would stop, for the ruleset editor and the sequence form.


@dataclass(frozen=True)
class LostRule:
    """An enabled exclusion that would stop applying in some sequences."""

    exclusion: ExclusionSpec
    people_covered: int  # people the rule covers now: those sequences could email them
    enrolled_there: int  # of them, people with an active enrollment in those sequences

    def describe(self) -> str:
        every = " (set to apply in every sequence)" if self.exclusion.exclude_from_sequences else ""
        return (
            f"{self.exclusion.name!r}{every} covers {_people(self.people_covered)}, "
            f"{self.enrolled_there:,} of them enrolled there"
        )


def _people(count: int) -> str:
    return "1 person" if count == 1 else f"{count:,} people"


def rules_lost(
    db: Connection, *, workspace_id: int, sequence_ids: Sequence[int], now: datetime
) -> list[LostRule]:
    """Every enabled exclusion that would stop applying in `sequence_ids` if their ruleset
    ignored exclusions, the ones set to apply in every sequence first; one count per rule."""
    if not sequence_ids:
        return []
    e = t.enrollments
    rules = [r for r in fresh_rules.all_specs(db, workspace_id=workspace_id) if r.enabled]
    rules.sort(key=lambda r: (not r.exclude_from_sequences, r.name))
    lost = []
    for rule in rules:
        reached = people_reached(rule, workspace_id=workspace_id, now=now).subquery()
        ids = sa.select(next(iter(reached.c)))
        covered = db.scalar(sa.select(sa.func.count(sa.distinct(next(iter(reached.c))))))
        enrolled = db.scalar(
            sa.select(sa.func.count(sa.distinct(e.c.person_id))).where(
                e.c.workspace_id == workspace_id,
                e.c.sequence_id.in_(list(sequence_ids)),
                e.c.status.in_(t.ACTIVE_STATUSES),
                e.c.person_id.in_(ids),
            )
        )
        lost.append(LostRule(rule, int(covered or 0), int(enrolled or 0)))
    return lost


def _confirm(what: str, lost: Sequence[LostRule]) -> None:
    if not lost:
        return
    raise ConfirmationRequired(
        f"{what}: {len(lost)} exclusion(s) would stop applying there: "
        + "; ".join(rule.describe() for rule in lost)
    )


def confirm_exclusions_off(
    db: Connection, *, workspace_id: int, ruleset_id: int, now: datetime
) -> None:
    """ConfirmationRequired naming the rules that stop applying, when turning exclusions
    off in this ruleset takes them away from sequences that use it."""
    users = [
        s for s in sequences_in_use(db, workspace_id=workspace_id) if s.ruleset_id == ruleset_id
    ]
    names = _join(s.name for s in users)
    lost = rules_lost(db, workspace_id=workspace_id, sequence_ids=[s.id for s in users], now=now)
    _confirm(f"turning exclusions off here makes {names} ignore every exclusion", lost)


def confirm_move(
    db: Connection, *, workspace_id: int, sequence_id: int, ruleset_id: int, now: datetime
) -> None:
    """ConfirmationRequired naming the rules that stop applying, when a sequence that
    applies exclusions moves to a ruleset that has them off."""
    r = t.rulesets
    target = db.execute(
        sa.select(r.c.name, r.c.exclusions_enabled).where(
            r.c.id == ruleset_id, r.c.workspace_id == workspace_id
        )
    ).one_or_none()
    uses = {s.id: s for s in sequences_in_use(db, workspace_id=workspace_id)}
    current = uses.get(sequence_id)
    if target is None or target.exclusions_enabled or current is None:
        return
    if not current.exclusions_enabled:
        return
    lost = rules_lost(db, workspace_id=workspace_id, sequence_ids=[sequence_id], now=now)
    _confirm(
        f"moving {current.name} to ruleset {target.name!r}, which has exclusions off, makes "
        "it ignore every exclusion",
        lost,
    )
