"""The SQL form and the Python form of the eligibility checks agree (R16, DESIGN).

`optout.eligibility.sql.eligible_people` selects everyone a situation allows in one query;
`decide` answers for one person with evidence. On random worlds (exclusions at both
levels with random toggles, rulesets, audiences with personas and switch-offs, opt-outs,
bounces, spam complaints, enrollment histories, linked companies) both give the same
people, check by check and overall, for enrollment and for sending. Then one hand-built
case per check.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility import Purpose, Status, decide
from optout.eligibility.checks import SqlEnv
from optout.eligibility.precedence import PRECEDENCE
from optout.eligibility.sql import eligible_people
from optout.errors import Conflict
from optout.filters import Level, Node, to_text
from optout.services.directory import companies, people
from optout.services.eligibility import facts, situation
from optout.services.enrollments import enrolling
from optout.services.sequences import audiences
from optout.services.suppression import optouts
from tests.factories import World
from tests.random_worlds import NOW, STEPS, TITLES, WorldSpec, build, filters, pools, worlds

ACTOR = "test@optout"


@dataclass(frozen=True)
class Agreed:
    """What both forms said: who is allowed, and whom each check blocks."""

    allowed: set[int]
    blocked: dict[str, set[int]]


def agreed(
    db: Connection,
    *,
    workspace_id: int,
    sequence_id: int,
    purpose: Purpose,
    now: datetime,
    audience_id: int | None = None,
) -> Agreed:
    """Ask SQL and `decide` about every person of the workspace; fail where they differ."""
    where = situation(
        db,
        workspace_id=workspace_id,
        sequence_id=sequence_id,
        purpose=purpose,
        now=now,
        audience_id=audience_id,
    )
    p, c = t.people, t.companies
    everyone = list(db.scalars(sa.select(p.c.id).where(p.c.workspace_id == workspace_id)))
    found = facts(db, workspace_id=workspace_id, person_ids=everyone, sequence_id=sequence_id)
    env = SqlEnv(person=p, company=c)
    checks = [rule.check for rule in PRECEDENCE if purpose in rule.purposes]
    predicates = {
        check.name: predicate
        for check in checks
        if (predicate := check.blocks_sql(env, where)) is not None
    }
    rows = db.execute(
        sa.select(p.c.id, *(pred.label(name) for name, pred in predicates.items()))
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.workspace_id == workspace_id)
    ).mappings()
    by_sql: dict[str, set[int]] = {check.name: set() for check in checks}
    for row in rows:
        for name in predicates:
            if row[name]:
                by_sql[name].add(row["id"])
    for check in checks:
        sql = by_sql[check.name]
        py = {
            pid
            for pid, f in found.items()
            if any(x.status is Status.BLOCK for x in check.evaluate(f, where))
        }
        assert sql == py, f"{check.name} ({purpose}): only SQL {sql - py}, only Python {py - sql}"
    decisions = {pid: decide(f, where) for pid, f in found.items()}
    allowed = set(db.scalars(eligible_people(where)))
    decided = {pid for pid, d in decisions.items() if d.allowed}
    assert allowed == decided, (
        f"{purpose}: only SQL {allowed - decided}, only decide {decided - allowed}: "
        + "; ".join(
            f"{pid}: {[o.summary for o in decisions[pid].reasons]}" for pid in allowed ^ decided
        )
    )
    return Agreed(allowed, by_sql)


# The property ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleDraw:
    level: Level
    filter: Node
    enabled: bool
    exclude_from_sequences: bool
    unenroll_existing_on_save: bool


@dataclass(frozen=True)
class AudienceDraw:
    filter: Node | None
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    switched_off: tuple[int, ...]  # rule indexes; enforced ones cannot be switched off


@dataclass(frozen=True)
class Action:
    days_ago: int
    kind: str  # enroll | unenroll
    other_sequence: bool
    people: tuple[int, ...]
    from_audience: bool


@dataclass(frozen=True)
class Scenario:
    world: WorldSpec
    exclusions_enabled: bool
    cooldown_days: int
    cap: int | None
    audience: AudienceDraw | None
    history: tuple[Action, ...]  # before the exclusions are saved
    rules: tuple[RuleDraw, ...]
    suppressions: tuple[tuple[str, int, int], ...]  # (kind, person index, hours ago)
    asked_after_days: int


MOSTLY = st.sampled_from([True, True, True, False])
KEYWORDS = sorted({word for title in TITLES for word in title.split()})
KEYWORD = st.sampled_from(
    [
        spelling
        for word in KEYWORDS
        for spelling in dict.fromkeys((word, word.upper(), word.lower()))
    ]
) | st.text(alphabet="abcXYZéÉßİ%_ ", min_size=1, max_size=5).filter(str.strip)
COOLDOWN = st.sampled_from([0, 1, 7, 30]) | st.integers(0, 40)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    spec = draw(worlds(max_companies=4, max_people=6, max_deals=3))
    pool = pools(spec)
    person = st.integers(0, len(spec.people) - 1)
    rules = []
    for _ in range(draw(st.integers(0, 4))):
        level = draw(st.sampled_from(list(Level)))
        rules.append(
            RuleDraw(
                level=level,
                filter=draw(filters(pool, level, depth=2)),
                enabled=draw(MOSTLY),
                exclude_from_sequences=draw(st.booleans()),
                unenroll_existing_on_save=draw(st.booleans()),
            )
        )
    audience = None
    if draw(st.booleans()):
        audience = AudienceDraw(
            filter=draw(filters(pool, Level.PEOPLE, depth=2)) if draw(st.booleans()) else None,
            include=tuple(draw(st.lists(KEYWORD, max_size=2))),
            exclude=tuple(draw(st.lists(KEYWORD, max_size=2))),
            switched_off=tuple(draw(st.lists(st.integers(0, 3), max_size=2))),
        )
    action = st.builds(
        Action,
        days_ago=st.integers(1, 40),
        kind=st.sampled_from(["enroll", "enroll", "unenroll"]),
        other_sequence=st.sampled_from([False, False, True]),
        people=st.lists(person, min_size=1, max_size=3, unique=True).map(tuple),
        from_audience=st.booleans(),
    )
    # The last person index stands for an address nobody has.
    suppression = st.tuples(
        st.sampled_from(["opt_out", "bounce", "complaint"]),
        st.integers(0, len(spec.people)),
        st.integers(0, 23),
    )
    return Scenario(
        world=spec,
        exclusions_enabled=draw(MOSTLY),
        cooldown_days=draw(COOLDOWN),
        cap=draw(st.sampled_from([1, 2, None, 3])),
        audience=audience,
        history=tuple(sorted(draw(st.lists(action, max_size=8)), key=lambda a: -a.days_ago)),
        rules=tuple(rules),
        suppressions=tuple(draw(st.lists(suppression, max_size=3))),
        asked_after_days=draw(st.integers(0, 10)),
    )


def _ascii_upper(text: str) -> str:
    """Another spelling of an address: A-Z only, so that it normalizes back to the same."""
    return "".join(ch.upper() if ch.isascii() else ch for ch in text)


@dataclass(frozen=True)
class Written:
    world: World
    sequence_id: int
    audience_id: int | None


def write(db: Connection, scenario: Scenario) -> Written:
    """The scenario, through the services, in time order: data, rulesets, audience and
    sequences, enrollment history, exclusions, switch-offs, then opt-outs, bounces and
    complaints."""
    built = build(db, scenario.world)
    world, ws = built.world, built.ws
    ruleset = world.ruleset(
        "Under test",
        exclusions_enabled=scenario.exclusions_enabled,
        reenroll_cooldown_days=scenario.cooldown_days,
        max_active_per_company=scenario.cap,
    )
    audience, audience_id = scenario.audience, None
    if audience is not None:
        persona = None
        if audience.include or audience.exclude:
            persona = world.persona("Persona", audience.include, audience.exclude)
        audience_id = world.audience("Audience", filter=audience.filter, persona=persona)
    sequence_id = world.sequence(
        "Under test",
        ruleset=ruleset,
        audience="Audience" if audience is not None else None,
        steps=STEPS,
    )
    other_id = world.sequence("Other", steps=STEPS)
    for action in scenario.history:
        target = other_id if action.other_sequence else sequence_id
        ids = [built.people[i] for i in action.people]
        at = NOW - timedelta(days=action.days_ago)
        if action.kind == "enroll":
            enrolling.enroll(
                db,
                workspace_id=ws,
                sequence_id=target,
                people=ids,
                actor=ACTOR,
                now=at,
                audience_id=audience_id if action.from_audience else None,
            )
        else:
            enrolling.unenroll(
                db, workspace_id=ws, sequence_id=target, person_ids=ids, actor=ACTOR, now=at
            )
    saved = [
        world.exclusion(
            f"Rule {i}",
            rule.level.value,
            rule.filter,
            enabled=rule.enabled,
            exclude_from_sequences=rule.exclude_from_sequences,
            unenroll_existing_on_save=rule.unenroll_existing_on_save,
        ).exclusion
        for i, rule in enumerate(scenario.rules)
    ]
    for rule in saved:
        note(f"{rule.name} ({rule.level.value}): {to_text(rule.filter)}")
    for index in audience.switched_off if audience is not None else ():
        if index < len(saved) and not saved[index].exclude_from_sequences:
            audiences.switch_off(
                db,
                workspace_id=ws,
                audience="Audience",
                exclusion=saved[index].name,
                actor=ACTOR,
                now=NOW,
            )
    specs = scenario.world.people
    for kind, who, hours in scenario.suppressions:
        email = _ascii_upper(specs[who].email) if who < len(specs) else "nobody@acme.com"
        at = NOW - timedelta(hours=hours)
        if kind == "opt_out":
            optouts.opt_out(db, workspace_id=ws, email=email, actor=ACTOR, channel="manual", now=at)
        elif kind == "complaint":
            optouts.complain(db, workspace_id=ws, email=email, actor=ACTOR, now=at)
        else:
            optouts.bounce(db, workspace_id=ws, email=email, actor=ACTOR, now=at)
    # Someone new, whose address may have been suppressed before they existed (R1).
    people.create(
        db, workspace_id=ws, email="Nobody@ACME.com", company_id=built.companies[0], now=NOW
    )
    return Written(world, sequence_id, audience_id)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
@given(scenario=scenarios())
def test_R16_eligible_set_sql_agrees_with_decide(db: Connection, scenario: Scenario) -> None:
    with db.begin_nested() as savepoint:
        written = write(db, scenario)
        # At send time the audience plays no part: one question covers it.
        via = written.audience_id
        for purpose, audience_id in dict.fromkeys(
            [(Purpose.ENROLL, None), (Purpose.ENROLL, via), (Purpose.SEND, via)]
        ):
            agreed(
                db,
                workspace_id=written.world.ws,
                sequence_id=written.sequence_id,
                purpose=purpose,
                now=NOW + timedelta(days=scenario.asked_after_days),
                audience_id=audience_id,
            )
        savepoint.rollback()


# One case per check -----------------------------------------------------------------------


def _ask(
    world: World,
    sequence_id: int,
    *,
    purpose: Purpose = Purpose.ENROLL,
    audience_id: int | None = None,
    now: datetime = NOW,
) -> Agreed:
    return agreed(
        world.db,
        workspace_id=world.ws,
        sequence_id=sequence_id,
        purpose=purpose,
        now=now,
        audience_id=audience_id,
    )


def _everyone(world: World) -> set[int]:
    p = t.people
    return set(world.db.scalars(sa.select(p.c.id).where(p.c.workspace_id == world.ws)))


def _team(world: World) -> dict[str, int]:
    return {
        "ann": world.person("ann@acme.com", company="acme.com", title="CTO"),
        "bob": world.person("bob@acme.com", company="acme.com", title="Head of Sales"),
        "cat": world.person("cat@globex.io", company="globex.io", title="VP Engineering"),
        "dan": world.person("dan@gmail.com", title="Founder"),
    }


def test_R1_opted_out_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    seq = world.sequence(steps=STEPS)
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="ANN@acme.com",
        actor=ACTOR,
        channel="manual",
        now=world.now,
    )
    again = world.person("Ann@ACME.com", company="acme.com")  # a later duplicate (R1)
    for purpose in Purpose:
        answer = _ask(world, seq, purpose=purpose)
        assert answer.blocked["opted_out"] == {team["ann"], again}
        assert answer.allowed == {team["bob"], team["cat"], team["dan"]}


def test_R7_bounced_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    seq = world.sequence(steps=STEPS)
    optouts.bounce(world.db, workspace_id=world.ws, email="cat@globex.io", actor=ACTOR, now=NOW)
    for purpose in Purpose:
        answer = _ask(world, seq, purpose=purpose)
        assert answer.blocked["bounced"] == {team["cat"]}
        assert answer.blocked["opted_out"] == set()
        assert team["cat"] not in answer.allowed


def test_R36_complained_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    seq = world.sequence(ruleset=world.ruleset("Off", exclusions_enabled=False), steps=STEPS)
    optouts.complain(
        world.db,
        workspace_id=world.ws,
        email="Bob@acme.com",
        actor=ACTOR,
        now=NOW,
        reporting_domain="fbl.mail.example",
    )
    optouts.bounce(world.db, workspace_id=world.ws, email="bob@acme.com", actor=ACTOR, now=NOW)
    again = world.person("BOB@acme.com", company="acme.com")  # a later duplicate (R1)
    for purpose in Purpose:
        answer = _ask(world, seq, purpose=purpose)
        assert answer.blocked["complained"] == {team["bob"], again}
        assert answer.blocked["bounced"] == {team["bob"], again}
        assert answer.blocked["opted_out"] == set()
        assert answer.allowed == {team["ann"], team["cat"], team["dan"]}


def test_R16_ruleset_with_exclusions_off_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    world.exclusion("Acme", "company", "company.domain = acme.com", exclude_from_sequences=True)
    world.exclusion("Founders", "people", 'person.title contains "founder"')
    applies = world.sequence("Applies", ruleset=world.ruleset("On"), steps=STEPS)
    ignores = world.sequence(
        "Ignores", ruleset=world.ruleset("Off", exclusions_enabled=False), steps=STEPS
    )
    assert _ask(world, applies).allowed == {team["cat"]}
    for purpose in Purpose:
        answer = _ask(world, ignores, purpose=purpose)
        assert answer.allowed == set(team.values())
        assert answer.blocked["enforced_exclusion"] == answer.blocked["exclusion"] == set()


def test_R14_enforced_exclusion_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    rule = world.exclusion(
        "Sales", "people", 'person.title contains "sales"', exclude_from_sequences=True
    ).exclusion
    world.audience("Everyone")
    seq = world.sequence(audience="Everyone", steps=STEPS)
    with pytest.raises(Conflict):
        audiences.switch_off(
            world.db,
            workspace_id=world.ws,
            audience="Everyone",
            exclusion=rule.name,
            actor=ACTOR,
            now=NOW,
        )
    audience_id = audiences.spec_by_name(world.db, workspace_id=world.ws, name="Everyone").id
    for purpose in Purpose:
        for via in (None, audience_id):
            answer = _ask(world, seq, purpose=purpose, audience_id=via)
            assert answer.blocked["enforced_exclusion"] == {team["bob"]}
            assert team["bob"] not in answer.allowed


def test_R15_default_exclusion_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    world.exclusion("Personal", "people", "person.email_domain is personal")
    world.exclusion("Globex", "company", "company.domain = globex.io", enabled=False)
    audience_id = world.audience("Everyone")
    seq = world.sequence(audience="Everyone", steps=STEPS)
    manual = _ask(world, seq)
    assert manual.blocked["exclusion"] == {team["dan"]}
    assert manual.allowed == {team["ann"], team["bob"], team["cat"]}
    sending = _ask(world, seq, purpose=Purpose.SEND)
    assert sending.blocked["exclusion"] == set()
    assert sending.allowed == set(team.values())
    audiences.switch_off(
        world.db,
        workspace_id=world.ws,
        audience="Everyone",
        exclusion="Personal",
        actor=ACTOR,
        now=NOW,
    )
    assert _ask(world, seq, audience_id=audience_id).allowed == set(team.values())
    assert _ask(world, seq).blocked["exclusion"] == {team["dan"]}


def test_R12_linked_company_exclusion_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    parent = companies.get_id(world.db, workspace_id=world.ws, domain="acme.com")
    child = world.company("acme.co.uk", "Acme UK")
    eve = world.person("eve@acme.co.uk", company="acme.co.uk")
    world.exclusion("UK", "company", 'company.domain ends with ".co.uk"')
    seq = world.sequence(steps=STEPS)
    assert _ask(world, seq).blocked["exclusion"] == {eve}
    companies.link(world.db, workspace_id=world.ws, parent_id=parent, child_id=child, now=NOW)
    answer = _ask(world, seq)
    assert answer.blocked["exclusion"] == {eve, team["ann"], team["bob"]}
    assert answer.allowed == {team["cat"], team["dan"]}


def test_R24_audience_persona_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    world.person("eve@acme.com", company="acme.com", title="Sales Engineer")
    world.persona("Tech", include=["cto", "ENGINEER", "founder"], exclude=["sales"])
    audience_id = world.audience("Tech at companies", "company.domain is not empty", "Tech")
    seq = world.sequence(audience="Tech at companies", steps=STEPS)
    answer = _ask(world, seq, audience_id=audience_id)
    assert answer.allowed == {team["ann"], team["cat"]}
    assert answer.blocked["audience"] == _everyone(world) - {team["ann"], team["cat"]}
    assert _ask(world, seq).blocked["audience"] == set()


def test_R9_already_enrolled_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    seq, other = world.sequence(steps=STEPS), world.sequence("Other", steps=STEPS)
    world.enroll(seq, [team["ann"]])
    world.enroll(other, [team["bob"]])
    answer = _ask(world, seq)
    assert answer.blocked["already_enrolled"] == {team["ann"]}
    assert answer.allowed == {team["bob"], team["cat"], team["dan"]}
    assert "already_enrolled" not in _ask(world, seq, purpose=Purpose.SEND).blocked


def test_R9_cooldown_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    seq = world.sequence(ruleset=world.ruleset("Week", reenroll_cooldown_days=7), steps=STEPS)
    start = NOW - timedelta(days=20)
    for name, ended in (("ann", timedelta(days=7)), ("bob", timedelta(days=7, seconds=-1))):
        enrolling.enroll(
            world.db,
            workspace_id=world.ws,
            sequence_id=seq,
            people=[team[name]],
            actor=ACTOR,
            now=start,
        )
        enrolling.unenroll(
            world.db,
            workspace_id=world.ws,
            sequence_id=seq,
            person_ids=[team[name]],
            actor=ACTOR,
            now=NOW - ended,
        )
    answer = _ask(world, seq)
    assert answer.blocked["cooldown"] == {team["bob"]}  # ann's cooldown ends exactly now
    assert answer.allowed == {team["ann"], team["cat"], team["dan"]}
    assert _ask(world, seq, now=NOW + timedelta(seconds=1)).blocked["cooldown"] == set()


def test_R27_company_cap_sql_and_decide_agree(world: World) -> None:
    team = _team(world)
    eve = world.person("eve@acme.com", company="acme.com")
    seq = world.sequence(ruleset=world.ruleset("Two", max_active_per_company=2), steps=STEPS)
    other = world.sequence("Other", steps=STEPS)
    world.enroll(other, [eve, team["cat"]])  # other sequences do not count
    world.enroll(seq, [team["ann"], team["bob"]])
    answer = _ask(world, seq)
    assert answer.blocked["company_cap"] == {team["ann"], team["bob"], eve}
    assert answer.allowed == {eve, team["cat"], team["dan"]} - answer.blocked["company_cap"]
    enrolling.unenroll(
        world.db,
        workspace_id=world.ws,
        sequence_id=seq,
        person_ids=[team["bob"]],
        actor=ACTOR,
        now=NOW,
    )
    assert _ask(world, seq).blocked["company_cap"] == set()
