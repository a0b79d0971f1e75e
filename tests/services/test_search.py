"""Finding people and companies from the search box: prefix, case-insensitive, scoped."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from optout.services.directory import people
from optout.services.reads import search
from tests.factories import World


def _person(world: World, email: str, first: str, last: str) -> int:
    return people.create(
        world.db,
        workspace_id=world.ws,
        email=email,
        first_name=first,
        last_name=last,
        now=world.now,
    )


def test_finds_a_person_by_address_prefix_full_name_or_last_name_in_any_case(
    world: World,
) -> None:
    ann = _person(world, "ann.lee@acme.com", "Ann", "Lee")
    _person(world, "bob@globex.com", "Bob", "Annan")
    _person(world, "zed@initech.com", "Zed", "Marsh")

    by_address = search.find(world.db, workspace_id=world.ws, text="ANN.L")
    assert [(f.kind, f.id) for f in by_address] == [("person", ann)]

    by_full_name = search.find(world.db, workspace_id=world.ws, text="  ann   lee ")
    assert [f.label for f in by_full_name] == ["ann.lee@acme.com"]

    # "ann" starts Ann Lee's address and first name, and Bob Annan's last name.
    both = search.find(world.db, workspace_id=world.ws, text="Ann")
    assert sorted(f.label for f in both if f.kind == "person") == [
        "ann.lee@acme.com",
        "bob@globex.com",
    ]
    # Only prefixes: "lee" inside an address is no match, and "arsh" is inside a name.
    assert search.find(world.db, workspace_id=world.ws, text="arsh") == []


def test_finds_a_company_by_domain_or_name_and_goes_straight_to_an_exact_domain(
    world: World,
) -> None:
    acme = world.company("acme.com", "Acme Corporation")
    world.company("acme.co.uk", "Acme UK")
    world.company("globex.com", "Globex")

    found = search.find(world.db, workspace_id=world.ws, text="acme")
    assert sorted(f.label for f in found if f.kind == "company") == ["acme.co.uk", "acme.com"]
    assert search.destination(found) is None  # several, none exact: a results page

    exact = search.find(world.db, workspace_id=world.ws, text="ACME.COM")
    target = search.destination(exact)
    assert target is not None
    assert (target.kind, target.id) == ("company", acme)

    by_name = search.find(world.db, workspace_id=world.ws, text="acme corp")
    assert [(f.kind, f.id) for f in by_name] == [("company", acme)]


def test_wildcards_typed_in_the_box_are_plain_characters(world: World) -> None:
    _person(world, "a_b@acme.com", "A", "B")
    _person(world, "axb@acme.com", "A", "X")
    found = search.find(world.db, workspace_id=world.ws, text="a_")
    assert [f.label for f in found] == ["a_b@acme.com"]
    assert search.find(world.db, workspace_id=world.ws, text="%") == []


def test_search_never_crosses_workspaces(db: Connection, world: World) -> None:
    other = World(db, world.now, slug="other-team")
    other.company("acme.com", "Acme")
    _person(other, "ann@acme.com", "Ann", "Other")
    assert search.find(world.db, workspace_id=world.ws, text="ann") == []
    assert search.find(world.db, workspace_id=world.ws, text="acme") == []
    assert search.find(world.db, workspace_id=world.ws, text="   ") == []
