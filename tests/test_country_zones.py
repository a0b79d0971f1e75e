"""A country with one time zone gives it; one with several gives none (R38)."""

from __future__ import annotations

from optout.country_zones import zone_of_country


def test_R38_a_country_with_one_zone_gives_it_by_code_or_name() -> None:
    assert zone_of_country("DE") == "Europe/Berlin"
    assert zone_of_country("de") == "Europe/Berlin"
    assert zone_of_country("Germany") == "Europe/Berlin"
    assert zone_of_country(" france ") == "Europe/Paris"
    assert zone_of_country("JP") == "Asia/Tokyo"


def test_R38_a_country_with_several_zones_or_none_known_gives_no_zone() -> None:
    for country in ("US", "United States", "BR", "RU", "AU", "ES", "Atlantis", "", None, "XX"):
        assert zone_of_country(country) is None, country
