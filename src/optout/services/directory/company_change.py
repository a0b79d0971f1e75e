"""Changing or removing a person's company by hand, saying first which exclusions stop
covering them: a company rule excludes everyone at a matching company (R12), so taking a
customer's company away makes them eligible where that rule kept them out. The change is
tried inside a savepoint and the rules that cover the person are read before and after,
so what is named is exactly what the change would do."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.eligibility.model import ExclusionSpec
from optout.errors import ConfirmationRequired
from optout.services import fresh_rules
from optout.services.directory import companies, people
from optout.services.enforcement import Removal
from optout.services.exclusions.reached import people_reached


def covering(
    db: Connection, *, workspace_id: int, person_id: int, now: datetime
) -> list[ExclusionSpec]:
    """The enabled exclusions that cover the person now, read from the data as it is in
    this transaction (not from stored matches), by name."""
    found = []
    for rule in fresh_rules.all_specs(db, workspace_id=workspace_id):
        if not rule.enabled:
            continue
        live = dataclasses.replace(rule, matched_at=None)
        reached = people_reached(live, workspace_id=workspace_id, now=now).subquery()
        first = next(iter(reached.c))
        if db.scalar(sa.select(sa.func.count()).select_from(reached).where(first == person_id)):
            found.append(rule)
    return sorted(found, key=lambda r: r.name)


def rules_that_stop(
    db: Connection, *, workspace_id: int, person_id: int, domain: str | None, now: datetime
) -> list[ExclusionSpec]:
    """The exclusions that cover the person now and would not once their company is the
    one of `domain` (None: no company). Nothing is kept: the change is rolled back."""
    before = covering(db, workspace_id=workspace_id, person_id=person_id, now=now)
    savepoint = db.begin_nested()
    try:
        companies.assign_person(
            db, workspace_id=workspace_id, person_id=person_id, domain=domain, actor="", now=now
        )
        after = {
            r.id for r in covering(db, workspace_id=workspace_id, person_id=person_id, now=now)
        }
    finally:
        savepoint.rollback()
    return [r for r in before if r.id not in after]


def stop_message(email: str, domain: str | None, stops: list[ExclusionSpec]) -> str:
    change = f"moving {email} to {domain}" if domain else f"removing the company of {email}"
    names = ", ".join(repr(r.name) for r in stops)
    return (
        f"{change} stops {len(stops)} exclusion(s) covering them ({names}): they may then "
        "be enrolled and emailed where these kept them out"
    )


def confirm_company(
    db: Connection, *, workspace_id: int, person_id: int, company_id: int | None, now: datetime
) -> None:
    """ConfirmationRequired, naming the exclusions, when giving the person the company
    `company_id` (None: no company) stops exclusions covering them; nothing when it does
    not, or when it is their company already."""
    person = people.get(db, workspace_id=workspace_id, person_id=person_id)
    if person["company_id"] == company_id:
        return
    domain = (
        None
        if company_id is None
        else companies.get(db, workspace_id=workspace_id, company_id=company_id)["domain"]
    )
    stops = rules_that_stop(
        db, workspace_id=workspace_id, person_id=person_id, domain=domain, now=now
    )
    if stops:
        raise ConfirmationRequired(stop_message(person["email"], domain, stops))


def change(
    db: Connection,
    *,
    workspace_id: int,
    person_id: int,
    domain: str | None,
    actor: str,
    now: datetime,
    confirm: bool = False,
) -> Removal:
    """Set the person's company to the one of `domain` (None: remove it), as
    `companies.assign_person` does; ConfirmationRequired, with nothing changed, when that
    stops exclusions covering them and `confirm` is not given."""
    if not confirm:
        stops = rules_that_stop(
            db, workspace_id=workspace_id, person_id=person_id, domain=domain, now=now
        )
        if stops:
            email = people.get(db, workspace_id=workspace_id, person_id=person_id)["email"]
            raise ConfirmationRequired(stop_message(email, domain, stops))
    return companies.assign_person(
        db, workspace_id=workspace_id, person_id=person_id, domain=domain, actor=actor, now=now
    )
