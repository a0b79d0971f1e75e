"""Baseline (ii): the same questions as hand-written SQL text with bound parameters.

The SQL is generated from the stored rule data (the JSON filters), by this module's own
small translator, never through `optout.filters.sql`. It is shaped the way one would
write it by hand: list rules of one kind merged into one set (a JSON array on SQLite,
an array on PostgreSQL, so one bound parameter each), the other rules of a level OR-ed
into one pass over the table, the excluded sets materialized once and used with NOT IN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from optout.normalize import domain_label, free_mail_domains

ACTIVE = "('not_started', 'in_progress')"


@dataclass
class Sql:
    """SQL text under construction and its bound parameters."""

    postgresql: bool
    params: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any) -> str:
        name = f"v{len(self.params)}"
        if isinstance(value, datetime) and not self.postgresql:
            value = f"{value:%Y-%m-%d %H:%M:%S.%f}"  # how SQLAlchemy stores DateTime on SQLite
        self.params[name] = value
        return f":{name}"

    def member(self, column: str, values: list[Any]) -> str:
        """`column` is one of `values`, with one bound parameter however long the list."""
        if self.postgresql:
            return f"{column} = ANY({self.bind(list(values))})"
        return f"{column} IN (SELECT value FROM json_each({self.bind(json.dumps(values))}))"

    def run(self, db: Connection, text: str) -> Any:
        return db.execute(sa.text(text), self.params)


# Rule JSON to a predicate ---------------------------------------------------------------

_PERSON_COLUMNS = {"email", "email_domain", "first_name", "last_name", "title", "status"}
_TEXT = {"first_name", "last_name", "title", "status", "name", "stage"}  # folded with lower()


def _column(field_name: str, sql: Sql) -> str:
    prefix, _, rest = field_name.partition(".")
    if field_name == "person.has_opportunity":  # compared with = true: see _condition
        return (
            "(p.id IN (SELECT oc.person_id FROM opportunity_contacts oc JOIN opportunities oo "
            f"ON oo.id = oc.opportunity_id WHERE oo.is_closed = {sql.bind(False)}))"
        )
    alias = {"person": "p", "company": "c", "opportunity": "o"}[prefix]
    if rest.startswith("fields."):
        key = rest.removeprefix("fields.")
        if sql.postgresql:
            return f"lower(({alias}.fields ->> '{key}') COLLATE \"C\")"
        return f"lower(json_extract({alias}.fields, '$.{key}'))"
    if rest in _TEXT:
        return f'lower({alias}.{rest} COLLATE "C")' if sql.postgresql else f"lower({alias}.{rest})"
    return f"{alias}.{rest}"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(cond: dict[str, Any], sql: Sql, now: datetime) -> str:
    column, op, value = _column(cond["field"], sql), cond["op"], cond.get("value")
    if op == "in":
        return sql.member(column, value)
    if op == "eq":
        return f"{column} = {sql.bind(value)}"
    if op == "gt":
        return f"{column} > {sql.bind(value)}"
    if op == "contains":
        return f"{column} LIKE {sql.bind('%' + _escaped(value) + '%')} ESCAPE '\\'"
    if op == "contains_any":
        parts = [f"{column} LIKE {sql.bind('%' + _escaped(v) + '%')} ESCAPE '\\'" for v in value]
        return "(" + " OR ".join(parts) + ")"
    if op == "ends_with":
        return f"{column} LIKE {sql.bind('%' + _escaped(value))} ESCAPE '\\'"
    if op == "is_personal":
        return sql.member(column, sorted(free_mail_domains()))
    if op == "within_last_days":
        return f"{column} >= {sql.bind(now - timedelta(days=value))}"
    raise NotImplementedError(f"the hand-written baseline does not know {op!r}")


def predicate(node: dict[str, Any], sql: Sql, now: datetime) -> str:
    """SQL for a rule over `p` (person), `c` (company), deals through EXISTS on `o`."""
    if "field" in node:
        if node["field"].startswith("opportunity."):
            return _deal([node], sql, now)
        return _condition(node, sql, now)
    if "not" in node:
        return f"NOT ({predicate(node['not'], sql, now)})"
    key = "all" if "all" in node else "any"
    items = node[key]
    parts: list[str] = []
    if key == "all":
        deals = [i for i in items if "field" in i and i["field"].startswith("opportunity.")]
        items = [i for i in items if i not in deals]
        if deals:
            parts.append(_deal(deals, sql, now))  # one deal must meet every condition
    parts += [predicate(item, sql, now) for item in items]
    return "(" + f" {'AND' if key == 'all' else 'OR'} ".join(parts) + ")"


def _deal(conds: list[dict[str, Any]], sql: Sql, now: datetime) -> str:
    where = " AND ".join(_condition(c, sql, now) for c in conds)
    return f"c.id IN (SELECT o.company_id FROM opportunities o WHERE {where})"


# The eligible set (b) --------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    level: str
    filter: dict[str, Any]


def _is_list(rule: Rule, field_name: str) -> bool:
    return rule.filter.get("field") == field_name and rule.filter.get("op") == "in"


def excluded_sets(rules: list[Rule], sql: Sql, ws: str, now: datetime) -> tuple[str, str]:
    """(SELECT of excluded group ids, SELECT of excluded people ids) for the rules; a rule
    that repeats another is written once."""
    rules = list({json.dumps([r.level, r.filter], sort_keys=True): r for r in rules}.values())
    company = [r for r in rules if r.level == "company"]
    domains = sorted(
        {d for r in company if _is_list(r, "company.domain") for d in r.filter["value"]}
    )
    other = [r for r in company if not _is_list(r, "company.domain")]
    groups = [
        f"SELECT c.group_id FROM companies c WHERE c.workspace_id = {ws} "
        f"AND {sql.member('c.domain', domains)}"
    ]
    if other:
        ors = " OR ".join(predicate(r.filter, sql, now) for r in other)
        groups.append(f"SELECT c.group_id FROM companies c WHERE c.workspace_id = {ws} AND ({ors})")
    people = [r for r in rules if r.level == "people"]
    emails = sorted({e for r in people if _is_list(r, "person.email") for e in r.filter["value"]})
    other = [r for r in people if not _is_list(r, "person.email")]
    persons = [
        f"SELECT p.id FROM people p WHERE p.workspace_id = {ws} AND {sql.member('p.email', emails)}"
    ]
    if other:
        ors = " OR ".join(predicate(r.filter, sql, now) for r in other)
        persons.append(
            "SELECT p.id FROM people p LEFT JOIN companies c ON c.id = p.company_id "
            f"WHERE p.workspace_id = {ws} AND ({ors})"
        )
    return " UNION ".join(groups), " UNION ".join(persons)


@dataclass(frozen=True)
class Query:
    text: str
    sql: Sql


def eligible_sql(db: Connection, *, workspace_id: int, sequence_id: int, now: datetime) -> Query:
    """The people the sequence may enroll now (no audience), as one SELECT of ids."""
    sql = Sql(postgresql=db.dialect.name == "postgresql")
    ruleset = (
        db.execute(
            sa.text(
                "SELECT r.exclusions_enabled, r.reenroll_cooldown_days, r.max_active_per_company "
                "FROM sequences s JOIN rulesets r ON r.id = s.ruleset_id WHERE s.id = :id"
            ),
            {"id": sequence_id},
        )
        .mappings()
        .one()
    )
    ws, seq = sql.bind(workspace_id), sql.bind(sequence_id)
    where = [
        f"p.workspace_id = {ws}",
        "NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.workspace_id = p.workspace_id "
        "AND s.email = p.email AND s.kind IN ('opt_out', 'bounce'))",
    ]
    if ruleset["exclusions_enabled"]:
        rows = db.execute(
            sa.text("SELECT level, filter FROM exclusions WHERE workspace_id = :ws AND enabled"),
            {"ws": workspace_id},
        )
        rules = [Rule(r.level, _json(r.filter)) for r in rows]
        groups, persons = excluded_sets(rules, sql, ws, now)
        where.append(f"(c.group_id IS NULL OR c.group_id NOT IN ({groups}))")
        where.append(f"p.id NOT IN ({persons})")
    ended = ""
    if ruleset["reenroll_cooldown_days"] > 0:
        cutoff = now - timedelta(days=ruleset["reenroll_cooldown_days"])
        ended = f" OR (e.ended_at IS NOT NULL AND e.ended_at > {sql.bind(cutoff)})"
    where.append(
        "NOT EXISTS (SELECT 1 FROM enrollments e WHERE e.person_id = p.id "
        f"AND e.sequence_id = {seq} AND (e.status IN {ACTIVE}{ended}))"
    )
    if ruleset["max_active_per_company"] is not None:
        where.append(
            "(p.company_id IS NULL OR p.company_id NOT IN (SELECT p2.company_id FROM enrollments e "
            f"JOIN people p2 ON p2.id = e.person_id WHERE e.sequence_id = {seq} "
            f"AND e.status IN {ACTIVE} AND p2.company_id IS NOT NULL GROUP BY p2.company_id "
            f"HAVING count(*) >= {sql.bind(ruleset['max_active_per_company'])}))"
        )
    text = "SELECT p.id FROM people p LEFT JOIN companies c ON c.id = p.company_id WHERE "
    return Query(text + " AND ".join(where), sql)


def _json(value: Any) -> dict[str, Any]:
    return json.loads(value) if isinstance(value, str) else dict(value)


def eligible_count(db: Connection, query: Query, only: list[int] | None = None) -> int:
    params = dict(query.sql.params)
    text = query.text
    if only is not None:
        text += " AND " + _ids("p.id", only, query.sql.postgresql, params)
    return int(db.execute(sa.text(f"SELECT count(*) FROM ({text}) eligible"), params).scalar_one())


def _ids(column: str, ids: list[int], postgresql: bool, params: dict[str, Any]) -> str:
    params["only_ids"] = ids if postgresql else json.dumps(ids)
    if postgresql:
        return f"{column} = ANY(:only_ids)"
    return f"{column} IN (SELECT value FROM json_each(:only_ids))"


# The impact preview (a) ------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewCounts:
    people_total: int
    people_matched: int
    companies_matched: int
    enrollments_removed: int
    emails_cancelled: int
    sample: tuple[str, ...]
    near_misses: tuple[tuple[str, str], ...]


def preview(db: Connection, *, workspace_id: int, domains: list[str]) -> PreviewCounts:
    """The preview of `company.domain in (domains)` with unenroll-on-save, by hand."""
    sql = Sql(postgresql=db.dialect.name == "postgresql")
    ws = sql.bind(workspace_id)
    listed = sql.member("c.domain", domains)
    reached = (
        f"WITH g AS (SELECT DISTINCT c.group_id FROM companies c WHERE c.workspace_id = {ws} "
        f"AND c.group_id IS NOT NULL AND {listed}), "
        "reached AS (SELECT p.id FROM companies c JOIN people p ON p.company_id = c.id "
        f"WHERE c.workspace_id = {ws} AND p.workspace_id = {ws} "
        "AND c.group_id IN (SELECT group_id FROM g)), "
        "removed AS (SELECT e.id FROM enrollments e JOIN sequences s ON s.id = e.sequence_id "
        f"JOIN rulesets r ON r.id = s.ruleset_id WHERE e.workspace_id = {ws} "
        f"AND e.status IN {ACTIVE} AND r.exclusions_enabled = {sql.bind(True)} "
        "AND e.person_id IN (SELECT id FROM reached)) "
    )
    counts = sql.run(
        db,
        reached + f"SELECT (SELECT count(*) FROM people WHERE workspace_id = {ws}), "
        "(SELECT count(*) FROM reached), "
        f"(SELECT count(*) FROM companies c WHERE c.workspace_id = {ws} "
        "AND c.group_id IN (SELECT group_id FROM g)), "
        "(SELECT count(*) FROM removed), "
        "(SELECT count(*) FROM outbound_emails o WHERE o.status = 'queued' "
        "AND o.enrollment_id IN (SELECT id FROM removed))",
    ).one()
    sample = sql.run(
        db,
        reached + "SELECT p.email FROM people p WHERE p.id IN (SELECT id FROM reached) "
        "ORDER BY p.id LIMIT 10",
    ).scalars()
    labels = sorted({domain_label(d) for d in domains})
    by_label: dict[str, str] = {}
    for domain in sorted(domains):
        by_label.setdefault(domain_label(domain), domain)
    near = sql.run(
        db,
        f"SELECT c.domain, c.domain_label FROM companies c WHERE c.workspace_id = {ws} "
        f"AND {sql.member('c.domain_label', labels)} AND NOT ({listed}) "
        "ORDER BY c.domain LIMIT 50",
    )
    return PreviewCounts(
        *counts,
        sample=tuple(sample),
        near_misses=tuple((by_label[label], domain) for domain, label in near),
    )
