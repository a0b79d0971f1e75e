"""An exclusion's own views and retirement: who it matches (paged and as CSV), its change
history with author and filters (R35), archive and restore, delete with its guard (R22)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from optout.errors import ConfirmationRequired, Conflict, NotFound
from optout.services import fresh_rules
from optout.services.exclusions import archive, history, matches, saves
from tests.factories import World


def _team(world: World) -> dict[str, int]:
    world.company("acme.com", "Acme")
    world.company("globex.com", "Globex")
    return {
        "ann": world.person("ann@acme.com", company="acme.com", first_name="Ann"),
        "ben": world.person("ben@acme.com", company="acme.com", first_name="Ben"),
        "cy": world.person("cy@acme.com", company="acme.com", first_name="Cy"),
        "gil": world.person("gil@globex.com", company="globex.com", first_name="Gil"),
    }


def test_match_list_pages_through_everyone_a_company_rule_reaches(world: World) -> None:
    _team(world)
    rule = world.exclusion("Acme", "company", "company.domain = acme.com").exclusion
    first = matches.page(
        world.db, workspace_id=world.ws, exclusion_id=rule.id, now=world.now, limit=2
    )
    assert [r["email"] for r in first.rows] == ["ann@acme.com", "ben@acme.com"]
    assert first.rows[0]["company"] == "acme.com"
    rest = matches.page(
        world.db,
        workspace_id=world.ws,
        exclusion_id=rule.id,
        now=world.now,
        after=first.next or "",
        limit=2,
    )
    assert [r["email"] for r in rest.rows] == ["cy@acme.com"]
    assert rest.next is None


def test_R35_history_shows_author_and_filter_before_and_after_each_change(world: World) -> None:
    _team(world)
    rule = world.exclusion("Acme", "company", "company.domain = acme.com").exclusion
    later = world.now + timedelta(hours=1)
    saves.update(
        world.db,
        workspace_id=world.ws,
        name="Acme",
        actor="rita@acme-sales.com",
        now=later,
        filter="company.domain in (acme.com, globex.com)",
        exclude_from_sequences=True,
        confirm=True,
    )
    archive.archive(
        world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam@acme-sales.com", now=later
    )
    changes = history.history(world.db, workspace_id=world.ws, exclusion_id=rule.id)
    assert [(c.kind, c.actor) for c in changes] == [
        ("created", "test@optout"),
        ("updated", "rita@acme-sales.com"),
        ("archived", "sam@acme-sales.com"),
    ]
    created, updated, _ = changes
    assert (created.filter_before, created.filter_after) == (None, "company.domain = acme.com")
    assert updated.filter_before == "company.domain = acme.com"
    assert updated.filter_after == "company.domain in (acme.com, globex.com)"
    assert updated.settings == [("exclude_from_sequences", False, True)]


def test_archived_rule_applies_nowhere_is_hidden_and_comes_back_on_restore(world: World) -> None:
    team = _team(world)
    rule = world.exclusion("Acme", "company", "company.domain = acme.com").exclusion
    seq = world.sequence()
    archive.archive(
        world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam", now=world.now
    )
    assert [s.name for s in fresh_rules.all_specs(world.db, workspace_id=world.ws)] == []
    assert world.explain("ann@acme.com").decision.allowed
    with pytest.raises(Conflict, match="restore it before changing it"):
        saves.set_enabled(
            world.db, workspace_id=world.ws, name="Acme", enabled=False, actor="sam", now=world.now
        )
    with pytest.raises(Conflict, match="archived already"):
        archive.archive(
            world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam", now=world.now
        )

    # Restoring puts a mass exclusion back in force: the same guard as a save (R22).
    with pytest.raises(ConfirmationRequired, match="matches 3 of 4 people"):
        archive.restore(
            world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam", now=world.now
        )
    archive.restore(
        world.db,
        workspace_id=world.ws,
        exclusion_id=rule.id,
        actor="sam",
        now=world.now,
        confirm=True,
    )
    assert not world.explain("ann@acme.com").decision.allowed
    assert world.enroll(seq, list(team.values())).enrolled == 1  # only Gil of Globex


def test_R22_delete_of_a_rule_in_force_needs_confirmation_and_is_kept_in_history(
    world: World,
) -> None:
    _team(world)
    world.sequence()
    rule = world.exclusion("Acme", "company", "company.domain = acme.com").exclusion
    _, impact = archive.impact_now(
        world.db, workspace_id=world.ws, exclusion_id=rule.id, now=world.now
    )
    assert (impact.people_matched, impact.companies_matched) == (3, 1)
    with pytest.raises(ConfirmationRequired, match="makes the 3 people it excludes now eligible"):
        archive.delete(
            world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam", now=world.now
        )
    assert saves.get_by_id(world.db, workspace_id=world.ws, exclusion_id=rule.id)

    archive.delete(
        world.db,
        workspace_id=world.ws,
        exclusion_id=rule.id,
        actor="sam",
        now=world.now,
        confirm=True,
    )
    with pytest.raises(NotFound):
        saves.get_by_id(world.db, workspace_id=world.ws, exclusion_id=rule.id)
    assert world.explain("ann@acme.com").decision.allowed
    changes = history.history(world.db, workspace_id=world.ws, exclusion_id=rule.id)
    assert [(c.kind, c.actor, c.filter_before) for c in changes][-1] == (
        "deleted",
        "sam",
        "company.domain = acme.com",
    )


def test_a_rule_that_matches_nobody_is_deleted_without_confirmation(world: World) -> None:
    _team(world)
    rule = world.exclusion("Nobody", "people", "person.email = zed@nowhere.com").exclusion
    archive.delete(
        world.db, workspace_id=world.ws, exclusion_id=rule.id, actor="sam", now=world.now
    )
    assert fresh_rules.all_specs(world.db, workspace_id=world.ws) == []


def test_csv_export_streams_every_match_with_a_header(fresh_engine: Engine, now: datetime) -> None:
    with fresh_engine.begin() as db:
        world = World(db, now)
        world.company("acme.com", "Acme")
        for i in range(5):
            world.person(f"p{i}@acme.com", company="acme.com", first_name=f"=cmd{i}")
        world.person("x@other.com")
        rule = world.exclusion("Acme", "company", "company.domain = acme.com").exclusion
    chunks = list(
        matches.csv_lines(fresh_engine, workspace_id=world.ws, exclusion_id=rule.id, now=now)
    )
    rows = list(csv.reader(io.StringIO("".join(chunks))))
    assert rows[0] == list(matches.CSV_COLUMNS)
    assert [r[0] for r in rows[1:]] == [f"p{i}@acme.com" for i in range(5)]
    # A name that a spreadsheet would run as a formula is written as text.
    assert rows[1][1] == "'=cmd0"
    assert rows[1][4:] == ["acme.com", "Acme"]
    with pytest.raises(NotFound):
        matches.csv_lines(fresh_engine, workspace_id=world.ws, exclusion_id=999, now=now)
