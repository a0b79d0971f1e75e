"""Rulesets: a sequence's settings for exclusions, re-enrollment and the company cap."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import RulesetSpec
from optout.errors import InvalidInput
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
    if reenroll_cooldown_days < 0:
        raise InvalidInput("the re-enrollment cooldown cannot be negative")
    if max_active_per_company is not None and max_active_per_company < 1:
        raise InvalidInput("the cap per company must be at least 1 (or no cap)")
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


def spec(db: Connection, *, workspace_id: int, ruleset_id: int) -> RulesetSpec:
    row = row_by_id(db, t.rulesets, workspace_id=workspace_id, id=ruleset_id, what="ruleset")
    return RulesetSpec(
        id=row["id"],
        name=row["name"],
        exclusions_enabled=row["exclusions_enabled"],
        reenroll_cooldown_days=row["reenroll_cooldown_days"],
        max_active_per_company=row["max_active_per_company"],
    )
