"""A person's time zone from their country, where the country has only one (R38).

Read from the IANA time zone database's own tables (`zone.tab`: the zones of each ISO
3166 country; `iso3166.tab`: the countries' names), as shipped by the `tzdata` package
that `zoneinfo` reads, else the system's copy. A country whose zones keep different
clocks (the United States, Brazil, Spain with the Canaries, ...) gives no zone: its
people's windows are read in their mailbox's zone until a zone is known. Zones of one
country that keep the same clock (Germany's Berlin and Busingen) count as one: the first
listed, the one of most of the country. "The same clock" is read from `zoneinfo`: the same
UTC offset at noon UTC of every day of two years from the start of this one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

_SYSTEM = Path("/usr/share/zoneinfo")


def _table(name: str) -> list[list[str]]:
    try:
        text = resources.files("tzdata.zoneinfo").joinpath(name).read_text("utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        text = (_SYSTEM / name).read_text("utf-8")
    return [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]


@cache
def _zones_by_code() -> dict[str, list[str]]:
    zones: dict[str, list[str]] = {}
    for row in _table("zone.tab"):
        zones.setdefault(row[0].upper(), []).append(row[2])
    return zones


@cache
def _codes_by_name() -> dict[str, str]:
    return {row[1].strip().casefold(): row[0].upper() for row in _table("iso3166.tab")}


@cache
def _clock(name: str) -> tuple[timedelta | None, ...]:
    where = ZoneInfo(name)
    start = datetime(datetime.now(UTC).year, 1, 1, 12, tzinfo=UTC)
    return tuple((start + timedelta(days=d)).astimezone(where).utcoffset() for d in range(731))


def zone_of_country(country: str | None) -> str | None:
    """The one zone of a country given by ISO code (`DE`) or English name (`Germany`);
    None for a country with several zones, or one the database does not know."""
    if not country or not country.strip():
        return None
    cleaned = country.strip()
    code = cleaned.upper() if len(cleaned) == 2 else _codes_by_name().get(cleaned.casefold())
    zones = _zones_by_code().get(code or "", [])
    if not zones or any(_clock(zone) != _clock(zones[0]) for zone in zones[1:]):
        return None
    return zones[0]
