"""The workspace's exclusion rules with their stored matches brought up to date first,
so whatever reads them next reads the truth.

Above the decision index (it flushes and holds it) and the rule store below it
(`services.exclusion_rules`); every use-case that reads the rules to decide reads them
here."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from optout.eligibility.model import ExclusionSpec
from optout.services import decision_index
from optout.services.exclusion_rules import stored_specs


def all_specs(
    db: Connection, *, workspace_id: int, include_archived: bool = False
) -> list[ExclusionSpec]:
    """Every exclusion of the workspace that is not archived (an archived one applies
    nowhere), with the stored matches brought up to date first
    (`services.decision_index`), so whatever reads them next reads the truth."""
    decision_index.flush(db)
    decision_index.hold(db, workspace_id=workspace_id)
    return stored_specs(db, workspace_id=workspace_id, include_archived=include_archived)
