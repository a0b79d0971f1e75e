"""Server-side lists a page at a time: keyset pages in each sort order, both directions."""

from __future__ import annotations

import pytest

from optout.errors import InvalidInput
from optout.services.directory import people
from optout.services.reads import browse, keyset
from tests.factories import World


def _flat(pages: list[list[str]]) -> list[str]:
    return [email for page in pages for email in page]


def _walk(world: World, sort: str, size: int) -> list[list[str]]:
    """Every page of the people list in `sort` order, following the next links."""
    pages, after = [], ""
    while True:
        page = browse.people(world.db, workspace_id=world.ws, sort=sort, after=after, limit=size)
        pages.append([r["email"] for r in page.rows])
        if page.next is None:
            return pages
        after = page.next


@pytest.fixture
def crowd(world: World) -> list[str]:
    names = ["Cy Ames", "Al Zorn", "Bea Ames", "Al Zorn", "Di Cole", "Ed Brun", "Flo Ames"]
    emails = []
    for i, name in enumerate(names):
        first, last = name.split()
        email = f"p{(i * 5) % 7}-{first.lower()}@example.com"
        people.create(
            world.db,
            workspace_id=world.ws,
            email=email,
            first_name=first,
            last_name=last,
            now=world.now,
        )
        emails.append(email)
    return emails


def test_pages_in_each_sort_cover_everyone_once_in_order(world: World, crowd: list[str]) -> None:
    by_email = _walk(world, "email", 3)
    assert [len(p) for p in by_email] == [3, 3, 1]
    assert _flat(by_email) == sorted(crowd)

    newest = _walk(world, "newest", 2)
    assert _flat(newest) == crowd[::-1]

    # Two people share the name "Al Zorn": the id keeps them apart and in order.
    by_name = _flat(_walk(world, "name", 2))
    names = {
        r["email"]: f"{r['first_name']} {r['last_name']}".lower()
        for r in browse.people(world.db, workspace_id=world.ws, limit=50).rows
    }
    assert by_name == sorted(crowd, key=lambda e: (names[e], crowd.index(e)))


def test_previous_link_returns_the_page_before(world: World, crowd: list[str]) -> None:
    first = browse.people(world.db, workspace_id=world.ws, sort="email", limit=3)
    assert first.previous is None
    assert first.next is not None
    second = browse.people(world.db, workspace_id=world.ws, sort="email", after=first.next, limit=3)
    third = browse.people(world.db, workspace_id=world.ws, sort="email", after=second.next, limit=3)
    assert third.next is None
    assert second.previous is not None
    assert third.previous is not None
    back = browse.people(
        world.db, workspace_id=world.ws, sort="email", before=third.previous, limit=3
    )
    assert back.rows == second.rows
    assert back.next is not None
    again = browse.people(
        world.db, workspace_id=world.ws, sort="email", before=back.previous, limit=3
    )
    assert again.rows == first.rows
    assert again.previous is None


def test_a_damaged_link_or_unknown_sort_is_refused_with_a_clear_message(world: World) -> None:
    with pytest.raises(InvalidInput, match="page link is damaged"):
        browse.people(world.db, workspace_id=world.ws, after="not-a-cursor!")
    with pytest.raises(InvalidInput, match="sorted by newest, email, name"):
        browse.people(world.db, workspace_id=world.ws, sort="salary")
    assert keyset.decode(keyset.encode("ann@acme.com", 7)) == ("ann@acme.com", 7)


def test_companies_page_by_name_and_a_company_s_people(world: World) -> None:
    for domain, name in [("b.com", "beta"), ("a.com", "Alpha"), ("c.com", "Gamma")]:
        world.company(domain, name)
    world.person("x@a.com", company="a.com")
    world.person("y@b.com", company="b.com")
    page = browse.companies(world.db, workspace_id=world.ws, sort="name", limit=2)
    assert [r["name"] for r in page.rows] == ["Alpha", "beta"]
    rest = browse.companies(world.db, workspace_id=world.ws, sort="name", after=page.next or "")
    assert [r["name"] for r in rest.rows] == ["Gamma"]
    assert rest.next is None
    company_id = page.rows[0]["id"]
    staff = browse.people(world.db, workspace_id=world.ws, company_id=company_id)
    assert [r["email"] for r in staff.rows] == ["x@a.com"]
