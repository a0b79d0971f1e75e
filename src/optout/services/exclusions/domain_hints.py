"""People a company rule was probably meant for but does not reach.

A company-level rule on `company.domain` reaches people through their company. A
person whose email is at a listed domain but who belongs to no company, or to another
company, is not reached; the preview and explain say so, with a sample, so that a
rule which "matches nobody" is never silent about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level
from optout.filters.ast import Condition, Node, Not

SAMPLE_SIZE = 10
COMPANY_DOMAIN = "company.domain"


@dataclass(frozen=True)
class UnreachedAtDomains:
    """People with an email at a listed domain whom the rule does not reach."""

    domains: list[str]  # the domains the rule lists
    count: int = 0
    without_company: int = 0
    at_another_company: int = 0
    sample: list[dict[str, Any]] = field(default_factory=list)  # email, company (or None)

    def message(self) -> str:
        parts = []
        if self.without_company:
            parts.append(f"{self.without_company} belong to no company")
        if self.at_another_company:
            parts.append(f"{self.at_another_company} to another company")
        listed = ", ".join(self.domains)
        return (
            f"{self.count} people have an email at {listed} but are not reached ("
            + " and ".join(parts)
            + "): link them to the company, or add a people-level rule on "
            "person.email_domain"
        )


def listed_domains(exclusion: ExclusionSpec) -> list[str]:
    """The domains a company-level rule names with `company.domain =` or `in`."""
    if exclusion.level is not Level.COMPANY:
        return []
    listed: set[str] = set()
    for cond in _positive_conditions(exclusion.filter):
        if cond.field == COMPANY_DOMAIN and cond.op in ("eq", "in"):
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            listed.update(str(v) for v in values)
    return sorted(listed)


def _positive_conditions(node: Node) -> list[Condition]:
    """The conditions not under a NOT: a domain the rule names to leave out is no hint."""
    if isinstance(node, Condition):
        return [node]
    if isinstance(node, Not):
        return []
    return [c for item in node.items for c in _positive_conditions(item)]


def unreached_at_domains(
    db: Connection, *, workspace_id: int, exclusion: ExclusionSpec, reached: sa.Select[Any]
) -> UnreachedAtDomains | None:
    """People at a listed email domain, with no company or another company's, whom
    `reached` (the rule's people) leaves out; None when there are none."""
    domains = listed_domains(exclusion)
    if not domains:
        return None
    p, c = t.people, t.companies
    unreached = sa.and_(
        p.c.workspace_id == workspace_id,
        p.c.email_domain.in_(domains),
        sa.or_(p.c.company_id.is_(None), c.c.domain.is_distinct_from(p.c.email_domain)),
        p.c.id.not_in(reached),
    )
    joined = p.outerjoin(c, c.c.id == p.c.company_id)
    without, other = db.execute(
        sa.select(
            sa.func.count().filter(p.c.company_id.is_(None)),
            sa.func.count().filter(p.c.company_id.is_not(None)),
        )
        .select_from(joined)
        .where(unreached)
    ).one()
    if not (without or other):
        return None
    rows = db.execute(
        sa.select(p.c.email, c.c.domain.label("company"))
        .select_from(joined)
        .where(unreached)
        .order_by(p.c.id)
        .limit(SAMPLE_SIZE)
    ).mappings()
    return UnreachedAtDomains(
        domains=domains,
        count=int(without) + int(other),
        without_company=int(without),
        at_another_company=int(other),
        sample=[dict(r) for r in rows],
    )


def explain_hints(
    exclusions: Sequence[ExclusionSpec], *, email_domain: str, company_domain: str | None
) -> list[str]:
    """For explain: enabled company rules that list the person's email domain but do not
    reach them, because they belong to no company or to another company."""
    if company_domain == email_domain:
        return []
    where = f"belongs to {company_domain}" if company_domain else "belongs to no company"
    return [
        f"{rule.name} lists {email_domain}, the domain of this email, but the person {where}"
        for rule in exclusions
        if rule.enabled and email_domain in listed_domains(rule)
    ]
