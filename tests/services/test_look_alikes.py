"""Look-alike domains in the data: the exclusion preview lists them next to the near-miss
suffix variants (R18), and a person's explain warns when their domain only looks like
one an exclusion lists (R29)."""

from __future__ import annotations

import importlib

from optout.db.skeletons import ASCII_REPLACEMENTS, skeleton_sql
from optout.eligibility import Status
from optout.filters.confusables import ascii_replacements
from optout.normalize import normalize_domain
from optout.services.exclusions import look_alikes
from tests.factories import World

CYRILLIC_A = "\u0430"
SPOOF = f"{CYRILLIC_A}cme.com"  # acme.com with a Cyrillic a


def test_R18_preview_lists_look_alike_domains_beside_the_near_misses(world: World) -> None:
    world.company("acme.com")
    world.company("acme.co.uk")
    world.company(SPOOF)
    world.company("globex.io")
    world.person("eve@acrne.com")  # an email domain with no company: rn for m
    saved = world.exclusion("Acme", "company", "company.domain in (acme.com, globex.io)")
    present = {(m.listed, m.present, m.kind) for m in saved.preview.near_misses}
    assert present == {
        ("acme.com", "acme.co.uk", "suffix"),
        ("acme.com", normalize_domain(SPOOF), "look_alike"),
        ("acme.com", "acrne.com", "look_alike"),
    }


def test_R18_a_look_alike_that_is_listed_too_is_no_near_miss(world: World) -> None:
    world.company("acme.com")
    world.company(SPOOF)
    saved = world.exclusion("Acme", "company", f'company.domain in (acme.com, "{SPOOF}")')
    assert saved.preview.near_misses == []


def test_look_alikes_stay_in_their_workspace(world: World) -> None:
    other = World(world.db, world.now, slug="other-workspace")
    other.company(SPOOF)
    world.company("acme.com")
    saved = world.exclusion("Acme", "company", "company.domain in (acme.com)")
    assert saved.preview.near_misses == []
    there = other.exclusion("Acme", "company", "company.domain in (acme.com)")
    assert [m.present for m in there.preview.near_misses] == [normalize_domain(SPOOF)]
    found = look_alikes.in_workspace(world.db, workspace_id=world.ws, filter=there.exclusion.filter)
    assert found == []


def test_R29_explain_warns_of_a_look_alike_of_a_listed_domain(world: World) -> None:
    world.person(f"eve@{SPOOF}", company=SPOOF)
    world.person("ann@acme.com", company="acme.com")
    world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    world.exclusion("Old list", "company", "company.domain in (acme.com)", enabled=False)

    eve = world.explain(f"eve@{SPOOF}")
    assert eve.decision.allowed  # a different domain: the exclusion does not apply
    customers = next(o for o in eve.decision.outcomes if o.check == "exclusion")
    assert customers.status is Status.PASS
    ascii_form = normalize_domain(SPOOF)
    assert eve.warnings == [
        f"Look-alike domain: the email domain of eve@{ascii_form}, {SPOOF} ({ascii_form}), "
        "looks like acme.com, which exclusion 'Customers' lists, but it is a different "
        "domain, so that exclusion does not cover it."
    ]
    assert world.explain("ann@acme.com").warnings == []  # the real one matches, no warning


def test_R29_explain_warns_of_a_look_alike_company_domain(world: World) -> None:
    world.person("eve@gmail.com", company="acrne.com")
    world.sequence()
    world.exclusion("Customers", "company", "company.domain in (acme.com)")
    [warning] = world.explain("eve@gmail.com").warnings
    assert "the company domain of eve@gmail.com, acrne.com, looks like acme.com" in warning


def test_the_indexed_skeleton_is_the_skeleton_of_the_unicode_data() -> None:
    """The look-alike search finds candidates through indexes on a SQL form of the
    skeleton; it must be the one the vendored Unicode data gives."""
    assert ascii_replacements() == ASCII_REPLACEMENTS
    # The migration that built the indexes wrote the expression out; queries must match it.
    built = importlib.import_module("optout.db.migrations.versions.0014_domain_skeleton_indexes")
    for column in ("domain", "email_domain"):
        assert built._skeleton(column) == skeleton_sql(column)
