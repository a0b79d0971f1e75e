"""Deterministic demo records: companies and people from `random.Random(seed)`.

Pure data, no database: `build` turns these into rows through the services. A few
"story" companies and people are fixed, so the tour can point at them by name.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from optout.demo import names

GENERATED_COMPANIES = 32
PERSONAL_SHARE = 0.06  # people whose CRM address is a free-mail one
DO_NOT_CONTACT = 5  # people the CRM marks "Do Not Contact"


@dataclass(frozen=True)
class CompanySeed:
    domain: str
    name: str
    industry: str
    employees: int


@dataclass(frozen=True)
class PersonSeed:
    email: str
    first_name: str
    last_name: str
    title: str
    company: str | None  # the company's domain
    status: str = "Open"
    lead_source: str = "outbound"


@dataclass(frozen=True)
class Roster:
    companies: list[CompanySeed]
    people: list[PersonSeed]


# Fixed companies the story needs: customers, a near-miss domain, a parent and its
# subsidiary, a company in a deal, one where someone replies, a competitor.
STORY_COMPANIES = (
    CompanySeed("acme.com", "Acme Corporation", "Manufacturing", 5200),
    CompanySeed("acme.co.uk", "Acme UK Ltd", "Manufacturing", 340),
    CompanySeed("globex.com", "Globex", "Energy", 12000),
    CompanySeed("initrode.net", "Initrode (a Globex company)", "Software", 450),
    CompanySeed("umbrellahealth.io", "Umbrella Health", "Healthcare", 800),
    CompanySeed("northwind.io", "Northwind Analytics", "Software", 120),
    CompanySeed("pioneerfreight.com", "Pioneer Freight", "Logistics", 900),
    CompanySeed("rivalsoft.com", "Rivalsoft", "Software", 300),
    CompanySeed("brightwave.io", "Brightwave", "Software", 60),
)

BLOCKED = PersonSeed(
    "dan.reyes@initrode.net", "Dan", "Reyes", "VP Engineering", "initrode.net", lead_source="event"
)
REPLIER = PersonSeed(
    "sofia.martin@northwind.io", "Sofia", "Martin", "Head of Engineering", "northwind.io"
)
COLLEAGUE = PersonSeed(
    "liam.okafor@northwind.io", "Liam", "Okafor", "Engineering Manager", "northwind.io"
)
IN_NEW_DEAL = PersonSeed(
    "grace.kim@pioneerfreight.com", "Grace", "Kim", "CTO", "pioneerfreight.com"
)
COOLING_DOWN = PersonSeed(
    "elena.petrov@brightwave.io", "Elena", "Petrov", "Engineering Manager", "brightwave.io"
)
# Created last, after the enrollments: in the audience, eligible, not yet enrolled.
NEW_LEAD = PersonSeed(
    "maya.lopez@brightwave.io", "Maya", "Lopez", "CTO", "brightwave.io", lead_source="inbound"
)
STORY_PEOPLE = (BLOCKED, REPLIER, COLLEAGUE, IN_NEW_DEAL, COOLING_DOWN)


def ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _weighted(rng: random.Random, pairs: Sequence[tuple[str, int]]) -> str:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def _companies(rng: random.Random) -> list[CompanySeed]:
    taken = {c.domain for c in STORY_COMPANIES}
    used_names: set[str] = set()
    out = list(STORY_COMPANIES)
    while len(out) < len(STORY_COMPANIES) + GENERATED_COMPANIES:
        word = rng.choice(names.COMPANY_WORDS)
        kind, industry = rng.choice(names.COMPANY_KINDS)
        name = f"{word} {kind}"
        domain = ascii_slug(name) + rng.choice(names.TLDS)
        if name in used_names or domain in taken:
            continue
        used_names.add(name)
        taken.add(domain)
        employees = rng.choice((25, 40, 80, 150, 300, 600, 1200, 2500))
        out.append(CompanySeed(domain, name, industry, employees))
    return out


def _address(rng: random.Random, first: str, last: str, domain: str, taken: set[str]) -> str:
    f, last_part = ascii_slug(first), ascii_slug(last)
    if domain in names.PERSONAL_DOMAINS:
        local = f"{f}.{last_part}{rng.randint(1, 99)}"
    else:
        local = rng.choices((f"{f}.{last_part}", f"{f[0]}{last_part}"), weights=(4, 1))[0]
    candidate, n = f"{local}@{domain}", 1
    while candidate in taken:
        n += 1
        candidate = f"{local}{n}@{domain}"
    taken.add(candidate)
    return candidate


def generate(seed: int) -> Roster:
    """The same roster for the same seed: about forty companies, a few hundred people."""
    rng = random.Random(seed)
    companies = _companies(rng)
    taken = {p.email for p in (*STORY_PEOPLE, NEW_LEAD)}
    people: list[PersonSeed] = list(STORY_PEOPLE)
    for company in companies:
        for _ in range(rng.randint(4, 10)):
            first = rng.choice(names.FIRST_NAMES)
            last = rng.choice(names.LAST_NAMES)
            personal = rng.random() < PERSONAL_SHARE
            domain = rng.choice(names.PERSONAL_DOMAINS) if personal else company.domain
            people.append(
                PersonSeed(
                    email=_address(rng, first, last, domain, taken),
                    first_name=first,
                    last_name=last,
                    title=_weighted(rng, names.TITLES),
                    company=company.domain,
                    status=_weighted(rng, names.STATUSES),
                    lead_source=rng.choice(names.LEAD_SOURCES),
                )
            )
    story = len(STORY_PEOPLE)
    for index in rng.sample(range(story, len(people)), DO_NOT_CONTACT):
        seed_person = people[index]
        people[index] = PersonSeed(
            seed_person.email,
            seed_person.first_name,
            seed_person.last_name,
            seed_person.title,
            seed_person.company,
            "Do Not Contact",
            seed_person.lead_source,
        )
    return Roster(companies=companies, people=people)
