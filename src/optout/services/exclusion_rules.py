"""The exclusion rules as stored, and the process-wide cache of their last reading.

Below the decision index: the index reads its rules here (`stored_specs`), and this
module imports no use-case, only storage, the decision core's model and the filter
language. A reader that needs the rules with their stored matches brought up to date
first calls `services.fresh_rules.all_specs`. The index's contract: docs/decision-index.md."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level
from optout.services.filters import load


def spec_from_row(row: dict[str, Any]) -> ExclusionSpec:
    """One stored exclusion row (its filter as JSON text or as decoded JSON) as a rule."""
    level = Level(row["level"])
    return ExclusionSpec(
        id=row["id"],
        name=row["name"],
        level=level,
        filter=load(row["filter"], level),
        enabled=row["enabled"],
        exclude_from_sequences=row["exclude_from_sequences"],
        unenroll_existing_on_save=row["unenroll_existing_on_save"],
        matched_at=row.get("matched_at"),
    )


# The rules last read, by database, workspace and rules version (a random token that the
# database changes with every write to the workspace's exclusions, `tables.workspaces`).
_READ: OrderedDict[tuple[str, int, int], tuple[tuple[ExclusionSpec, bool], ...]] = OrderedDict()
_READ_KEPT = 64
_READ_LOCK = threading.Lock()


def stored_specs(
    db: Connection, *, workspace_id: int, include_archived: bool = True
) -> list[ExclusionSpec]:
    """Every exclusion of the workspace as stored (the archived ones too unless told
    otherwise); read again only when they changed."""
    w = t.workspaces
    version = db.scalar(sa.select(w.c.rules_version).where(w.c.id == workspace_id))
    key = (db.engine.url.render_as_string(), workspace_id, int(version or 0))
    with _READ_LOCK:
        found = _READ.get(key) if version else None
        if found is not None:
            _READ.move_to_end(key)
    if found is None:
        found = tuple(_read_specs(db, workspace_id=workspace_id))
        if version:
            with _READ_LOCK:
                _READ[key] = found
                while len(_READ) > _READ_KEPT:
                    _READ.popitem(last=False)
    return [spec for spec, archived in found if include_archived or not archived]


def _read_specs(db: Connection, *, workspace_id: int) -> list[tuple[ExclusionSpec, bool]]:
    """Filters are read as their JSON text, so an unchanged filter is not decoded again
    (`filters.load`)."""
    x = t.exclusions
    columns = [c for c in x.c if c.name != "filter"]
    rows = db.execute(
        sa.select(*columns, sa.cast(x.c.filter, sa.Text).label("filter"))
        .where(x.c.workspace_id == workspace_id)
        .order_by(x.c.id)
    )
    return [(spec_from_row(dict(r)), r["archived_at"] is not None) for r in rows.mappings()]
