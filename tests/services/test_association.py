"""People belong to the company of their email domain on every path that writes people or
companies, and monitoring follows the link (R12, R14, R18, R25)."""

from __future__ import annotations

import io

import sqlalchemy as sa

from optout.db import tables as t
from optout.eligibility.model import ExclusionSpec
from optout.filters import Level
from optout.services import workspaces
from optout.services.directory import companies, people
from optout.services.exclusions.domain_hints import listed_domains
from optout.services.filters import read_filter
from optout.services.imports import company_files, people_files, reporting
from tests.factories import World

ACTOR = "ops@acme-sales.com"


def import_people(world: World, text: str, *pairs: str) -> reporting.ImportReport:
    stream = io.StringIO(text, newline="")
    return people_files.import_people(
        world.db,
        workspace_id=world.ws,
        source=stream,
        mapping=people_files.parse_mapping(pairs),
        actor=ACTOR,
        now=world.now,
    )


def company_of(world: World, email: str) -> tuple[str | None, str | None]:
    """The person's company domain and how it was linked."""
    p, c = t.people, t.companies
    row = world.db.execute(
        sa.select(c.c.domain, p.c.company_link_source)
        .select_from(p.outerjoin(c, c.c.id == p.c.company_id))
        .where(p.c.workspace_id == world.ws, p.c.email == email)
    ).one()
    return row.domain, row.company_link_source


def statuses(world: World, sequence_id: int) -> dict[str, str]:
    e, p = t.enrollments, t.people
    rows = world.db.execute(
        sa.select(p.c.email, e.c.status)
        .join(p, p.c.id == e.c.person_id)
        .where(e.c.sequence_id == sequence_id)
    )
    return {row.email: row.status for row in rows}


def ids(world: World, *emails: str) -> list[int]:
    return [people.id_by_email(world.db, workspace_id=world.ws, email=e) for e in emails]


ACME = ("ann@acme.com", "bob@Acme.COM", "cy@acme.com")


def test_R12_people_imported_with_email_only_are_unenrolled_by_a_company_exclusion_on_their_domain(
    world: World,
) -> None:
    sequence_id = world.sequence()
    report = import_people(
        world, "Email\n" + "\n".join((*ACME, "dee@gmail.com", "eve@globex.io")), "Email=email"
    )
    assert report.created == 5
    assert company_of(world, "ann@acme.com") == ("acme.com", "email_domain")
    assert company_of(world, "eve@globex.io") == ("globex.io", "email_domain")
    assert company_of(world, "dee@gmail.com") == (None, None)  # a free-mail provider (R25)
    world.enroll(sequence_id, ids(world, "ann@acme.com", "bob@acme.com", "cy@acme.com"))
    world.enroll(sequence_id, ids(world, "eve@globex.io"))

    saved = world.exclusion(
        "Acme is a customer",
        "company",
        "company.domain in (acme.com)",
        unenroll_existing_on_save=True,
    )

    assert saved.removal.enrollments_ended == 3
    assert statuses(world, sequence_id) == {
        "ann@acme.com": "unenrolled",
        "bob@acme.com": "unenrolled",
        "cy@acme.com": "unenrolled",
        "eve@globex.io": "not_started",
    }


def test_R14_a_company_created_later_picks_up_its_people_and_monitoring_unenrolls_them(
    world: World,
) -> None:
    workspaces.set_company_creation(world.db, workspace_id=world.ws, enabled=False)
    sequence_id = world.sequence()
    import_people(world, "Email\n" + "\n".join(ACME), "Email=email")
    assert company_of(world, "ann@acme.com") == (None, None)
    assert world.db.scalar(sa.select(sa.func.count()).select_from(t.companies)) == 0
    world.enroll(sequence_id, ids(world, *ACME))
    world.exclusion(
        "Acme is a customer", "company", "company.domain in (acme.com)",
        exclude_from_sequences=True,
    )  # fmt: skip
    assert set(statuses(world, sequence_id).values()) == {"not_started"}  # matches nobody yet

    companies.create(world.db, workspace_id=world.ws, domain="acme.com", now=world.now)

    assert company_of(world, "bob@acme.com") == ("acme.com", "email_domain")
    assert set(statuses(world, sequence_id).values()) == {"unenrolled"}


def test_R12_a_mapped_company_column_wins_over_the_email_domain(world: World) -> None:
    world.company("acme.com")
    import_people(
        world,
        "Email,Company\nann@acme.com,globex.io\nbob@acme.com,\n",
        "Email=email",
        "Company=company_domain",
    )
    assert company_of(world, "ann@acme.com") == ("globex.io", "column")
    assert company_of(world, "bob@acme.com") == ("acme.com", "email_domain")
    import_people(world, "Email\nann@acme.com\n", "Email=email")  # no company column now
    assert company_of(world, "ann@acme.com") == ("globex.io", "column")


