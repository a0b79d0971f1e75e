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
from optout.services import companies, opportunities, people
from optout.services.sequences import Step
from tests.factories import World

NOW = datetime(2026, 11, 2, 9, 0, 0)
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


@st.composite
def company_specs(draw: st.DrawFn) -> CompanySpec:
    raw, mail = draw(st.sampled_from(COMPANY_DOMAINS))
    return CompanySpec(
        domain=raw,
        mail_domain=mail,
        name=draw(_pick(NAMES)),
        fields=draw(CUSTOM_FIELDS),
        created_at=draw(DATES),
        last_replied_at=draw(MAYBE_DATE),
        last_activity_at=draw(MAYBE_DATE),
    )


@st.composite
def person_specs(draw: st.DrawFn, companies: tuple[CompanySpec, ...]) -> PersonSpec:
    company = draw(st.none() | st.integers(0, len(companies) - 1))
    domains = list(FREE_MAIL + OTHER_MAIL)
    if company is not None:
        domains += [companies[company].mail_domain] * 4
    domain = draw(st.sampled_from(domains))
    local = draw(st.sampled_from(LOCAL_PARTS))
    activity = st.tuples(
        st.sampled_from(["reply", "meeting", "email_sent"]),
        st.sampled_from(["crm", "optout"]),
        DATES,
    )
    return PersonSpec(
        email=f"{local}@{domain}",
        company=company,
        first_name=draw(_pick(FIRST_NAMES)),
        last_name=draw(_pick(NAMES)),
        title=draw(_pick(TITLES)),
        status=draw(st.sampled_from(STATUSES)),
        fields=draw(CUSTOM_FIELDS),
        created_at=draw(DATES),
        activities=tuple(draw(st.lists(activity, max_size=2))),
    )


@st.composite
def opportunity_specs(
    draw: st.DrawFn, n_companies: int, n_people: int
) -> OpportunitySpec:
    is_closed = draw(st.booleans())
    contacts: tuple[int, ...] = ()
    if n_people:
        contacts = tuple(draw(st.lists(st.integers(0, n_people - 1), max_size=2, unique=True)))
    return OpportunitySpec(
        company=draw(st.integers(0, n_companies - 1)),
        name=draw(_pick(NAMES)),
        stage=draw(_pick(STAGES)),
        amount=draw(st.sampled_from(AMOUNTS) | st.floats(-1e6, 1e6)),
        is_closed=is_closed,
        is_won=is_closed and draw(st.booleans()),
        close_date=draw(MAYBE_DATE),
        fields=draw(CUSTOM_FIELDS),
        contacts=contacts,
    )


@st.composite
def worlds(draw: st.DrawFn, max_people: int = 8) -> WorldSpec:
    company_list = tuple(
        draw(
            st.lists(
                company_specs(),
                min_size=1,
                max_size=5,
                unique_by=lambda c: normalize_domain(c.domain),
            )
        )
    )
    person_list = tuple(draw(st.lists(person_specs(company_list), max_size=max_people)))
    opportunity_list = tuple(
        draw(
            st.lists(opportunity_specs(len(company_list), len(person_list)), max_size=5)
        )
    )
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
        companies.update(
            db,
            workspace_id=ws,
            company_id=company_id,
            changes={"last_replied_at": c.last_replied_at, "last_activity_at": c.last_activity_at},
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


@dataclass(frozen=True)
class Pools:
    """Raw values present in a world, by field, to draw filter values from."""

    text: dict[str, tuple[str, ...]]
    emails: tuple[str, ...]
    domains: tuple[str, ...]
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
        for prefix in ("opportunity", "person.opportunity"):
            add(f"{prefix}.name", o.name)
            add(f"{prefix}.stage", o.stage)
            for key, value in o.fields.items():
                add(f"{prefix}.fields.{key}", value)
    domains = [c.domain for c in spec.companies] + [c.mail_domain for c in spec.companies]
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


def _variants(value: str) -> st.SearchStrategy[str]:
    """Spellings of a value: case changes (Python's, which are not ASCII-only) and spaces."""
    return st.sampled_from(
        [value, value.upper(), value.lower(), value.swapcase(), value.title(), f"  {value} "]
    )


@st.composite
def _fragment(draw: st.DrawFn, values: Sequence[str]) -> str:
    value = draw(st.sampled_from(values)) if values else ""
    if not value:
        return draw(TEXT)
    start = draw(st.integers(0, len(value) - 1))
    end = draw(st.integers(start + 1, len(value)))
    return draw(_variants(value[start:end]))


def _non_blank(strategy: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # A blank value is invalid (validate: "use 'is empty'"); everything else is fair game.
    return strategy.filter(lambda s: bool(s.strip()))


def _text_value(pool: Pools, field: Field, op: Operator) -> st.SearchStrategy[str]:
    if field.type is FieldType.EMAIL:
        values = pool.emails or ("ann@acme.com",)
        if op.pattern:
            fixed = st.sampled_from(["@gmail.com", "acme", ".co.uk", "ANN@", "%", "_"])
            return _non_blank(_fragment(values) | fixed)
        return st.sampled_from([*values, "nobody@acme.com"]).flatmap(_email_variants)
    if field.type is FieldType.DOMAIN:
        values = pool.domains or ("acme.com",)
        if op.pattern:
            canonical = [normalize_domain(d) for d in values]
            fixed = st.sampled_from([".com", ".co.uk", "acme.com", ".edu", "edu.br", "bücher.de"])
            return _non_blank(_fragment(canonical) | _fragment(values) | fixed)
        return st.sampled_from([*values, "edu.br", "company.co.uk"]).flatmap(_domain_variants)
    values = pool.text.get(field.name.replace("person.opportunity.", "opportunity."), ())
    values = values or pool.text.get(field.name, ())
    if op.pattern:
        return _non_blank(_fragment(values) | TEXT)
    whole = st.sampled_from(values).flatmap(_variants) if values else TEXT
    return _non_blank(whole | TEXT)


def _email_variants(email: str) -> st.SearchStrategy[str]:
    local, domain = email.rsplit("@", 1)
    return st.sampled_from(
        [email, f"{local}@{domain.upper()}", f" {email} ", f"{local.upper()}@{domain}"]
    )


def _domain_variants(domain: str) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [domain, domain.upper(), f"www.{domain}.", f"https://{domain}/path?q=1", f" {domain} "]
    )


def _date_value(pool: Pools) -> st.SearchStrategy[Any]:
    seen = (
        st.sampled_from(pool.dates).flatmap(
            lambda d: st.sampled_from(
                [d, d - timedelta(microseconds=1), d + timedelta(microseconds=1), d.date()]
            )
        )
        if pool.dates
        else DATES
    )
    as_value = seen | DATES | st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1))
    # The same instant in another zone, as a string: validate turns it into naive UTC.
    zoned = st.tuples(seen, st.integers(-12, 14)).map(
        lambda pair: (
            pair[0].replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=pair[1]))).isoformat()
            if isinstance(pair[0], datetime)
            else pair[0].isoformat()
        )
    )
    return as_value | zoned | as_value.map(lambda d: d.isoformat())


