"""CSV imports: mapped people and companies, and lists straight into exclusions, all or
nothing and set-based (R1, R12, R14, R22, R23, R33, R34)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection

from optout.db import tables as t
from optout.eligibility.index import people_matched
from optout.errors import ConfirmationRequired, InvalidInput, NotFound
from optout.filters import Condition, Level
from optout.services import events
from optout.services.directory import companies, people
from optout.services.exclusions import saves
from optout.services.imports import company_files, exclusion_lists, people_files, reporting
from optout.services.imports.csv_files import RowError
from optout.services.imports.reporting import ImportReport
from optout.services.sequences import definitions
from optout.services.suppression import optouts
from tests.factories import World, email_status, queued_email

ACTOR = "ops@acme-sales.com"
STEPS = (definitions.Step(kind="email", subject="Hi {{ person.first_name }}", body_text="Hello"),)


def sequence(world: World) -> int:
    return world.sequence(steps=STEPS)


def csv_file(text: str, name: str = "upload.csv") -> io.StringIO:
    stream = io.StringIO(text, newline="")
    stream.name = name  # type: ignore[misc]
    return stream


def import_people(world: World, text: str, *pairs: str, **kw: Any) -> ImportReport:
    return people_files.import_people(
        world.db,
        workspace_id=world.ws,
        source=csv_file(text, kw.pop("name", "people.csv")),
        mapping=people_files.parse_mapping(pairs),
        actor=ACTOR,
        now=kw.pop("now", world.now),
        **kw,
    )


def import_companies(world: World, text: str, *pairs: str, **kw: Any) -> ImportReport:
    return company_files.import_companies(
        world.db,
        workspace_id=world.ws,
        source=csv_file(text, "companies.csv"),
        mapping=people_files.parse_mapping(pairs),
        actor=ACTOR,
        now=kw.pop("now", world.now),
        **kw,
    )


def import_list(world: World, text: str, **kw: Any) -> ImportReport:
    kw.setdefault("column", "Domain")
    kw.setdefault("exclusion", "Do not contact")
    kw.setdefault("level", "company")
    return exclusion_lists.import_exclusion_list(
        world.db,
        workspace_id=world.ws,
        source=csv_file(text, "list.csv"),
        actor=ACTOR,
        now=kw.pop("now", world.now),
        **kw,
    )


def counts(report: ImportReport) -> tuple[int, int, int, int]:
    return report.rows, report.created, report.updated, report.unchanged


def count(db: Connection, table: sa.Table, world: World) -> int:
    return int(
        db.scalar(
            sa.select(sa.func.count()).select_from(table).where(table.c.workspace_id == world.ws)
        )
        or 0
    )


def person(world: World, email: str) -> dict[str, Any]:
    ids = people.ids_by_email(world.db, workspace_id=world.ws, email=email)
    assert len(ids) == 1, ids
    return dict(people.get(world.db, workspace_id=world.ws, person_id=ids[0]))


def suppressed(world: World, email: str, kind: str = "opt_out") -> bool:
    s = t.suppressions
    return (
        world.db.scalar(
            sa.select(s.c.id).where(
                s.c.workspace_id == world.ws, s.c.email == email, s.c.kind == kind
            )
        )
        is not None
    )


def import_events(world: World) -> list[dict[str, Any]]:
    e = t.events
    rows = world.db.execute(
        sa.select(e.c.detail).where(e.c.workspace_id == world.ws, e.c.kind == "import_applied")
    ).scalars()
    return [dict(r) for r in rows]


@contextmanager
def statements(db: Connection) -> Iterator[list[str]]:
    """The SQL statements sent to the database inside the block (executemany counts once)."""
    seen: list[str] = []

    def listen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(db, "before_cursor_execute", listen)
    try:
        yield seen
    finally:
        event.remove(db, "before_cursor_execute", listen)


# --- R23: map a Status column, then exclude on it ---------------------------------------------


def test_R23_status_column_mapped_then_exclusion_on_status_excludes_exactly_those_people(
    world: World,
) -> None:
    text = (
        "Email,Status,Company\n"
        "ann@acme.com,Exclude,acme.com\n"
        "bob@acme.com,Customer,acme.com\n"
        "cy@globex.io,exclude,globex.io\n"
        "dee@initech.net,,initech.net\n"
    )
    report = import_people(world, text, "Email=email", "Status=status", "Company=company_domain")
    assert (counts(report), report.applied, report.errors) == ((4, 4, 0, 0), True, [])

    saved = world.exclusion("Excluded status", "people", 'person.status = "Exclude"')
    matched = set(
        world.db.scalars(people_matched(saved.exclusion, workspace_id=world.ws, now=world.now))
    )
    ids = {e: person(world, e)["id"] for e in ("ann@acme.com", "bob@acme.com", "cy@globex.io")}
    assert matched == {ids["ann@acme.com"], ids["cy@globex.io"]}

    seq = sequence(world)
    everyone = [person(world, e)["id"] for e in (*ids, "dee@initech.net")]
    assert world.enroll(seq, everyone).enrolled == 2
    assert world.status_of(seq, ids["ann@acme.com"]) is None
    assert world.status_of(seq, ids["bob@acme.com"]) == "not_started"


def test_R23_company_domain_creates_missing_companies_and_links_people(world: World) -> None:
    world.company("acme.com", "Acme Corp")
    text = (
        "Email,Company domain,Company\n"
        "ann@acme.com,https://www.ACME.com/,Acme Renamed\n"
        "lee@globex.io,globex.io,Globex\n"
        "max@globex.io,GLOBEX.io.,Globex Inc\n"
    )
    report = import_people(
        world, text, "Email=email", "Company domain=company_domain", "Company=company_name"
    )
    assert counts(report) == (3, 3, 0, 0)
    acme = companies.get_id(world.db, workspace_id=world.ws, domain="acme.com")
    globex = companies.get_id(world.db, workspace_id=world.ws, domain="globex.io")
    assert person(world, "ann@acme.com")["company_id"] == acme
    assert person(world, "max@globex.io")["company_id"] == globex
    # A people import never renames an existing company; a new one takes the first name given.
    assert companies.get(world.db, workspace_id=world.ws, company_id=acme)["name"] == "Acme Corp"
    created = companies.get(world.db, workspace_id=world.ws, company_id=globex)
    assert (created["name"], created["group_id"], created["domain_label"]) == (
        "Globex",
        globex,
        "globex",
    )
    assert import_events(world)[0]["companies_created"] == 1


# --- R23/R34: all or nothing, with an error report ----------------------------------------------


def test_R23_bad_rows_produce_an_error_report_and_nothing_is_written(world: World) -> None:
    text = (
        "Email,Status,Company,Opt out,Industry\n"
        "ann@acme.com,Lead,acme.com,no,software\n"  # fine
        "not-an-email,Lead,acme.com,,\n"  # 3: bad email
        ",Lead,acme.com,,\n"  # 4: required value empty
        "bob@acme.com,Lead,acme..com,,\n"  # 5: bad domain
        f"cy@acme.com,{'x' * 101},acme.com,,\n"  # 6: too long
        "ANN@acme.com,Customer,acme.com,,\n"  # 7: same address, conflicting status
        "dee@acme.com,Lead,acme.com,maybe,\n"  # 8: not a yes/no value
        "\n"  # blank line: skipped, not counted
        "eve@acme.com,Lead,acme.com,,retail,extra\n"  # 10: more values than columns
    )
    report = import_people(
        world,
        text,
        "Email=email",
        "Status=status",
        "Company=company_domain",
        "Opt out=email_opt_out",
        "Industry=fields.industry",
    )
    assert not report.applied
    assert counts(report) == (8, 0, 0, 0)
    by_row = {e.row: e for e in report.errors}
    assert sorted(by_row) == [3, 4, 5, 6, 7, 8, 10]
    assert (by_row[3].column, by_row[3].value) == ("Email", "not-an-email")
    assert "not an email address" in by_row[3].reason
    assert by_row[4].column == "Email"
    assert "empty" in by_row[4].reason
    assert (by_row[5].column, by_row[5].value) == ("Company", "acme..com")
    assert "not a domain" in by_row[5].reason
    assert by_row[6].column == "Status"
    assert "longer than 100 characters" in by_row[6].reason
    assert (by_row[7].column, by_row[7].value) == ("Status", "Customer")
    assert "row 2" in by_row[7].reason
    assert "ann@acme.com" in by_row[7].reason
    assert by_row[8].column == "Opt out"
    assert "yes/no" in by_row[8].reason
    assert by_row[10].value == "extra"

    for table in (t.people, t.companies, t.events, t.suppressions):
        assert count(world.db, table, world) == 0, table.name

    out = io.StringIO()
    reporting.write_error_report(report, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "row,column,value,reason"
    assert lines[1].startswith("3,Email,not-an-email,")
    assert len(lines) == 1 + len(report.errors)


def test_R34_file_level_problems_raise_a_clear_invalid_input(world: World) -> None:
    def fails(text: str, *pairs: str) -> str:
        with pytest.raises(InvalidInput) as caught:
            import_people(world, text, *pairs)
        return caught.value.message

    assert "empty" in fails("", "Email=email")
    assert "no data rows" in fails("Email\n", "Email=email")
    assert "more than once: 'Email'" in fails("Email,Email\na@b.com,c@d.com\n", "Email=email")
    assert "column 'Mail' is not in the file" in fails("Email\na@b.com\n", "Mail=email")
    assert "unknown field 'e_mail'" in fails("Email\na@b.com\n", "Email=e_mail")
    assert "map a column to 'email'" in fails("Email,Name\na@b.com,A\n", "Name=first_name")
    assert "custom field name 'Industry'" in fails(
        "Email,Ind\na@b.com,x\n", "Email=email", "Ind=fields.Industry"
    )
    assert "more than one column is mapped to 'email'" in fails(
        "Email,Work\na@b.com,c@d.com\n", "Email=email", "Work=email"
    )
    assert "'company_name' needs a column mapped to 'company_domain'" in fails(
        "Email,Co\na@b.com,Acme\n", "Email=email", "Co=company_name"
    )
    assert "NUL bytes" in fails("Email\na@b.com\x00\n", "Email=email")
    assert "not a well-formed CSV file" in fails('Email\n"a@b.com"x"\n', "Email=email")
    binary = io.TextIOWrapper(io.BytesIO(b"Email\n\xff\xfe\x00garbage\n"), encoding="utf-8")
    with pytest.raises(InvalidInput, match="not UTF-8 text"):
        people_files.import_people(
            world.db,
            workspace_id=world.ws,
            source=binary,
            mapping={"Email": "email"},
            actor=ACTOR,
            now=world.now,
        )
    assert count(world.db, t.people, world) == 0


def test_R34_parse_mapping_reads_column_field_pairs_and_refuses_bad_ones() -> None:
    assert people_files.parse_mapping(
        ["Email=email", " Lead Source = fields.lead_source", "A=B=status"]
    ) == {"Email": "email", "Lead Source": "fields.lead_source", "A=B": "status"}
    for bad in (["Email"], ["=email"], ["Email="], ["Email=email", "Email=status"]):
        with pytest.raises(InvalidInput):
            people_files.parse_mapping(bad)


def test_R34_semicolon_delimited_file_with_bom_and_quoted_fields(world: World) -> None:
    text = (
        "\ufeffE-mail;Title;Notes\r\n"
        'ann@acme.com;"Head of Sales; EMEA";"line one\r\nline two"\r\n'
        'bob@acme.com;"CTO, ""the"" boss";\r\n'
        "cy@acme.com;Engineer;plain\r\n"
    )
    report = import_people(world, text, "E-mail=email", "Title=title", "Notes=fields.notes")
    assert counts(report) == (3, 3, 0, 0)
    ann = person(world, "ann@acme.com")
    assert ann["title"] == "Head of Sales; EMEA"
    assert ann["fields"] == {"notes": "line one\r\nline two"}
    assert person(world, "bob@acme.com")["title"] == 'CTO, "the" boss'
    # Row numbers count records as a spreadsheet does, not physical lines.
    bad = import_people(world, text.replace("cy@acme.com", "cy@"), "E-mail=email")
    assert [e.row for e in bad.errors] == [4]


def test_R34_tab_delimited_file_and_case_insensitive_column_names(world: World) -> None:
    report = import_people(world, "EMAIL\tStatus\nann@acme.com\tLead\n", "email=email")
    assert counts(report) == (1, 1, 0, 0)


# --- R23: re-upload changes nothing ---------------------------------------------------------------


PEOPLE_FILE = (
    "Email,First,Status,Company,Industry,Tier,CRM\n"
    "Ann@Acme.com,Ann,Lead,acme.com,software,1,003A\n"
    "bob@acme.com,Bob,Customer,acme.com,software,,003B\n"
    "bob@ACME.com,,Customer,,,2,\n"  # the same address again, agreeing: one record
    "lee@globex.io,Lee,,globex.io,,,\n"
)
PEOPLE_MAP = (
    "Email=email",
    "First=first_name",
    "Status=status",
    "Company=company_domain",
    "Industry=fields.industry",
    "Tier=fields.tier",
    "CRM=crm_id",
)


def test_R23_reupload_of_the_same_file_changes_nothing(world: World) -> None:
    first = import_people(world, PEOPLE_FILE, *PEOPLE_MAP)
    assert counts(first) == (4, 3, 0, 0)
    bob = person(world, "bob@acme.com")
    assert bob["fields"] == {"industry": "software", "tier": "2"}
    assert (bob["first_name"], bob["crm_id"]) == ("Bob", "003B")
    before = world.db.execute(sa.select(t.people).order_by(t.people.c.id)).mappings().all()
    later = world.now + timedelta(days=3)

    again = import_people(world, PEOPLE_FILE, *PEOPLE_MAP, now=later)

    assert (counts(again), again.applied) == ((4, 0, 0, 3), True)
    after = world.db.execute(sa.select(t.people).order_by(t.people.c.id)).mappings().all()
    assert [dict(r) for r in after] == [dict(r) for r in before]
    assert count(world.db, t.companies, world) == 2
    assert [e["unchanged"] for e in import_events(world)] == [0, 3]


def test_R23_update_merges_custom_fields_and_an_empty_cell_keeps_the_stored_value(
    world: World,
) -> None:
    world.person("ann@acme.com", status="Lead", fields={"industry": "retail", "size": "50"})
    world.person("ANN@acme.com", status="Lead")  # a CRM duplicate of the same address
    world.person("bob@acme.com", status="Lead", first_name="Bob")
    later = world.now + timedelta(hours=1)
    text = "Email,Status,Industry,Region,First\nann@acme.com,Customer,software,emea,\n"
    text += "bob@acme.com,,,,Bob\n"

    report = import_people(
        world,
        text,
        "Email=email",
        "Status=status",
        "Industry=fields.industry",
        "Region=fields.region",
        "First=first_name",
        now=later,
    )

    assert counts(report) == (2, 0, 1, 1)
    ann, twin = (
        people.get(world.db, workspace_id=world.ws, person_id=i)
        for i in people.ids_by_email(world.db, workspace_id=world.ws, email="ann@acme.com")
    )
    assert ann["fields"] == {"industry": "software", "size": "50", "region": "emea"}
    assert twin["fields"] == {"industry": "software", "region": "emea"}
    assert (ann["status"], twin["status"], ann["updated_at"]) == ("Customer", "Customer", later)
    bob = person(world, "bob@acme.com")
    assert (bob["status"], bob["updated_at"]) == ("Lead", world.now)


# --- R1 / R33: opt-outs from a file ------------------------------------------------------------


def test_R1_import_opt_out_ends_enrollments_and_cancels_queued_email(world: World) -> None:
    ann = world.person("ann@acme.com", company="acme.com")
    twin = world.person("Ann@ACME.com")
    seq = sequence(world)
    world.enroll(seq, [ann])
    queued = queued_email(world, seq, ann)
    text = "Email,Unsubscribed\nann@acme.com,Yes\nbob@acme.com,y\ncy@acme.com,no\n"

    report = import_people(world, text, "Email=email", "Unsubscribed=email_opt_out")

    assert counts(report) == (3, 2, 0, 1)
    assert world.status_of(seq, ann) == "opted_out"
    assert email_status(world, queued) == "cancelled"
    assert suppressed(world, "ann@acme.com")
    assert suppressed(world, "bob@acme.com")
    assert not suppressed(world, "cy@acme.com")
    ledger = optouts.ledger(world.db, workspace_id=world.ws, email="ann@acme.com")
    assert [(r["action"], r["channel"], r["actor"]) for r in ledger] == [("added", "import", ACTOR)]
    kinds = [e.kind for e in events.history(world.db, workspace_id=world.ws, person_id=twin)]
    assert kinds == ["opted_out"]
    assert import_events(world)[0]["opted_out"] == 2
    # Re-importing adds nothing: no new ledger line, no new event.
    import_people(world, text, "Email=email", "Unsubscribed=email_opt_out")
    assert len(optouts.ledger(world.db, workspace_id=world.ws, email="ann@acme.com")) == 1


def test_R33_import_never_clears_opt_out(world: World) -> None:
    import_people(
        world, "Email,Opt out\nann@acme.com,true\n", "Email=email", "Opt out=email_opt_out"
    )
    world.person("bob@acme.com")
    optouts.bounce(
        world.db, workspace_id=world.ws, email="bob@acme.com", actor="mta", now=world.now
    )
    assert suppressed(world, "ann@acme.com")

    later = "Email,Opt out,Status\nann@acme.com,false,Lead\nbob@acme.com,0,Lead\n"
    report = import_people(world, later, "Email=email", "Opt out=email_opt_out", "Status=status")

    assert (report.applied, report.updated) == (True, 2)
    assert suppressed(world, "ann@acme.com")
    assert suppressed(world, "bob@acme.com", kind="bounce")
    seq = sequence(world)
    assert world.enroll(seq, [person(world, "ann@acme.com")["id"]]).enrolled == 0


def test_R1_imported_person_with_an_opted_out_address_is_suppressed_from_the_start(
    world: World,
) -> None:
    optouts.opt_out(
        world.db,
        workspace_id=world.ws,
        email="lee@globex.io",
        actor="sam",
        channel="manual",
        now=world.now,
    )

    import_people(
        world, "Email,Opt out\nLEE@globex.io,no\n", "Email=email", "Opt out=email_opt_out"
    )

    lee = person(world, "lee@globex.io")["id"]
    assert world.enroll(sequence(world), [lee]).enrolled == 0
    assert suppressed(world, "lee@globex.io")


# --- R14: changed people are re-checked at once -------------------------------------------------


def test_R14_status_change_by_import_unenrolls_under_an_enforced_exclusion(world: World) -> None:
    ann, bob = world.person("ann@acme.com", status="Lead"), world.person("bob@acme.com")
    seq = sequence(world)
    world.enroll(seq, [ann, bob])
    world.exclusion(
        "Customers", "people", 'person.status = "Customer"', exclude_from_sequences=True
    )

    import_people(world, "Email,Status\nann@acme.com,Customer\n", "Email=email", "Status=status")

    assert world.status_of(seq, ann) == "unenrolled"
    assert world.status_of(seq, bob) == "not_started"


# --- Companies -----------------------------------------------------------------------------------


def test_R23_companies_import_creates_updates_and_is_unchanged_on_reupload(world: World) -> None:
    world.company("acme.com", "Acme", segment="smb", region="us")
    text = "Domain,Name,Segment,CRM\nwww.acme.com,Acme Corp,entreprise é,001A\nglobex.io,,smb,\n"
    mapping = ("Domain=domain", "Name=name", "Segment=fields.segment", "CRM=crm_id")

    report = import_companies(world, text, *mapping)

    assert counts(report) == (2, 1, 1, 0)
    acme = companies.get(
        world.db,
        workspace_id=world.ws,
        company_id=companies.get_id(world.db, workspace_id=world.ws, domain="acme.com"),
    )
    assert (acme["name"], acme["fields"], acme["crm_id"]) == (
        "Acme Corp",
        {"segment": "entreprise é", "region": "us"},
        "001A",
    )
    before = world.db.execute(sa.select(t.companies).order_by(t.companies.c.id)).mappings().all()
    again = import_companies(world, text, *mapping, now=world.now + timedelta(days=1))
    assert counts(again) == (2, 0, 0, 2)
    after = world.db.execute(sa.select(t.companies).order_by(t.companies.c.id)).mappings().all()
    assert [dict(r) for r in after] == [dict(r) for r in before]


def test_R12_companies_import_links_subsidiaries_so_a_company_exclusion_reaches_the_group(
    world: World,
) -> None:
    world.person("ann@acme.com", company="acme.com")
    world.person("lee@globex.io", company="globex.io")
    world.person("max@initech.net", company="initech.net")
    text = "Domain,Parent\nglobex.io,acme.com\ninitech.net,globex.io\nhooli.xyz,parent.example\n"

    report = import_companies(world, text, "Domain=domain", "Parent=parent_domain")

    assert counts(report) == (3, 1, 2, 0)
    acme = companies.get_id(world.db, workspace_id=world.ws, domain="acme.com")
    c = t.companies
    query = sa.select(c.c.domain, c.c.group_id).where(c.c.workspace_id == world.ws)
    groups = {row.domain: row.group_id for row in world.db.execute(query)}
    assert groups["globex.io"] == groups["initech.net"] == acme
    assert groups["hooli.xyz"] == groups["parent.example"] != acme
    world.exclusion("Acme group", "company", 'company.domain in ("acme.com")')
    everyone = world.db.scalars(sa.select(t.people.c.id).where(t.people.c.workspace_id == world.ws))
    assert world.enroll(sequence(world), list(everyone)).enrolled == 0
    again = import_companies(world, text, "Domain=domain", "Parent=parent_domain")
    assert counts(again) == (3, 0, 0, 3)


def test_R12_companies_import_refuses_cycles_and_reparenting(world: World) -> None:
    acme, globex = world.company("acme.com"), world.company("globex.io")
    companies.link(world.db, workspace_id=world.ws, parent_id=acme, child_id=globex, now=world.now)
    text = (
        "Domain,Parent\n"
        "globex.io,initech.net\n"  # 2: linked to acme.com already
        "acme.com,globex.io\n"  # 3: acme is globex's parent: a cycle
        "a.example,b.example\n"
        "b.example,a.example\n"  # 5: closes a cycle within the file
        "c.example,c.example\n"  # 6: its own parent
    )

    report = import_companies(world, text, "Domain=domain", "Parent=parent_domain")

    assert not report.applied
    assert [(e.row, e.value) for e in report.errors] == [
        (2, "initech.net"),
        (3, "globex.io"),
        (5, "a.example"),
        (6, "c.example"),
    ]
    assert "unlink it first" in report.errors[0].reason
    assert "cycle" in report.errors[1].reason
    assert "cycle" in report.errors[2].reason
    assert count(world.db, t.companies, world) == 2


# --- Exclusion lists -----------------------------------------------------------------------------


def test_R23_exclusion_list_from_a_domain_csv_creates_the_rule_and_reupload_is_unchanged(
    world: World,
) -> None:
    world.person("ann@acme.com", company="acme.com")
    for n in range(9):
        world.person(f"p{n}@other{n}.com", company=f"other{n}.com")
    text = (
        "Domain,Note\n"
        "https://www.Acme.com/about,main\n"
        "ACME.COM.,dup\n"
        "www.globex.io,\n"
        '"initech.net, hooli.xyz",two in one cell\n'
    )

    report = import_list(world, text)

    assert (counts(report), report.applied) == ((4, 4, 0, 0), True)
    rule = saves.get(world.db, workspace_id=world.ws, name="Do not contact")
    assert rule.level is Level.COMPANY
    assert rule.filter == Condition(
        "company.domain", "in", ("acme.com", "globex.io", "initech.net", "hooli.xyz")
    )
    row = world.db.execute(sa.select(t.exclusions).where(t.exclusions.c.id == rule.id)).mappings()
    stamp = row.one()["updated_at"]

    again = import_list(world, text, now=world.now + timedelta(days=1))

    assert counts(again) == (4, 0, 0, 4)
    assert saves.get(world.db, workspace_id=world.ws, name="Do not contact") == rule
    x = t.exclusions
    assert world.db.scalar(sa.select(x.c.updated_at).where(x.c.id == rule.id)) == stamp
    e = t.events
    kinds = world.db.scalars(sa.select(e.c.kind).where(e.c.exclusion_id == rule.id)).all()
    assert sorted(kinds) == ["exclusion_created", "import_applied", "import_applied"]


def test_R23_exclusion_list_merges_into_an_existing_list_and_refuses_other_filters(
    world: World,
) -> None:
    world.exclusion("Competitors", "company", 'company.domain in ("rival.com")')
    world.exclusion("Big names", "company", 'company.name = "Acme"')
    world.exclusion("People list", "people", 'person.email in ("a@b.com")')

    report = import_list(world, "Domain\nrival.com\nnewrival.io\n", exclusion="Competitors")

    assert counts(report) == (2, 1, 0, 1)
    rule = saves.get(world.db, workspace_id=world.ws, name="Competitors")
    assert rule.filter == Condition("company.domain", "in", ("rival.com", "newrival.io"))
    with pytest.raises(InvalidInput, match=r"not a plain 'company\.domain in"):
        import_list(world, "Domain\nx.com\n", exclusion="Big names")
    with pytest.raises(InvalidInput, match="is people-level"):
        import_list(world, "Domain\nx.com\n", exclusion="People list")


def test_R23_exclusion_list_of_addresses_and_its_error_report(world: World) -> None:
    bad = import_list(
        world,
        "Email,Name\nann@acme.com,A\nnot-an-address,B\n\n,C\nbob@acme.com,D\n",
        column="Email",
        level="people",
    )
    assert not bad.applied
    assert [(e.row, e.value) for e in bad.errors] == [(3, "not-an-address"), (5, "")]
    with pytest.raises(NotFound):
        saves.get(world.db, workspace_id=world.ws, name="Do not contact")

    good = import_list(world, "Email\nAnn@Acme.com\nbob@acme.com\n", column="Email", level="people")
    assert counts(good) == (2, 2, 0, 0)
    rule = saves.get(world.db, workspace_id=world.ws, name="Do not contact")
    assert rule.filter == Condition("person.email", "in", ("ann@acme.com", "bob@acme.com"))


def test_R34_exclusion_list_import_refuses_a_list_longer_than_a_filter_may_hold(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exclusion_lists, "MAX_LIST", 2)
    with pytest.raises(InvalidInput, match="at most 2 fit in one list"):
        import_list(world, "Domain\na.com\nb.com\nc.com\n")
    assert count(world.db, t.exclusions, world) == 0


def test_R22_exclusion_list_import_keeps_the_mass_exclusion_guard(world: World) -> None:
    for n in range(3):
        world.person(f"p{n}@acme.com", company="acme.com")
    with pytest.raises(ConfirmationRequired):
        import_list(world, "Domain\nacme.com\n")
    assert count(world.db, t.exclusions, world) == 0
    report = import_list(world, "Domain\nacme.com\n", confirm=True)
    assert report.applied
    assert report.created == 1


# --- Scale: set-based writes ---------------------------------------------------------------------


def test_R23_a_20000_row_file_imports_through_a_few_set_based_statements(world: World) -> None:
    rows = ["Email,First,Status,Company,Segment,Opt out"]
    rows += [
        f"person{n}@company{n % 500}.com,P{n},{'Exclude' if n % 10 == 0 else 'Lead'},"
        f"company{n % 500}.com,s{n % 7},{'yes' if n % 100 == 0 else ''}"
        for n in range(20_000)
    ]
    text = "\n".join(rows) + "\n"
    mapping = (
        "Email=email",
        "First=first_name",
        "Status=status",
        "Company=company_domain",
        "Segment=fields.segment",
        "Opt out=email_opt_out",
    )
    calls: list[tuple[int, int]] = []

    with statements(world.db) as sent:
        report = import_people(world, text, *mapping, progress=lambda d, n: calls.append((d, n)))

    assert (counts(report), report.applied) == ((20_000, 20_000, 0, 0), True)
    assert len(sent) < 60, sent
    assert calls[0] == (1000, 20_000)
    assert calls[-1] == (20_000, 20_000)
    assert count(world.db, t.people, world) == 20_000
    assert count(world.db, t.companies, world) == 500
    assert count(world.db, t.suppressions, world) == 200

    with statements(world.db) as sent:
        again = import_people(world, text, *mapping, now=world.now + timedelta(days=1))
    assert counts(again) == (20_000, 0, 0, 20_000)
    assert len(sent) < 60


def test_R23_import_applied_event_carries_counts_and_file_name(world: World) -> None:
    import_people(world, "Email\nann@acme.com\n", "Email=email", name="/tmp/leads/q3.csv")
    (detail,) = import_events(world)
    assert detail["file"] == "q3.csv"
    assert (detail["import"], detail["rows"], detail["created"]) == ("people", 1, 1)


def test_R23_row_error_is_a_plain_record() -> None:
    error = RowError(row=2, column="Email", value="x", reason="bad")
    report = ImportReport("people", 1, 0, 0, 0, [error], applied=False)
    out = io.StringIO()
    reporting.write_error_report(report, out)
    assert out.getvalue().splitlines() == ["row,column,value,reason", "2,Email,x,bad"]


def test_R34_a_file_not_in_utf8_is_refused_naming_the_row_column_and_value(
    world: World,
) -> None:
    """A spreadsheet saved as Windows-1252: the message says which row, column and value
    are written in another encoding, never a byte offset or a codec's words."""
    saved = "Email;Last name\nann@acme.com;Smith\nbob@acme.com;Müller\n".encode("cp1252")
    with pytest.raises(InvalidInput) as refused:
        people_files.import_people(
            world.db,
            workspace_id=world.ws,
            source=io.TextIOWrapper(io.BytesIO(saved), encoding="utf-8"),
            mapping={"Email": "email", "Last name": "last_name"},
            actor=ACTOR,
            now=world.now,
        )
    message = refused.value.message
    assert "not UTF-8 text: row 3, column 'Last name' holds 'Müller'" in message
    assert "CSV UTF-8" in message
    assert "byte" not in message
    assert "invalid start" not in message
    assert count(world.db, t.people, world) == 0
