"""The exclusions of the generated workspace: one company rule listing 1,000 domains, and a
realistic mix for the rest (mostly lists, then field, name, deal and activity rules).

Every filter is validated through `optout.services.filters.read_filter` and stored in the
form `stored()` gives, as `exclusions.create` would, without its preview guard per rule.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import shapes
from bench.generate import NOW, WORKSPACE_ID, Row, World
from optout.filters import Level
from optout.normalize import domain_label
from optout.services.filters import read_filter, stored

BIG_RULE_NAME = "Customers and open pipeline (CRM export)"
BIG_RULE_SIZE = 1000

Json = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    name: str
    level: Level
    share: float
    make: Callable[[random.Random, World], Json]


def _cond(field: str, op: str, value: Any = None) -> Json:
    out: Json = {"field": field, "op": op}
    if value is not None:
        out["value"] = value
    return out


def _messy(rng: random.Random, domain: str) -> str:
    """Domains as people paste them (R18): scheme, www, case, path, trailing dot."""
    roll = rng.random()
    if roll < 0.03:
        return f"https://www.{domain}/about"
    if roll < 0.05:
        return domain.upper() + "."
    return domain


def _absent_domain(rng: random.Random, world: World) -> str:
    while True:
        head, tail = rng.choice(shapes.NAME_HEADS), rng.choice(shapes.NAME_TAILS)
        domain = f"{head}{tail}{rng.randrange(1000, 99_999)}.{rng.choice(('com', 'io', 'net'))}"
        if domain_label(domain) not in world.labels:
            return domain


def big_domain_list(rng: random.Random, world: World) -> Json:
    """1,000 domains: most present, some whose label exists under another suffix
    (near misses: `acme.de` listed, `acme.com` present), the rest absent."""
    present = rng.sample(world.domains, min(550, len(world.domains) // 40))
    present_set = set(world.domains)
    near: list[str] = []
    for domain in rng.sample(world.domains, min(2000, len(world.domains))):
        variant = f"{domain_label(domain)}.{rng.choice(shapes.VARIANT_TLDS)}"
        if variant not in present_set and variant not in near:
            near.append(variant)
        if len(near) == min(100, len(world.domains) // 40):
            break
    listed = dict.fromkeys([*present, *near])
    while len(listed) < BIG_RULE_SIZE:
        listed[_absent_domain(rng, world)] = None
    return _cond("company.domain", "in", [_messy(rng, d) for d in listed])


def _list_size(rng: random.Random, top: int) -> int:
    """Lists of a few, some dozens, a few long ones."""
    roll = rng.random()
    if roll < 0.4:
        return rng.randint(1, 5)
    if roll < 0.8:
        return rng.randint(5, top // 2)
    return rng.randint(top // 2, top)


def domain_list(rng: random.Random, world: World) -> Json:
    size = _list_size(rng, 50)
    present = 0.75 * min(1.0, len(world.domains) / 100_000)  # ~5% of companies listed
    values = [
        rng.choice(world.domains) if rng.random() < present else _absent_domain(rng, world)
        for _ in range(size)
    ]
    return _cond("company.domain", "in", [_messy(rng, d) for d in values])


def email_list(rng: random.Random, world: World) -> Json:
    size = _list_size(rng, 100)
    present = 0.85 * min(1.0, len(world.emails) / 1_000_000)
    values = [
        rng.choice(world.emails)
        if rng.random() < present
        else f"someone{rng.randrange(10**6)}@{rng.choice(world.domains)}"
        for _ in range(size)
    ]
    return _cond("person.email", "in", [v.upper() if rng.random() < 0.02 else v for v in values])


def company_fields(rng: random.Random, world: World) -> Json:
    if rng.random() < 0.7:
        industries = rng.sample(["Government", "Education", "Non-profit"], rng.choice((1, 2)))
        return _cond("company.fields.industry", "in", industries)
    return _cond("company.fields.tier", "eq", "Strategic")


def company_name(rng: random.Random, world: World) -> Json:
    name = domain_label(rng.choice(world.domains)).replace("-", " ")
    return _cond("company.name", "contains", name)


def open_deal(rng: random.Random, world: World) -> Json:
    stage = rng.choice([s for s, _, closed in shapes.STAGES if not closed])
    parts = [_cond("opportunity.stage", "eq", stage), _cond("opportunity.is_closed", "eq", False)]
    if rng.random() < 0.3:
        parts.append(_cond("opportunity.amount", "gt", rng.choice((10_000, 50_000, 100_000))))
    return {"all": parts}


def replied_recently(rng: random.Random, world: World) -> Json:
    if rng.random() < 0.7:
        return _cond("company.last_replied_at", "within_last_days", rng.choice((14, 30, 60)))
    return _cond("company.last_activity_at", "within_last_days", rng.choice((3, 7)))


def title_words(rng: random.Random, world: World) -> Json:
    words = rng.choice(
        (
            ["student", "intern"],
            ["recruit", "talent acquisition"],
            ["assistant"],
            ["freelance"],
            ["phd", "professor"],
            ["retired"],
        )
    )
    return _cond("person.title", "contains_any", words)


def status_list(rng: random.Random, world: World) -> Json:
    values = rng.sample(["Unqualified", "Bad Data", "Do Not Contact", "Competitor"], 2)
    if rng.random() < 0.2:
        values.append("Customer")
    return _cond("person.status", "in", values)


def personal_address(rng: random.Random, world: World) -> Json:
    if rng.random() < 0.7:
        return _cond("person.email_domain", "is_personal")
    return _cond("person.email", "ends_with", rng.choice(("@gmail.com", "@yahoo.com")))


def person_fields(rng: random.Random, world: World) -> Json:
    if rng.random() < 0.5:
        return _cond("person.fields.persona", "eq", "gatekeeper")
    return _cond("person.fields.lead_source", "in", rng.sample(["Purchased List", "Partner"], 1))


def title_at_industry(rng: random.Random, world: World) -> Json:
    industry = rng.choice([i for i, _ in shapes.INDUSTRIES])
    word = rng.choice(("recruit", "intern", "assistant"))
    return {
        "all": [
            _cond("company.fields.industry", "eq", industry),
            _cond("person.title", "contains", word),
        ]
    }


def in_a_deal(rng: random.Random, world: World) -> Json:
    return _cond("person.has_opportunity", "eq", True)


def public_sector(rng: random.Random, world: World) -> Json:
    return _cond("company.domain", "ends_with", rng.choice((".gov", ".edu", ".mil", ".ac.uk")))


KINDS = (
    Kind("Domain list", Level.COMPANY, 0.495, domain_list),
    Kind("Email list", Level.PEOPLE, 0.20, email_list),
    Kind("Industry or tier", Level.COMPANY, 0.04, company_fields),
    Kind("Company name", Level.COMPANY, 0.025, company_name),
    Kind("Open deal in stage", Level.COMPANY, 0.03, open_deal),
    Kind("Recent company activity", Level.COMPANY, 0.025, replied_recently),
    Kind("Title words", Level.PEOPLE, 0.06, title_words),
    Kind("Lead status", Level.PEOPLE, 0.04, status_list),
    Kind("Personal address", Level.PEOPLE, 0.01, personal_address),
    Kind("Person field", Level.PEOPLE, 0.03, person_fields),
    Kind("Title at industry", Level.PEOPLE, 0.02, title_at_industry),
    Kind("In an open deal", Level.PEOPLE, 0.01, in_a_deal),
    Kind("Public sector", Level.COMPANY, 0.01, public_sector),
)


def exclusion_rows(rng: random.Random, world: World, count: int) -> list[Row]:
    """`count` exclusion rows, the 1,000-domain rule first (id 1)."""
    rows: list[Row] = []

    def add(name: str, level: Level, raw: Json, enabled: bool, enforced: bool, sweep: bool) -> None:
        node = read_filter(raw, level)
        rows.append(
            (len(rows) + 1, WORKSPACE_ID, name, level.value, stored(node), enabled, enforced,
             sweep, "revops@bench.example", NOW, NOW)
        )  # fmt: skip

    add(BIG_RULE_NAME, Level.COMPANY, big_domain_list(rng, world), True, True, True)
    rest = count - 1
    kinds = [k for k in KINDS for _ in range(round(k.share * rest))]
    while len(kinds) < rest:
        kinds.append(KINDS[0])
    rng.shuffle(kinds)
    for i, kind in enumerate(kinds[:rest], start=2):
        add(
            f"{kind.name} #{i}",
            kind.level,
            kind.make(rng, world),
            rng.random() >= 0.03,
            rng.random() < 0.4,
            rng.random() < 0.2,
        )
    return rows
