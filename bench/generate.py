"""The generated workspace: companies, people, deals, suppressions, sequences, enrollments.

Rows come out as tuples in the column order of `COLUMNS`, typed as Python values
(datetimes, booleans, dicts for JSON); `bench.load` writes them in bulk. Ids are
assigned here, so relations need no read-back. Emails and domains are produced in
canonical form directly (lowercase ASCII); `check_canonical` runs a sample through
`optout.normalize` to prove it. Deterministic for a given seed.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bench import shapes
from optout.normalize import domain_label, free_mail_domains, normalize_domain, normalize_email

NOW = datetime(2026, 11, 2, 9, 0, 0)
WORKSPACE_ID = 1
SEQUENCE_ID = 1  # the sequence the benchmark asks about
SEQUENCE_NAME = "Outbound Q4"
FREE_MAIL_SHARE = 0.08
NO_COMPANY_SHARE = 0.05
DUPLICATE_SHARE = 0.005  # CRM duplicates (Lead and Contact with one address)
SUBSIDIARY_SHARE = 0.03
VARIANT_SHARE = 0.02  # companies that are a near-miss variant of another (acme.co.uk)
OPPORTUNITIES_PER_PERSON = 0.03
OPT_OUT_SHARE = 0.025
BOUNCE_SHARE = 0.012


def _cols(text: str) -> tuple[str, ...]:
    return tuple(text.split())


COLUMNS: dict[str, tuple[str, ...]] = {
    "workspaces": _cols(
        "id slug name mass_exclusion_share mass_unenroll_limit "
        "auto_opt_out_on_unsubscribe_reply created_at"
    ),
    "companies": _cols(
        "id workspace_id domain domain_label name fields parent_id group_id last_replied_at "
        "last_activity_at last_activity_any_at crm_id created_at updated_at"
    ),
    "people": _cols(
        "id workspace_id email email_domain first_name last_name title status company_id "
        "fields last_activity_at last_activity_any_at last_replied_at last_emailed_at crm_id "
        "created_at updated_at"
    ),
    "opportunities": _cols(
        "id workspace_id company_id name stage amount is_closed is_won close_date fields "
        "crm_id created_at updated_at"
    ),
    "opportunity_contacts": ("opportunity_id", "person_id", "role"),
    "suppressions": _cols("id workspace_id email kind since actor channel reason"),
    "rulesets": _cols(
        "id workspace_id name exclusions_enabled reenroll_cooldown_days "
        "max_active_per_company created_at"
    ),
    "sequences": _cols(
        "id workspace_id name ruleset_id audience_id status from_address reply_to created_at"
    ),
    "sequence_steps": _cols(
        "id sequence_id position kind wait_seconds subject body_text body_html"
    ),
    "enrollments": _cols(
        "id workspace_id sequence_id person_id status source audience_id next_position "
        "next_run_at enrolled_at enrolled_by ended_at end_reason"
    ),
    "outbound_emails": _cols(
        "id workspace_id enrollment_id step_id person_id status due_at lease_until attempts "
        "last_error sent_at message_id cancel_reason"
    ),
    "exclusions": _cols(
        "id workspace_id name level filter enabled exclude_from_sequences "
        "unenroll_existing_on_save created_by created_at updated_at"
    ),
}
Row = tuple[Any, ...]
T = TypeVar("T")


@dataclass(frozen=True)
class Params:
    people: int = 1_000_000
    companies: int = 100_000
    exclusions: int = 1000
    seed: int = 20261102

    def key(self) -> str:
        return f"p{self.people}-c{self.companies}-x{self.exclusions}-s{self.seed}"


@dataclass
class World:
    """What the rules and the measurements need to know about the generated data."""

    domains: list[str] = field(default_factory=list)  # index: company id - 1
    labels: set[str] = field(default_factory=set)
    emails: list[str] = field(default_factory=list)  # index: person id - 1
    tables: dict[str, list[Row]] = field(default_factory=dict)  # every table but people


_CUMULATIVE: dict[int, tuple[list[Any], list[float]]] = {}


def _weighted(rng: random.Random, pairs: Sequence[tuple[T, int]]) -> T:
    found = _CUMULATIVE.get(id(pairs))
    if found is None:
        found = [p[0] for p in pairs], list(itertools.accumulate(float(p[1]) for p in pairs))
        _CUMULATIVE[id(pairs)] = found
    values, cum = found
    return values[bisect.bisect(cum, rng.random() * cum[-1])]  # type: ignore[no-any-return]


def _when(rng: random.Random, days: int) -> datetime:
    return NOW - timedelta(seconds=rng.randrange(days * 86_400))


class Generator:
    def __init__(self, params: Params) -> None:
        self.params = params
        self.rng = random.Random(params.seed)
        self.world = World()
        self.tables = self.world.tables
        self.person_company: list[int | None] = []  # index: person id - 1

    # Companies ---------------------------------------------------------------------------

    def _label(self) -> str:
        rng = self.rng
        head, tail = rng.choice(shapes.NAME_HEADS), rng.choice(shapes.NAME_TAILS)
        form = rng.random()
        if form < 0.35:
            return head + tail
        if form < 0.5:
            return f"{head}-{tail}"
        if form < 0.75:
            return head + tail + rng.choice(("hq", "app", "group", "labs", "global", "tech"))
        if form < 0.9:
            return head + rng.choice(shapes.NAME_HEADS) + tail
        return f"{head}{tail}{rng.randrange(2, 400)}"

    def companies(self) -> None:
        rng, n = self.rng, self.params.companies
        tlds = shapes.TLDS
        taken: set[str] = set()
        rows: list[Row] = []
        variant_of: dict[int, int] = {}
        for company_id in range(1, n + 1):
            base = None
            if company_id > 100 and rng.random() < VARIANT_SHARE:
                base = rng.randrange(1, company_id)
                label = domain_label(self.world.domains[base - 1])
                options = [f"{label}.{t}" for t in shapes.VARIANT_TLDS]
                domain = next((d for d in options if d not in taken), "")
            else:
                domain = ""
            while not domain or domain in taken:
                domain = f"{self._label()}.{_weighted(rng, tlds)}"
            if base is not None and domain.startswith(label + "."):
                variant_of[company_id] = base
            taken.add(domain)
            self.world.domains.append(domain)
            label = domain_label(domain)
            self.world.labels.add(label)
            name = label.replace("-", " ").title()
            if rng.random() < 0.3:
                name = f"{name} {rng.choice(shapes.NAME_SUFFIXES)}"
            fields = {
                "industry": _weighted(rng, shapes.INDUSTRIES),
                "tier": _weighted(rng, shapes.TIERS),
                "region": rng.choice(shapes.REGIONS),
                "employees": str(int(rng.paretovariate(1.1) * 10)),
            }
            if not fields["tier"]:
                del fields["tier"]
            replied = _when(rng, 365) if rng.random() < 0.06 else None
            activity = _when(rng, 365) if rng.random() < 0.35 else replied
            created = _when(rng, 1100)
            rows.append(
                (company_id, WORKSPACE_ID, domain, label, name, fields, None, company_id,
                 replied, activity, activity, f"001{company_id:012d}", created, created)
            )  # fmt: skip
        self._link(rows, variant_of)
        self.tables["companies"] = rows

    def _link(self, rows: list[Row], variant_of: dict[int, int]) -> None:
        """Subsidiaries: most near-miss variants belong to their base company (a regional
        site), others are acquisitions, a few parents hold many (R12). One level deep."""
        rng, n = self.rng, len(rows)
        parent: dict[int, int] = {}
        for child, base in variant_of.items():
            if rng.random() < 0.6:
                parent[child] = base
        conglomerates = rng.sample(range(1, n + 1), max(1, n // 5000))
        target = int(n * SUBSIDIARY_SHARE)
        while len(parent) < target:
            child = rng.randrange(1, n + 1)
            owner = rng.choice(conglomerates) if rng.random() < 0.3 else rng.randrange(1, n + 1)
            if child != owner and child not in parent:
                parent[child] = owner
        parents = set(parent.values())
        for child, owner in parent.items():
            if child in parents or owner in parent:
                continue  # keep groups one level deep, as the link service would flatten them
            row = list(rows[child - 1])
            row[6], row[7] = owner, owner
            rows[child - 1] = tuple(row)

    # People ------------------------------------------------------------------------------

    def _title(self) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            title = _weighted(rng, shapes.SPECIAL_TITLES)
        else:
            title = _weighted(rng, shapes.SENIORITIES).format(f=_weighted(rng, shapes.FUNCTIONS))
        roll = rng.random()
        if roll < 0.02:
            return title.upper()
        if roll < 0.04:
            return title.lower()
        return title

    def people(self, chunk: int = 50_000) -> Iterator[list[Row]]:
        """People in chunks: each company's headcount follows a long tail."""
        rng, params = self.rng, self.params
        weights = [min(rng.paretovariate(1.3), 400.0) for _ in range(params.companies)]
        cum = list(itertools.accumulate(weights))
        free = sorted(free_mail_domains())
        popular = ["gmail.com"] * 40 + ["yahoo.com"] * 12 + ["hotmail.com"] * 10
        popular += ["outlook.com"] * 8 + ["icloud.com"] * 5 + free
        seen: set[str] = set()
        domains = self.world.domains
        rows: list[Row] = []
        for person_id in range(1, params.people + 1):
            first, last = rng.choice(shapes.FIRST_NAMES), rng.choice(shapes.LAST_NAMES)
            duplicate = person_id > 1000 and rng.random() < DUPLICATE_SHARE
            company_id: int | None = None
            if rng.random() >= NO_COMPANY_SHARE:
                company_id = rng.choices(range(1, params.companies + 1), cum_weights=cum)[0]
            if duplicate:
                email = self.world.emails[rng.randrange(len(self.world.emails))]
            else:
                if rng.random() < FREE_MAIL_SHARE or (company_id is None and rng.random() < 0.6):
                    domain = rng.choice(popular)
                elif company_id is None:
                    domain = f"{self._label()}.com"
                else:
                    domain = domains[company_id - 1]
                email = self._address(first, last, domain, seen)
            self.world.emails.append(email)
            self.person_company.append(company_id)
            rows.append(self._person(person_id, email, first, last, company_id))
            if len(rows) == chunk:
                yield rows
                rows = []
        if rows:
            yield rows

    def _address(self, first: str, last: str, domain: str, seen: set[str]) -> str:
        rng = self.rng
        local = rng.choice((f"{first}.{last}", f"{first[0]}{last}", first, f"{first}_{last}"))
        email = f"{local}@{domain}"
        while email in seen:
            email = f"{local}{rng.randrange(1, 10_000)}@{domain}"
        seen.add(email)
        return email

    def _person(
        self, person_id: int, email: str, first: str, last: str, company_id: int | None
    ) -> Row:
        rng = self.rng
        fields: dict[str, str] = {}
        if rng.random() < 0.3:
            fields["persona"] = rng.choice(shapes.PERSONAS)
        if rng.random() < 0.5:
            fields["lead_source"] = rng.choice(
                ("Webinar", "Trade Show", "Inbound", "Outbound", "Partner", "Purchased List")
            )
        activity = _when(rng, 400) if rng.random() < 0.25 else None
        replied = _when(rng, 365) if rng.random() < 0.04 else None
        emailed = _when(rng, 200) if rng.random() < 0.15 else None
        any_activity = max((d for d in (activity, emailed) if d), default=None)
        created = _when(rng, 1100)
        return (
            person_id, WORKSPACE_ID, email, email.rsplit("@", 1)[1], first.title(),
            last.title(), self._title(), _weighted(rng, shapes.STATUSES), company_id, fields,
            activity, any_activity, replied, emailed, f"003{person_id:012d}", created, created,
        )  # fmt: skip

    # Deals, suppressions, sequences ------------------------------------------------------

    def opportunities(self) -> None:
        """Deals on companies, bigger companies more likely; contact roles on most."""
        rng = self.rng
        staff: dict[int, list[int]] = {}
        for person_id, company_id in enumerate(self.person_company, start=1):
            if company_id is not None:
                staff.setdefault(company_id, []).append(person_id)
        with_people = sorted(staff)
        cum = list(itertools.accumulate(len(staff[c]) ** 0.5 for c in with_people))
        total = int(self.params.people * OPPORTUNITIES_PER_PERSON)
        opps: list[Row] = []
        roles: list[Row] = []
        opp_id = 0
        while opp_id < total:
            company_id = rng.choices(with_people, cum_weights=cum)[0]
            for _ in range(min(rng.choice((1, 1, 1, 2, 2, 3, 4)), total - opp_id)):
                opp_id += 1
                stage, _, closed = _weighted_stage(rng)
                created = _when(rng, 900)
                close = created + timedelta(days=rng.randrange(20, 200))
                amount = round(rng.lognormvariate(10, 1.1), 2)
                kind = rng.choice(("New Business", "Renewal", "Upsell", "Expansion"))
                opps.append(
                    (opp_id, WORKSPACE_ID, company_id, f"{kind} {created:%Y-%m}", stage,
                     amount, closed, stage == "Closed Won", close, {"type": kind},
                     f"006{opp_id:012d}", created, created)
                )  # fmt: skip
                people = staff[company_id]
                for person_id in rng.sample(people, min(len(people), rng.choice((0, 1, 2, 3)))):
                    roles.append((opp_id, person_id, rng.choice(shapes.CONTACT_ROLES)))
        self.tables["opportunities"] = opps
        self.tables["opportunity_contacts"] = roles

    def suppressions(self) -> None:
        rng = self.rng
        emails = sorted(set(self.world.emails))
        rows: list[Row] = []
        channels = ("unsubscribe_link", "unsubscribe_link", "reply", "crm", "manual", "import")
        for kind, share in (("opt_out", OPT_OUT_SHARE), ("bounce", BOUNCE_SHARE)):
            chosen = rng.sample(emails, int(len(emails) * share))
            # Addresses no person has any longer (deleted in the CRM): still suppressed (R1).
            chosen += [f"gone{i}.{kind}@{rng.choice(self.world.domains)}" for i in range(200)]
            for email in chosen:
                channel = "bounce" if kind == "bounce" else rng.choice(channels)
                rows.append(
                    (len(rows) + 1, WORKSPACE_ID, email, kind, _when(rng, 1000),
                     "crm-sync" if channel == "crm" else "recipient", channel, "")
                )  # fmt: skip
        self.tables["suppressions"] = rows

    def sequences(self) -> None:
        """Four sequences; the first is the one measured. Enrollments in all of them:
        active ones with a queued email, ended ones (for the cooldown)."""
        rng, n = self.rng, self.params.people
        self.tables["workspaces"] = [(WORKSPACE_ID, "bench", "Bench Inc", 0.2, 1000, True, NOW)]
        self.tables["rulesets"] = [
            (1, WORKSPACE_ID, "Outbound default", True, 14, 3, NOW),
            (2, WORKSPACE_ID, "Transactional", False, 0, None, NOW),
        ]
        names = (SEQUENCE_NAME, "Inbound follow-up", "Event invite", "Customer onboarding")
        self.tables["sequences"] = [
            (i, WORKSPACE_ID, name, 2 if i == 4 else 1, None, "active", "sales@bench.example",
             "", NOW)
            for i, name in enumerate(names, start=1)
        ]  # fmt: skip
        steps: list[Row] = []
        for sequence_id in range(1, 5):
            for position, kind in enumerate(("email", "wait", "email")):
                wait = 3 * 86_400 if kind == "wait" else 0
                subject = "Hello {{first_name}}" if kind == "email" else ""
                body = "A short note." if kind == "email" else ""
                steps.append((len(steps) + 1, sequence_id, position, kind, wait, subject, body, ""))
        self.tables["sequence_steps"] = steps
        enrollments: list[Row] = []
        emails: list[Row] = []
        for sequence_id, share in ((1, 0.03), (2, 0.01), (3, 0.008), (4, 0.004)):
            first_step = (sequence_id - 1) * 3 + 1
            for person_id in rng.sample(range(1, n + 1), int(n * share)):
                enrolled = _when(rng, 60)
                roll = rng.random()
                status = (
                    "in_progress" if roll < 0.55 else "not_started" if roll < 0.65
                    else "finished" if roll < 0.8 else "unenrolled" if roll < 0.92 else "replied"
                )  # fmt: skip
                active = status in ("in_progress", "not_started")
                ended = None if active else min(NOW, enrolled + timedelta(days=rng.randrange(40)))
                enrollment_id = len(enrollments) + 1
                enrollments.append(
                    (enrollment_id, WORKSPACE_ID, sequence_id, person_id, status, "manual",
                     None, 2 if status == "in_progress" else 0, NOW if active else None,
                     enrolled, "rep@bench.example", ended, None if active else status)
                )  # fmt: skip
                if active:
                    step = first_step + (2 if status == "in_progress" else 0)
                    emails.append(
                        (len(emails) + 1, WORKSPACE_ID, enrollment_id, step, person_id,
                         "queued", NOW + timedelta(hours=rng.randrange(1, 72)), None, 0, None,
                         None, None, None)
                    )  # fmt: skip
        self.tables["enrollments"] = enrollments
        self.tables["outbound_emails"] = emails


def _weighted_stage(rng: random.Random) -> tuple[str, int, bool]:
    return rng.choices(shapes.STAGES, weights=[s[1] for s in shapes.STAGES])[0]


def check_canonical(world: World, rng: random.Random, sample: int = 2000) -> None:
    """Generated emails and domains are what `optout.normalize` makes of them."""
    for domain in rng.sample(world.domains, min(sample, len(world.domains))):
        assert normalize_domain(domain) == domain, domain
        assert domain_label(domain) in world.labels, domain
    for email in rng.sample(world.emails, min(sample, len(world.emails))):
        address = normalize_email(email)
        assert address.address == email, email
        assert address.domain == email.rsplit("@", 1)[1], email
