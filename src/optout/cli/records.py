"""`optout company add` and `optout persona ...`: the companies and personas the pages and
the API create, made from the command line through the same service calls."""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.person import FieldOption, fields_of
from optout.cli.render import console, emit_json, plain
from optout.clock import utcnow
from optout.db import tables as t
from optout.services.directory import companies
from optout.services.sequences import personas

company_app = typer.Typer(no_args_is_help=True, help="Companies: add one by its domain.")
persona_app = typer.Typer(
    no_args_is_help=True, help="Personas: job-title keywords an audience can require."
)
app.add_typer(company_app, name="company")
app.add_typer(persona_app, name="persona")

KeywordsOption = Annotated[
    list[str] | None,
    typer.Option(help="A job-title keyword (repeat for more; a phrase in quotes is one)."),
]


@company_app.command("add")
def add_company(
    ctx: typer.Context,
    domain: Annotated[str, typer.Argument(help="The company's web domain, e.g. acme.com.")],
    name: Annotated[str, typer.Option("--name", help="Its name (default: the domain).")] = "",
    field: FieldOption = None,
    crm_id: Annotated[str | None, typer.Option("--crm-id", help="Its id in the CRM.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Add one company. People with an address at its domain and no company join it."""
    env = env_of(ctx)
    fields = fields_of(field)
    with env.workspace() as (db, ws):
        company_id = companies.create(
            db,
            workspace_id=ws.id,
            domain=domain,
            name=name,
            fields=fields,
            now=utcnow(),
            crm_id=crm_id,
            actor=env.actor,
        )
        company = dict(companies.get(db, workspace_id=ws.id, company_id=company_id))
        p = t.people
        joined = int(
            db.scalar(
                sa.select(sa.func.count()).where(
                    p.c.workspace_id == ws.id, p.c.company_id == company_id
                )
            )
            or 0
        )
    data = {
        "id": company_id,
        "domain": company["domain"],
        "name": company["name"],
        "fields": company["fields"],
        "crm_id": company["crm_id"],
        "people": joined,
    }
    if json_output:
        emit_json(data)
        return
    console().print(
        Text.assemble(
            "Added ", (str(data["domain"]), "bold"), f" ({data['name']}): {joined} people in it."
        )
    )


@persona_app.command("add")
def add_persona(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The persona's name.")],
    include: KeywordsOption = None,
    exclude: KeywordsOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a persona: people whose title has one of the --include keywords and none of the
    --exclude ones."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        persona_id = personas.create(
            db,
            workspace_id=ws.id,
            name=name,
            include_keywords=include or [],
            exclude_keywords=exclude or [],
            now=utcnow(),
        )
        made = personas.get(db, workspace_id=ws.id, persona_id=persona_id)
    if json_output:
        emit_json(plain(made))
        return
    console().print(Text.assemble("Added persona ", (made.name, "bold"), "."))


@persona_app.command("list")
def list_personas(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every persona with its keywords."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        ids = db.scalars(
            sa.select(t.personas.c.id)
            .where(t.personas.c.workspace_id == ws.id)
            .order_by(t.personas.c.name)
        ).all()
        found = [personas.get(db, workspace_id=ws.id, persona_id=i) for i in ids]
    if json_output:
        emit_json(plain(found))
        return
    if not found:
        console().print(Text("No personas in this workspace.", "dim"))
        return
    table = Table(title="Personas", title_justify="left")
    for column in ("name", "title has one of", "title has none of"):
        table.add_column(column)
    for persona in found:
        table.add_row(
            Text(persona.name),
            Text(", ".join(persona.include_keywords)),
            Text(", ".join(persona.exclude_keywords)),
        )
    console().print(table)
