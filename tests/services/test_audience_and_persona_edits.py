"""Editing audiences and personas; the unsaved audience a form describes, counted before
it is saved (R24)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from optout.errors import Conflict, InvalidFilter, InvalidInput, NotFound
from optout.services.sequences import audiences, personas
from tests.factories import World


def _people(world: World) -> None:
    world.person("ann@acme.com", title="CTO")
    world.person("bob@acme.com", title="Sales Manager")
    world.person("cat@globex.com", title="VP Engineering")
    world.person("dan@globex.com", title="Head of Sales Engineering")


def test_R24_a_draft_audience_counts_filter_and_persona_before_saving(world: World) -> None:
    _people(world)
    world.persona("Technical", include=["cto", "engineering"], exclude=["sales"])

    def size(filter: str | None, persona: str | None) -> int:
        draft = audiences.draft(world.db, workspace_id=world.ws, filter=filter, persona=persona)
        return audiences.size(world.db, workspace_id=world.ws, audience=draft, now=world.now)

    assert size(None, None) == 4
    assert size(None, "Technical") == 2
    assert size("person.email_domain = globex.com", "Technical") == 1
    assert size("person.email_domain = globex.com", None) == 2
    with pytest.raises(InvalidFilter):
        size("person.nope = 1", None)
    with pytest.raises(NotFound):
        size(None, "Nobody")


def test_audience_update_changes_name_filter_and_persona_and_keeps_switch_offs(
    world: World,
) -> None:
    _people(world)
    world.persona("Technical", include=["cto"])
    audience_id = world.audience("Everyone")
    world.exclusion("Globex", "company", "company.domain in (globex.com)")
    audiences.switch_off(
        world.db,
        workspace_id=world.ws,
        audience="Everyone",
        exclusion="Globex",
        actor="a",
        now=world.now,
    )
    after = audiences.update(
        world.db,
        workspace_id=world.ws,
        audience_id=audience_id,
        name="Tech at Acme",
        filter="person.email_domain = acme.com",
        persona="Technical",
        actor="ops@acme",
        now=world.now,
    )
    assert (after.name, after.persona_name, after.include_keywords) == (
        "Tech at Acme",
        "Technical",
        ("cto",),
    )
    assert len(after.switched_off) == 1
    assert audiences.size(world.db, workspace_id=world.ws, audience=after, now=world.now) == 1
    ev = t.events
    (detail,) = world.db.scalars(sa.select(ev.c.detail).where(ev.c.kind == "audience_updated"))
    assert detail["changes"]["persona"] == [None, "Technical"]
    assert detail["changes"]["filter"] == [None, "person.email_domain = acme.com"]

    cleared = audiences.update(
        world.db,
        workspace_id=world.ws,
        audience_id=audience_id,
        name="Tech at Acme",
        filter=None,
        persona=None,
        actor="ops@acme",
        now=world.now,
    )
    assert (cleared.filter, cleared.persona_name) == (None, None)
    world.audience("Other")
    with pytest.raises(Conflict):
        audiences.update(
            world.db,
            workspace_id=world.ws,
            audience_id=audience_id,
            name="Other",
            filter=None,
            persona=None,
            actor="a",
            now=world.now,
        )


def test_R24_persona_update_changes_keywords_and_audiences_follow(world: World) -> None:
    _people(world)
    world.persona("Technical", include=["cto"])
    audience_id = world.audience("Tech", persona="Technical")
    persona = personas.get_by_name(world.db, workspace_id=world.ws, name="Technical")
    updated = personas.update(
        world.db,
        workspace_id=world.ws,
        persona_id=persona.id,
        name="Engineers",
        include_keywords=["Engineering", " cto "],
        exclude_keywords=["sales"],
        actor="ops@acme",
        now=world.now,
    )
    assert updated.include_keywords == ("Engineering", "cto")
    assert updated.exclude_keywords == ("sales",)
    spec = audiences.spec(world.db, workspace_id=world.ws, audience_id=audience_id)
    assert spec.persona_name == "Engineers"
    assert audiences.size(world.db, workspace_id=world.ws, audience=spec, now=world.now) == 2
    with pytest.raises(InvalidInput, match="empty exclude keyword"):
        personas.update(
            world.db,
            workspace_id=world.ws,
            persona_id=persona.id,
            name="Engineers",
            include_keywords=[],
            exclude_keywords=["  "],
            actor="a",
            now=world.now,
        )
    world.persona("Sales")
    with pytest.raises(Conflict):
        personas.update(
            world.db,
            workspace_id=world.ws,
            persona_id=persona.id,
            name="Sales",
            include_keywords=[],
            exclude_keywords=[],
            actor="a",
            now=world.now,
        )
