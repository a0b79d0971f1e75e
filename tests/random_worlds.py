"""Random data and random filters for the parity tests (DESIGN: "a property-based test keeps
(a) and (b) in agreement on random data").

A `WorldSpec` is plain data drawn by hypothesis; `build` writes it through the real
services. Filter values are drawn partly from the world (whole values, fragments, case
variants, raw spellings of domains and addresses), so conditions actually match.
Text keeps non-ASCII letters on purpose: SQL and Python both fold only A-Z.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from optout.filters.ast import All, AnyOf, Condition, Node, Not, Value
from optout.filters.fields import FIELDS, Field, FieldType, Level, lookup
from optout.filters.operators import OPERATORS, Arg, Operator
from optout.normalize import normalize_domain
from optout.services.directory import companies, opportunities, people
from optout.services.sequences.definitions import Step
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)  # the `now` of tests/conftest.py
STEPS = (Step(kind="email", subject="Hello", body_text="Hi there"),)

# (how the domain is typed in, how it is written in an address); near variants on purpose.
COMPANY_DOMAINS = (
    ("acme.com", "acme.com"),
    ("https://www.Acme.COM/about", "ACME.com"),
    ("acme.co.uk", "acme.co.uk"),
    ("eu.acme.com", "eu.acme.com"),
    ("acme.com.br", "acme.com.br"),
    ("globex.io", "globex.io"),
    ("bücher.de", "bücher.de"),
    ("xn--strae-oqa.de", "straße.de"),
    ("ÉCOLE.fr", "école.fr"),
    ("uni.edu.br", "uni.edu.br"),
    ("example.edu", "example.edu"),
)
FREE_MAIL = ("gmail.com", "GMX.de", "hotmail.co.uk", "yahoo.com")
OTHER_MAIL = ("unknown.org", "sub.acme.com", "edu.br.example.net")
LOCAL_PARTS = ("ann", "Bob.Smith", "émile", "sales+x", "o'neil", "straße", "İlker", "a%b_c", "zoë")

ALPHABET = string.ascii_letters + string.digits + " %_/\\-.@'" + "ÉéßİıÄäΣσø"
TEXT = st.text(alphabet=ALPHABET, min_size=0, max_size=8)

NAMES = ("Acme", "ACME Corp", "acme corp", "Émile & Co", "Straße GmbH", "İstanbul Ltd", "Globex")
FIRST_NAMES = ("Ann", "ann", "Émile", "ÉMILE", "Zoë", "İlker", "")
TITLES = (
    "CTO",
    "cto",
    "Head of Sales",
    "SALES Director",
    "Ingénieur",
    "Sales Intern",
    "VP Engineering",
    "İK Müdürü",
    "Straßenbau Leiter",
    "100% Growth_Hacker",
    "",
)
STATUSES = ("", "Customer", "customer", "Lead", "Do Not Contact", "Exclude")
STAGES = ("Negotiation", "negotiation", "Closed Won", "Closed Lost", "Prospecting", "")
CUSTOM_KEYS = ("tier", "region", "note")
CUSTOM_VALUES = ("gold", "Gold", "GOLD", "", "É", "é", "ß", "SS", "true", "42", "50%_off", " x ")
AMOUNTS = (None, 0.0, 1000.0, 2500.5, 10000.0, -5.0)


def _when(days: int, seconds: float) -> datetime:
    return NOW - timedelta(days=days, seconds=seconds)


# Exact day boundaries (seconds=0) make `within last N days` compare equal at the cutoff.
DATES = st.builds(
    _when,
    st.integers(-30, 400),
    st.sampled_from([0, 0, 0, 1, 3600, 43200.5, 86399]),
)
MAYBE_DATE = st.none() | DATES


def _pick(pool: Sequence[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(pool) | TEXT


CUSTOM_FIELDS = st.dictionaries(st.sampled_from(CUSTOM_KEYS), _pick(CUSTOM_VALUES), max_size=3)


@dataclass(frozen=True)
class CompanySpec:
    domain: str
    mail_domain: str
    name: str
    fields: dict[str, str]
    created_at: datetime
    last_replied_at: datetime | None
    last_activity_at: datetime | None


@dataclass(frozen=True)
class PersonSpec:
    email: str
    company: int | None
    first_name: str
    last_name: str
    title: str
    status: str
    fields: dict[str, str]
    created_at: datetime
    # (kind, source, occurred_at), recorded through people.record_activity
    activities: tuple[tuple[str, str, datetime], ...]


@dataclass(frozen=True)
class OpportunitySpec:
    company: int
    name: str
    stage: str
    amount: float | None
    is_closed: bool
    is_won: bool
    close_date: datetime | None
    fields: dict[str, str]
    contacts: tuple[int, ...]  # people indexes


@dataclass(frozen=True)
class WorldSpec:
    companies: tuple[CompanySpec, ...]
    people: tuple[PersonSpec, ...]
    opportunities: tuple[OpportunitySpec, ...]
    links: tuple[tuple[int, int], ...]  # (parent, child) company indexes


# Strategies are built once: hypothesis then draws from them cheaply, example after example.
NAME, FIRST_NAME, TITLE, STAGE = (_pick(pool) for pool in (NAMES, FIRST_NAMES, TITLES, STAGES))
ACTIVITIES = st.lists(
    st.tuples(
        st.sampled_from(["reply", "meeting", "email_sent"]),
        st.sampled_from(["crm", "optout"]),
        DATES,
    ),
    max_size=2,
).map(tuple)
AMOUNT = st.sampled_from(AMOUNTS) | st.floats(-1e6, 1e6)


@st.composite
def company_specs(draw: st.DrawFn) -> CompanySpec:
    raw, mail = draw(st.sampled_from(COMPANY_DOMAINS))
    return CompanySpec(
        domain=raw,
        mail_domain=mail,
        name=draw(NAME),
        fields=draw(CUSTOM_FIELDS),
        created_at=draw(DATES),
        last_replied_at=draw(MAYBE_DATE),
        last_activity_at=draw(MAYBE_DATE),
    )


@st.composite
def person_specs(draw: st.DrawFn, companies: tuple[CompanySpec, ...]) -> PersonSpec:
    company = draw(st.integers(0, len(companies) - 1)) if draw(st.booleans()) else None
    if company is not None and draw(st.integers(0, 3)) < 3:
        domain = companies[company].mail_domain
    else:
        domain = draw(st.sampled_from(FREE_MAIL + OTHER_MAIL))
    return PersonSpec(
        email=f"{draw(st.sampled_from(LOCAL_PARTS))}@{domain}",
        company=company,
        first_name=draw(FIRST_NAME),
        last_name=draw(NAME),
        title=draw(TITLE),
        status=draw(st.sampled_from(STATUSES)),
        fields=draw(CUSTOM_FIELDS),
        created_at=draw(DATES),
        activities=draw(ACTIVITIES),
    )


@st.composite
def opportunity_specs(draw: st.DrawFn, n_companies: int, n_people: int) -> OpportunitySpec:
    is_closed = draw(st.booleans())
    contacts = draw(st.lists(st.integers(0, n_people - 1), max_size=2, unique=True))
    return OpportunitySpec(
        company=draw(st.integers(0, n_companies - 1)),
        name=draw(NAME),
        stage=draw(STAGE),
        amount=draw(AMOUNT),
        is_closed=is_closed,
        is_won=is_closed and draw(st.booleans()),
        close_date=draw(MAYBE_DATE),
        fields=draw(CUSTOM_FIELDS),
        contacts=tuple(contacts),
    )


@st.composite
def worlds(
    draw: st.DrawFn, max_companies: int = 5, max_people: int = 8, max_deals: int = 5
) -> WorldSpec:
    """Two or more companies and people, at least one deal, maybe a link or two."""
    company_list = tuple(
        draw(
            st.lists(
                company_specs(),
                min_size=2,
                max_size=max_companies,
                unique_by=lambda c: normalize_domain(c.domain),
            )
        )
    )
    person_list = tuple(draw(st.lists(person_specs(company_list), min_size=2, max_size=max_people)))
    deals = opportunity_specs(len(company_list), len(person_list))
    opportunity_list = tuple(draw(st.lists(deals, min_size=1, max_size=max_deals)))
    index = st.integers(0, len(company_list) - 1)
    links = tuple(draw(st.lists(st.tuples(index, index), max_size=2)))
    return WorldSpec(company_list, person_list, opportunity_list, links)


@dataclass
class Built:
    world: World
    companies: list[int] = field(default_factory=list)
    people: list[int] = field(default_factory=list)
    opportunities: list[int] = field(default_factory=list)

    @property
    def ws(self) -> int:
        return self.world.ws


def build(db: Connection, spec: WorldSpec) -> Built:
    """Write the world through the services, as users and the CRM sync would."""
    built = Built(World(db, NOW))
    ws = built.ws
    for c in spec.companies:
        company_id = companies.create(
            db, workspace_id=ws, domain=c.domain, name=c.name, fields=c.fields, now=c.created_at
        )
        dates = {"last_replied_at": c.last_replied_at, "last_activity_at": c.last_activity_at}
        if any(dates.values()):
            companies.update(
                db,
                workspace_id=ws,
                company_id=company_id,
                changes=dates,
                actor="test@optout",
                now=NOW,
            )
        built.companies.append(company_id)
    for p in spec.people:
        person_id = people.create(
            db,
            workspace_id=ws,
            email=p.email,
            company_id=built.companies[p.company] if p.company is not None else None,
            first_name=p.first_name,
            last_name=p.last_name,
            title=p.title,
            status=p.status,
            fields=p.fields,
            now=p.created_at,
        )
        for kind, source, at in p.activities:
            people.record_activity(
                db,
                workspace_id=ws,
                person_id=person_id,
                kind=kind,
                source=source,
                now=NOW,
                occurred_at=at,
            )
        built.people.append(person_id)
    for o in spec.opportunities:
        opportunity_id = opportunities.create(
            db,
            workspace_id=ws,
            company_id=built.companies[o.company],
            now=NOW,
            name=o.name,
            stage=o.stage,
            amount=o.amount,
            is_closed=o.is_closed,
            is_won=o.is_won,
            close_date=o.close_date,
            fields=o.fields,
        )
        for person in o.contacts:
            opportunities.add_contact(
                db,
                workspace_id=ws,
                opportunity_id=opportunity_id,
                person_id=built.people[person],
                now=NOW,
            )
        built.opportunities.append(opportunity_id)
    parent: dict[int, int] = {}
    group = list(range(len(spec.companies)))
    for up, down in spec.links:
        if down in parent or group[up] == group[down]:
            continue  # the service refuses these (Conflict): not a world we can build
        companies.link(
            db,
            workspace_id=ws,
            parent_id=built.companies[up],
            child_id=built.companies[down],
            now=NOW,
        )
        parent[down] = up
        old = group[down]
        group = [group[up] if g == old else g for g in group]
    return built


# Filters -----------------------------------------------------------------------------------
# Composites over fixed inner strategies: drawing stays cheap although the pools change with
# every world.

NON_BLANK = st.text(alphabet=ALPHABET, min_size=1, max_size=8).filter(lambda s: bool(s.strip()))
EMAIL_FRAGMENTS = ("@gmail.com", "acme", ".co.uk", "ANN@", "%", "_", "'")
DOMAIN_FRAGMENTS = (".com", ".co.uk", "acme.com", ".edu", "edu.br", "bücher.de", "-")
OTHER_EMAILS = ("nobody@acme.com", "ANN@ACME.COM")
OTHER_DOMAINS = ("edu.br", "company.co.uk", "www.acme.com")
ANY_DATE = DATES | st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1))
ANY_DAYS = st.integers(0, 400) | st.integers(0, 36_500)
# Any number validate accepts; it makes them floats, as the column stores them.
ANY_NUMBER = st.integers(-(2**64), 2**64) | st.floats(allow_nan=False, allow_infinity=False)


@dataclass(frozen=True)
class Pools:
    """Raw values present in a world, by field, to draw filter values from."""

    text: dict[str, tuple[str, ...]]
    emails: tuple[str, ...]
    domains: tuple[str, ...]  # host names, as in addresses
    typed_domains: tuple[str, ...]  # as typed in for companies (scheme, path, www...)
    numbers: tuple[float, ...]
    dates: tuple[datetime, ...]


def pools(spec: WorldSpec) -> Pools:
    text: dict[str, list[str]] = {}

    def add(name: str, value: str) -> None:
        text.setdefault(name, []).append(value)

    for c in spec.companies:
        add("company.name", c.name)
        for key, value in c.fields.items():
            add(f"company.fields.{key}", value)
    for p in spec.people:
        for attr in ("first_name", "last_name", "title", "status"):
            add(f"person.{attr}", getattr(p, attr))
        for key, value in p.fields.items():
            add(f"person.fields.{key}", value)
    for o in spec.opportunities:
        add("opportunity.name", o.name)
        add("opportunity.stage", o.stage)
        for key, value in o.fields.items():
            add(f"opportunity.fields.{key}", value)
    domains = [c.mail_domain for c in spec.companies]
    domains += [p.email.rsplit("@", 1)[1] for p in spec.people]
    dates = [
        d
        for c in spec.companies
        for d in (c.created_at, c.last_replied_at, c.last_activity_at)
        if d is not None
    ]
    dates += [p.created_at for p in spec.people] + [a[2] for p in spec.people for a in p.activities]
    dates += [o.close_date for o in spec.opportunities if o.close_date is not None]
    return Pools(
        text={k: tuple(v) for k, v in text.items()},
        emails=tuple(p.email for p in spec.people),
        domains=tuple(domains),
        typed_domains=tuple(c.domain for c in spec.companies),
        numbers=tuple(o.amount for o in spec.opportunities if o.amount is not None),
        dates=tuple(dates),
    )


def fields_for(level: Level) -> list[str]:
    """Every field a filter of `level` may name, custom fields included."""
    names = [f.name for f in FIELDS.values() if level in f.relation.levels]
    prefixes = (
        ("person", "company", "person.opportunity")
        if level is Level.PEOPLE
        else ("company", "opportunity")
    )
    names += [f"{p}.fields.{key}" for p in prefixes for key in (*CUSTOM_KEYS, "never_set")]
    return names


FIELD_NAMES = {level: fields_for(level) for level in Level}
OPERATORS_FOR = {
    field_type: [op for op in OPERATORS.values() if field_type in op.types]
    for field_type in FieldType
}


def _one(draw: st.DrawFn, values: Sequence[Any]) -> Any:
    return values[draw(st.integers(0, len(values) - 1))]


def _variant(draw: st.DrawFn, value: str) -> str:
    """A spelling of a value: case changes (Python's, which are not ASCII-only) and spaces."""
    return _one(
        draw, (value, value.upper(), value.lower(), value.swapcase(), value.title(), f" {value} ")
    )


def _fragment(draw: st.DrawFn, values: Sequence[str]) -> str:
    value = _one(draw, values) if values else ""
    if not value:
        return draw(NON_BLANK)
    start = draw(st.integers(0, len(value) - 1))
    end = draw(st.integers(start + 1, len(value)))
    return _variant(draw, value[start:end])


def _text_value(draw: st.DrawFn, pool: Pools, field: Field, op: Operator) -> str:
    source = draw(st.integers(0, 2))  # 0 and 1: from the world; 2: anything
    if field.type is FieldType.EMAIL:
        if op.pattern:
            value = _fragment(draw, pool.emails) if source < 2 else _one(draw, EMAIL_FRAGMENTS)
        else:
            email = (
                _one(draw, pool.emails) if source < 2 and pool.emails else _one(draw, OTHER_EMAILS)
            )
            local, domain = email.rsplit("@", 1)
            value = _one(
                draw,
                (email, f"{local}@{domain.upper()}", f" {email} ", f"{local.upper()}@{domain}"),
            )
    elif field.type is FieldType.DOMAIN:
        if op.pattern:
            canonical = [normalize_domain(d) for d in pool.domains]
            value = (
                _fragment(draw, canonical if source == 0 else pool.domains)
                if source < 2
                else _one(draw, DOMAIN_FRAGMENTS)
            )
        elif source == 0:
            value = _one(draw, pool.typed_domains)  # as typed in when the company was created
        else:
            domain = _one(draw, pool.domains) if source == 1 else _one(draw, OTHER_DOMAINS)
            value = _one(
                draw,
                (
                    domain,
                    domain.upper(),
                    f"www.{domain}.",
                    f"https://{domain}/x?q=1",
                    f" {domain} ",
                ),
            )
    else:
        values = pool.text.get(field.name.replace("person.opportunity.", "opportunity."), ())
        if source == 2 or not values:
            value = draw(NON_BLANK)
        elif op.pattern:
            value = _fragment(draw, values)
        else:
            value = _variant(draw, _one(draw, values))
    # A blank value is invalid (validate: "use 'is empty'"); everything else is fair game.
    return value if value.strip() else draw(NON_BLANK)


def _date_value(draw: st.DrawFn, pool: Pools) -> Any:
    if pool.dates and draw(st.booleans()):
        seen = _one(draw, pool.dates)
        when = seen + timedelta(microseconds=draw(st.integers(-1, 1)))
    else:
        when = draw(ANY_DATE)
    form = draw(st.integers(0, 3))
    if form == 0:
        return when
    if form == 1:
        return when.isoformat()
    if form == 2:
        return when.date()
    # The same instant in another zone, as a string: validate turns it into naive UTC.
    zone = timezone(timedelta(hours=draw(st.integers(-12, 14))))
    return when.replace(tzinfo=UTC).astimezone(zone).isoformat()


def _days_value(draw: st.DrawFn, pool: Pools) -> int:
    if pool.dates and draw(st.booleans()):
        return max(0, (NOW - _one(draw, pool.dates)).days + draw(st.integers(-1, 1)))
    return draw(ANY_DAYS)


def _number_value(draw: st.DrawFn, pool: Pools) -> int | float:
    if pool.numbers and draw(st.booleans()):
        seen: float = _one(draw, pool.numbers)
        return int(seen) if draw(st.booleans()) else seen
    return draw(ANY_NUMBER)


def _scalar(draw: st.DrawFn, pool: Pools, field: Field, op: Operator) -> Any:
    if field.type in (FieldType.TEXT, FieldType.EMAIL, FieldType.DOMAIN):
        return _text_value(draw, pool, field, op)
    if field.type is FieldType.NUMBER:
        return _number_value(draw, pool)
    if field.type is FieldType.BOOLEAN:
        return draw(st.booleans())
    return _date_value(draw, pool)


def _value(draw: st.DrawFn, pool: Pools, field: Field, op: Operator) -> Value:
    if op.arg is Arg.NONE:
        return None
    if op.arg is Arg.DAYS:
        return _days_value(draw, pool)
    if op.arg is Arg.ONE:
        return _scalar(draw, pool, field, op)
    items = tuple(_scalar(draw, pool, field, op) for _ in range(draw(st.integers(1, 4))))
    if field.type is FieldType.DOMAIN and not op.pattern and draw(st.booleans()):
        return ", ".join(items)  # a domain list may come as one comma-separated string (R18)
    return items


@st.composite
def conditions(draw: st.DrawFn, pool: Pools, level: Level, names: Sequence[str] = ()) -> Condition:
    name = _one(draw, names or FIELD_NAMES[level])
    field = lookup(name)
    op = _one(draw, OPERATORS_FOR[field.type])
    return Condition(name, op.name, _value(draw, pool, field, op))


@st.composite
def filters(draw: st.DrawFn, pool: Pools, level: Level, depth: int = 3) -> Node:
    """Raw (not yet validated) filters: all / any / not over conditions, nested up to `depth`;
    sometimes several conditions on one collection side by side, which must then hold for
    the same deal."""
    kind = draw(st.integers(0, 4 if depth else 1))
    if kind == 0:
        return draw(conditions(pool, level))
    if kind == 1:
        prefix = "opportunity." if level is Level.COMPANY else "person.opportunity."
        names = [n for n in FIELD_NAMES[level] if n.startswith(prefix)]
        size = draw(st.integers(2, 3))
        return All(tuple(draw(conditions(pool, level, names)) for _ in range(size)))
    if kind == 4:
        return Not(draw(filters(pool, level, depth - 1)))
    items = tuple(draw(filters(pool, level, depth - 1)) for _ in range(draw(st.integers(1, 3))))
    return All(items) if kind == 2 else AnyOf(items)