def _days_value(pool: Pools) -> st.SearchStrategy[int]:
    near = [max(0, (NOW - d).days + k) for d in pool.dates for k in (-1, 0, 1)]
    seen = st.sampled_from(near) if near else st.integers(0, 400)
    return seen | st.integers(0, 36_500)


def _number_value(pool: Pools) -> st.SearchStrategy[int | float]:
    seen = st.sampled_from(pool.numbers) if pool.numbers else st.just(1000.0)
    return (
        seen
        | seen.map(int)
        | st.integers(-(10**6), 10**6)
        | st.floats(allow_nan=False, allow_infinity=False)
    )


def _scalar(pool: Pools, field: Field, op: Operator) -> st.SearchStrategy[Any]:
    if field.type in (FieldType.TEXT, FieldType.EMAIL, FieldType.DOMAIN):
        return _text_value(pool, field, op)
    if field.type is FieldType.NUMBER:
        return _number_value(pool)
    if field.type is FieldType.BOOLEAN:
        return st.booleans()
    return _date_value(pool)


def _value(pool: Pools, field: Field, op: Operator) -> st.SearchStrategy[Value]:
    if op.arg is Arg.NONE:
        return st.none()
    if op.arg is Arg.DAYS:
        return _days_value(pool)
    if op.arg is Arg.ONE:
        return _scalar(pool, field, op)
    items = st.lists(_scalar(pool, field, op), min_size=1, max_size=4).map(tuple)
    if field.type is FieldType.DOMAIN and not op.pattern:
        # A domain list may also come as one comma-separated string (R18).
        return items | items.map(lambda values: ", ".join(map(str, values)))
    return items


@st.composite
def conditions(draw: st.DrawFn, pool: Pools, level: Level, names: Sequence[str] = ()) -> Condition:
    name = draw(st.sampled_from(list(names) or fields_for(level)))
    field = lookup(name)
    op = draw(st.sampled_from([o for o in OPERATORS.values() if field.type in o.types]))
    return Condition(name, op.name, draw(_value(pool, field, op)))


def _collection_group(pool: Pools, level: Level) -> st.SearchStrategy[Node]:
    """Several conditions on one collection under `all`: they must hold for the same deal."""
    prefix = "opportunity." if level is Level.COMPANY else "person.opportunity."
    names = [n for n in fields_for(level) if n.startswith(prefix)]
    return st.lists(conditions(pool, level, names), min_size=2, max_size=3).map(
        lambda items: All(tuple(items))
    )


def filters(pool: Pools, level: Level, depth: int = 3) -> st.SearchStrategy[Node]:
    """Raw (not yet validated) filters: all / any / not over conditions, nested up to `depth`."""
    leaf = conditions(pool, level) | _collection_group(pool, level)
    if depth == 0:
        return leaf
    inner = filters(pool, level, depth - 1)
    return st.one_of(
        leaf,
        st.lists(inner, min_size=1, max_size=3).map(lambda items: All(tuple(items))),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: AnyOf(tuple(items))),
        inner.map(Not),
    )
