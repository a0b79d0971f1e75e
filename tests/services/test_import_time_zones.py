"""A people import fills each person's time zone from its column, else from the country
when that country keeps one clock; a zone the database does not know is a row error (R38)."""

from __future__ import annotations

from tests.factories import World
from tests.services.test_imports import counts, import_people, person


def test_R38_an_import_gives_people_a_time_zone_from_the_zone_or_the_country(
    world: World,
) -> None:
    text = (
        "Email,Time zone,Country\n"
        "ann@acme.com,europe/berlin,US\n"  # the zone given wins over the country
        "bob@acme.com,,Germany\n"
        "cy@acme.com,,United States\n"  # several zones: none chosen
        "dee@acme.com,,\n"
    )
    report = import_people(world, text, "Email=email", "Time zone=time_zone", "Country=country")
    assert (counts(report), report.errors) == ((4, 4, 0, 0), [])
    zones = {
        address: person(world, address)["time_zone"]
        for address in ("ann@acme.com", "bob@acme.com", "cy@acme.com", "dee@acme.com")
    }
    assert zones == {
        "ann@acme.com": "Europe/Berlin",
        "bob@acme.com": "Europe/Berlin",
        "cy@acme.com": None,
        "dee@acme.com": None,
    }

    # A second file moves Cy to New York and leaves the others as they are.
    again = import_people(
        world, "Email,TZ\ncy@acme.com,America/New_York\n", "Email=email", "TZ=time_zone"
    )
    assert (counts(again), again.errors) == ((1, 0, 1, 0), [])
    assert person(world, "cy@acme.com")["time_zone"] == "America/New_York"
    assert person(world, "ann@acme.com")["time_zone"] == "Europe/Berlin"

    refused = import_people(
        world, "Email,TZ\ndee@acme.com,Mars/Olympus\n", "Email=email", "TZ=time_zone"
    )
    assert not refused.applied
    assert "not a time zone name" in refused.errors[0].reason
    assert person(world, "dee@acme.com")["time_zone"] is None
