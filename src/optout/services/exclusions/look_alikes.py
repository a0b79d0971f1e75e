"""Look-alike domains in a workspace's data: companies' and email domains that read like
a domain an exclusion lists, but are another domain, so the exclusion does not cover
them (`acme.com` spelled with a Cyrillic a, U+0430, when `acme.com` is listed). The comparison is
`filters.confusables`; this module only asks the database for the candidates."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.db.skeletons import skeleton_sql
from optout.filters.ast import Node
from optout.filters.confusables import (
    LookAlike,
    domain_skeleton,
    listed_by_field,
    listed_domains,
    look_alikes,
    readable,
)
from optout.filters.memo import by_node
from optout.filters.sqlfunc import in_list
from optout.services import fresh_rules

LIMIT = 50


def _candidates(
    db: Connection, *, workspace_id: int, column: sa.Column[str], listed: Iterable[str]
) -> set[str]:
    """The workspace's domains in `column` that could look like a listed one, each an
    index lookup: the plain ASCII ones whose skeleton is the skeleton of a listed domain
    (`optout.db.skeletons`, indexed), and every IDN (`xn--`) one, whose skeleton only
    Python knows. `look_alikes` decides."""
    names = sorted(set(listed))
    table = column.table
    skeleton = sa.literal_column(skeleton_sql(column.name), sa.String())
    wanted = sorted({domain_skeleton(d) for d in names})
    found: set[str] = set()
    for matching in (in_list(skeleton, wanted), column.contains("xn--")):
        found.update(
            db.scalars(
                sa.select(column)
                .distinct()
                .where(
                    table.c.workspace_id == workspace_id,
                    matching,
                    sa.not_(in_list(column, names)),
                )
            )
        )
    return found


# Where the domains a condition compares live: a rule on company domains misses
# look-alike company domains, one on email domains look-alike email domains.
_COLUMNS = {"company.domain": t.companies.c.domain, "person.email_domain": t.people.c.email_domain}


def in_workspace(db: Connection, *, workspace_id: int, filter: Node | None) -> list[LookAlike]:
    """Domains in the workspace that look like a domain `filter` lists (at most LIMIT),
    each looked for where the condition that lists it compares."""
    found: set[LookAlike] = set()
    for name, listed in listed_by_field(filter).items():
        present = _candidates(db, workspace_id=workspace_id, column=_COLUMNS[name], listed=listed)
        found.update(look_alikes(listed, present))
    return sorted(found)[:LIMIT]


def person_warnings(db: Connection, *, workspace_id: int, person_id: int) -> list[str]:
    """A line for each enabled exclusion that lists a domain the person's email or
    company domain only looks like: the exclusion does not apply to them."""
    p, c = t.people, t.companies
    row = db.execute(
        sa.select(p.c.email, p.c.email_domain, c.c.domain)
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.workspace_id == workspace_id, p.c.id == person_id)
    ).first()
    if row is None:
        return []
    email, email_domain, company_domain = row
    theirs = {d for d in (email_domain, company_domain) if d}
    lines = []
    skeletons = {domain_skeleton(d) for d in theirs}
    for spec in fresh_rules.all_specs(db, workspace_id=workspace_id):
        if not spec.enabled or not skeletons & _listed_skeletons(spec.filter):
            continue
        for found in look_alikes(listed_domains(spec.filter), theirs):
            shown = readable(found.present)
            spelled = f"{shown} ({found.present})" if shown != found.present else shown
            whose = "email domain" if found.present == email_domain else "company domain"
            lines.append(
                f"Look-alike domain: the {whose} of {email}, {spelled}, looks like "
                f"{found.listed}, which exclusion '{spec.name}' lists, but it is a different "
                "domain, so that exclusion does not cover it."
            )
    return lines


@by_node
def _listed_skeletons(node: Node) -> frozenset[str]:
    """Skeletons of the domains a filter lists."""
    return frozenset(domain_skeleton(d) for d in listed_domains(node))
