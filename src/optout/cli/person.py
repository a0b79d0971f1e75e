"""`optout person ...`: one person's enrollments and the emails still to go, and adding one
person by hand (the same service call as the API's and the page's)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.lookups import pending_emails
from optout.cli.render import console, emit_json, plain
from optout.clock import utcnow
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services.directory import companies, people
from optout.services.reads import listing
from optout.services.sequences import definitions

person_app = typer.Typer(
    no_args_is_help=True,
    help="One person: their enrollments and emails still to go; add a person by hand.",
)
app.add_typer(person_app, name="person")

EmailArgument = Annotated[str, typer.Argument(help="The person's email address.")]
FieldOption = Annotated[
    list[str] | None,
    typer.Option("--field", help="A custom field as name=value (repeat for more)."),
]


def fields_of(pairs: list[str] | None) -> dict[str, str]:
    """`--field name=value` options as a mapping; a pair without `=` is refused."""
    found: dict[str, str] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--field {pair!r}: write it as name=value, e.g. industry=Software")
        found[name.strip().lower()] = value.strip()
    return found


@person_app.command("show")
def show(
    ctx: typer.Context,
    email: EmailArgument,
    sequence: Annotated[
        str | None,
        typer.Option("--sequence", "-s", help="Only this sequence (its name)."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """A person's details, their enrollments (status in each sequence) and the emails
    not sent yet."""
    env = env_of(ctx)
    address = normalize_email(email).address
    with env.workspace() as (db, ws):
        ids = people.ids_by_email(db, workspace_id=ws.id, email=address)
        if not ids:
            raise NotFound(f"no person with address {address}")
        person_id = ids[0]
        sequence_id = (
            definitions.spec_by_name(db, workspace_id=ws.id, name=sequence).id
            if sequence is not None
            else None
        )
        person = listing.person(db, workspace_id=ws.id, person_id=person_id)
        enrollments = listing.enrollments(
            db,
            workspace_id=ws.id,
            person_id=person_id,
            sequence_id=sequence_id,
            limit=1000,
            offset=0,
        ).rows
        emails = pending_emails(
            db, workspace_id=ws.id, person_id=person_id, sequence_id=sequence_id
        )
    data: dict[str, Any] = {
        "person": _person_json(person),
        "enrollments": [_enrollment_json(row) for row in enrollments],
        "queued_emails": plain(emails),
    }
    if sequence is not None:
        latest = enrollments[-1] if enrollments else None
        data["sequence"] = sequence
        data["status"] = latest["status"] if latest else "not_enrolled"
    if json_output:
        emit_json(data)
        return
    _print(data)


def _person_json(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "id",
        "email",
        "first_name",
        "last_name",
        "title",
        "status",
        "company_domain",
        "fields",
        "crm_id",
        "opted_out",
        "bounced",
        "complained",
        "created_at",
    )
    return dict(plain({key: row.get(key) for key in keep}))


def _enrollment_json(row: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "sequence",
        "status",
        "source",
        "enrolled_at",
        "enrolled_by",
        "next_run_at",
        "ended_at",
        "end_reason",
    )
    return dict(plain({key: row.get(key) for key in keep}))


# What a mark on the person's address is called.
MARKS = {"opted_out": "opted out", "bounced": "hard-bounced", "complained": "sent a spam complaint"}


def _print(data: dict[str, Any]) -> None:
    out = console()
    person = data["person"]
    name = f"{person['first_name']} {person['last_name']}".strip()
    out.print(Text.assemble((name or person["email"], "bold"), f" <{person['email']}>"))
    facts = [
        f"title: {person['title'] or '-'}",
        f"company: {person['company_domain'] or 'none'}",
    ]
    marks = [
        w for w, key in (("opted out", "opted_out"), ("hard-bounced", "bounced")) if person[key]
    ]
    if person.get("complained"):
        marks.append("sent a spam complaint")
    out.print(Text("; ".join(facts + marks)))
    if "status" in data:
        out.print(
            Text.assemble(
                f"In {data['sequence']!r}: ",
                (data["status"].replace("_", " "), "bold"),
            )
        )
    if data["enrollments"]:
        table = Table(title="Enrollments", title_justify="left")
        for column in ("sequence", "status", "how", "enrolled (UTC)", "ended", "why it ended"):
            table.add_column(column)
        for row in data["enrollments"]:
            table.add_row(
                Text(row["sequence"]),
                row["status"].replace("_", " "),
                row["source"],
                (row["enrolled_at"] or "")[:16].replace("T", " "),
                (row["ended_at"] or "")[:16].replace("T", " "),
                Text(row["end_reason"] or ""),
            )
        out.print(table)
    else:
        out.print(Text("Not enrolled in any sequence.", "dim"))
    if data["queued_emails"]:
        table = Table(title="Emails not sent yet", title_justify="left")
        for column in ("due (UTC)", "sequence", "step", "subject", "status"):
            table.add_column(column)
        for row in data["queued_emails"]:
            table.add_row(
                row["due_at"][:16].replace("T", " "),
                Text(row["sequence"]),
                str(row["step"] + 1),
                Text(row["subject"]),
                row["status"].replace("_", " "),
            )
        out.print(table)
    else:
        out.print(Text("No email waiting to be sent.", "dim"))


@person_app.command("add")
def add(
    ctx: typer.Context,
    email: EmailArgument,
    first_name: Annotated[str, typer.Option("--first-name", help="First name.")] = "",
    last_name: Annotated[str, typer.Option("--last-name", help="Last name.")] = "",
    title: Annotated[str, typer.Option("--title", help="Job title.")] = "",
    status: Annotated[str, typer.Option("--status", help="Lifecycle status, as in the CRM.")] = "",
    company: Annotated[
        str | None,
        typer.Option(
            "--company",
            help="The domain of an existing company (default: the company of the address's "
            "domain, if there is one).",
        ),
    ] = None,
    field: FieldOption = None,
    crm_id: Annotated[str | None, typer.Option("--crm-id", help="Their id in the CRM.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Add one person. An address that opted out already stays opted out."""
    env = env_of(ctx)
    fields = fields_of(field)
    with env.workspace() as (db, ws):
        company_id = (
            companies.get_id(db, workspace_id=ws.id, domain=company)
            if company is not None
            else None
        )
        person_id = people.create(
            db,
            workspace_id=ws.id,
            email=email,
            now=utcnow(),
            first_name=first_name,
            last_name=last_name,
            title=title,
            status=status,
            company_id=company_id,
            fields=fields,
            crm_id=crm_id,
            actor=env.actor,
        )
        person = listing.person(db, workspace_id=ws.id, person_id=person_id)
    if json_output:
        emit_json(_person_json(person))
        return
    console().print(
        Text.assemble(
            "Added ",
            (person["email"], "bold"),
            f" (company: {person['company_domain'] or 'none'}).",
        )
    )