def test_R12_a_person_a_user_unlinked_stays_unlinked(world: World) -> None:
    person = world.person("ann@acme.com")
    assert company_of(world, "ann@acme.com") == ("acme.com", "email_domain")
    people.update(
        world.db,
        workspace_id=world.ws,
        person_id=person,
        changes={"company_id": None},
        actor=ACTOR,
        now=world.now,
    )
    import_people(world, "Email,Title\nann@acme.com,CTO\n", "Email=email", "Title=title")
    assert company_of(world, "ann@acme.com") == (None, "manual")


def test_R12_a_company_import_links_the_unlinked_people_of_its_domains(world: World) -> None:
    workspaces.set_company_creation(world.db, workspace_id=world.ws, enabled=False)
    sequence_id = world.sequence()
    world.person("ann@acme.com")
    world.person("cy@globex.io")
    world.enroll(sequence_id, ids(world, "ann@acme.com", "cy@globex.io"))
    world.exclusion(
        "No Globex", "company", "company.fields.tier = churned", exclude_from_sequences=True
    )
    stream = io.StringIO("Domain,Tier\nacme.com,gold\nglobex.io,churned\n", newline="")
    report = company_files.import_companies(
        world.db,
        workspace_id=world.ws,
        source=stream,
        mapping=people_files.parse_mapping(["Domain=domain", "Tier=fields.tier"]),
        actor=ACTOR,
        now=world.now,
    )
    assert report.created == 2
    assert company_of(world, "ann@acme.com") == ("acme.com", "email_domain")
    assert statuses(world, sequence_id) == {
        "ann@acme.com": "not_started",
        "cy@globex.io": "unenrolled",
    }


def test_R18_association_compares_the_normalized_domain_and_never_a_variant(
    world: World,
) -> None:
    world.company("https://www.Acme.com/about")
    world.person("Ann@ACME.com")
    world.person("bob@acme.co.uk")
    assert company_of(world, "ann@acme.com") == ("acme.com", "email_domain")
    assert company_of(world, "bob@acme.co.uk") == ("acme.co.uk", "email_domain")


def test_R22_preview_shows_people_at_a_listed_domain_who_belong_to_no_or_another_company(
    world: World,
) -> None:
    workspaces.set_company_creation(world.db, workspace_id=world.ws, enabled=False)
    world.person("ann@acme.com")
    world.person("bob@acme.com")
    world.person("cy@acme.com", company="globex.io")
    world.person("dee@initech.com")

    saved = world.exclusion("Acme is a customer", "company", "company.domain in (acme.com)")

    impact = saved.preview
    assert impact.people_matched == 0
    assert impact.unreached is not None
    assert (impact.unreached.count, impact.unreached.without_company) == (3, 2)
    assert impact.unreached.at_another_company == 1
    assert impact.unreached.sample == [
        {"email": "ann@acme.com", "company": None},
        {"email": "bob@acme.com", "company": None},
        {"email": "cy@acme.com", "company": "globex.io"},
    ]
    assert impact.warnings == [
        "this filter matches nobody now",
        "3 people have an email at acme.com but are not reached (2 belong to no company and "
        "1 to another company): link them to the company, or add a people-level rule on "
        "person.email_domain",
    ]


def test_R29_explain_says_when_a_company_rule_lists_the_email_domain_but_misses_the_person(
    world: World,
) -> None:
    world.sequence()
    world.person("cy@acme.com", company="globex.io")
    world.person("ann@acme.com")  # linked to acme.com by the email domain
    world.exclusion("Acme is a customer", "company", "company.domain in (acme.com)")

    missed = world.explain("cy@acme.com")
    reached = world.explain("ann@acme.com")

    assert missed.decision.allowed
    assert missed.company_hints == [
        "Acme is a customer lists acme.com, the domain of this email, but the person "
        "belongs to globex.io"
    ]
    assert not reached.decision.allowed
    assert reached.company_hints == []


def test_R22_only_domains_a_company_rule_names_positively_are_hints() -> None:
    def spec(text: str, level: Level = Level.COMPANY) -> ExclusionSpec:
        return ExclusionSpec(0, "r", level, read_filter(text, level), True, False, False)

    assert listed_domains(
        spec('company.domain in (acme.com, globex.io) or company.domain = "x.io"')
    ) == [
        "acme.com",
        "globex.io",
        "x.io",
    ]
    assert (
        listed_domains(spec("company.fields.tier = gold and not company.domain in (acme.com)"))
        == []
    )
    assert listed_domains(spec("person.email_domain in (acme.com)", Level.PEOPLE)) == []
