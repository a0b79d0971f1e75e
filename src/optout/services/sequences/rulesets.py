"""Rulesets: a sequence's settings for exclusions, re-enrollment and the company cap."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import RulesetSpec
from optout.errors import InvalidInput
from optout.services import enrollment_queue, events
from optout.services.naming import clean_name, ensure_unique, row_by_id


def create(
    db: Connection,
    *,
    workspace_id: int,
    name: str,
    now: datetime,
    exclusions_enabled: bool = True,
    reenroll_cooldown_days: int = 0,
    max_active_per_company: int | None = None,
) -> int:
    name = clean_name(name, what="ruleset")
    _check(reenroll_cooldown_days, max_active_per_company)
    ensure_unique(db, t.rulesets, workspace_id=workspace_id, name=name, what="ruleset")
    return int(
        db.execute(
            t.rulesets.insert()
            .values(
                workspace_id=workspace_id,
                name=name,
                exclusions_enabled=exclusions_enabled,
                reenroll_cooldown_days=reenroll_cooldown_days,
                max_active_per_company=max_active_per_company,
                created_at=now,
            )
            .returning(t.rulesets.c.id)
        ).scalar_one()
    )


def _check(reenroll_cooldown_days: int, max_active_per_company: int | None) -> None:
    if reenroll_cooldown_days < 0:
        raise InvalidInput(
            f"{reenroll_cooldown_days} days is no cooldown: give 0 days or more",
            value=str(reenroll_cooldown_days),
        ).at("reenroll_cooldown_days", "Re-enrollment cooldown")
    if max_active_per_company is not None and max_active_per_company < 1:
        raise InvalidInput(
            f"{max_active_per_company} is no cap: give 1 person or more, or no cap",
            value=str(max_active_per_company),
        ).at("max_active_per_company", "Cap per company")


EDITABLE = ("name", "exclusions_enabled", "reenroll_cooldown_days", "max_active_per_company")


def update(
    db: Connection,
    *,
    workspace_id: int,
    ruleset_id: int,
    changes: Mapping[str, Any],
    actor: str,
    now: datetime,
    confirm: bool = False,
) -> RulesetSpec:
    """Change a ruleset's settings; the others stay. Enrollments are not touched here:
    every send re-checks eligibility under the ruleset as it is then (R28). Turning
    exclusions off where sequences use the ruleset needs `confirm`: until then it is
    ConfirmationRequired naming the rules that would stop applying there (R16)."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise InvalidInput(f"cannot change {', '.join(sorted(unknown))} of a ruleset")
    before = spec(db, workspace_id=workspace_id, ruleset_id=ruleset_id)
    values = dict(changes)
    if "name" in values:
        values["name"] = clean_name(str(values["name"]), what="ruleset")
        if values["name"] != before.name:
            ensure_unique(
                db, t.rulesets, workspace_id=workspace_id, name=values["name"], what="ruleset"
            )
    after = replace(before, **values)
    _check(after.reenroll_cooldown_days, after.max_active_per_company)
    if after == before:
        return before
    if before.exclusions_enabled and not after.exclusions_enabled and not confirm:
        from optout.services.exclusions import in_sequences  # reading a ruleset needs none

        in_sequences.confirm_exclusions_off(
            db, workspace_id=workspace_id, ruleset_id=ruleset_id, now=now
        )
    r = t.rulesets
    db.execute(r.update().where(r.c.id == ruleset_id).values(**values))
    old, new = asdict(before), asdict(after)
    events.record(
        db,
        workspace_id=workspace_id,
        kind="ruleset_updated",
        actor=actor,
        now=now,
        detail={
            "name": after.name,
            "changes": {key: [old[key], new[key]] for key in new if old[key] != new[key]},
        },
    )
    # A shorter cooldown, a larger cap, exclusions off: ask the left-out again.
    enrollment_queue.requeue_skipped(db, workspace_id=workspace_id, now=now)
    return after


def spec(db: Connection, *, workspace_id: int, ruleset_id: int) -> RulesetSpec:
    row = row_by_id(db, t.rulesets, workspace_id=workspace_id, id=ruleset_id, what="ruleset")
    return RulesetSpec(
        id=row["id"],
        name=row["name"],
        exclusions_enabled=row["exclusions_enabled"],
        reenroll_cooldown_days=row["reenroll_cooldown_days"],
        max_active_per_company=row["max_active_per_company"],
    )
