"""`optout init` (schema and workspace) and `optout demo` (a realistic demo workspace
and a short tour of what optout decides and why)."""

from __future__ import annotations

import time
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.render import console, emit_json
from optout.clock import utcnow
from optout.config import Settings
from optout.errors import NotFound
from optout.services import workspaces


def _database() -> str:
    return sa.make_url(Settings.from_env().database_url).render_as_string(hide_password=True)


@app.command()
def init(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", help="Workspace slug [default: the global one]."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Display name [default: the slug].")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Bring the database to the current schema and create the workspace if it is missing."""
    env = env_of(ctx)
    slug = workspace or env.workspace_slug
    with env.transaction() as db:
        try:
            found = workspaces.get(db, slug=slug)
            created = False
        except NotFound:
            found = workspaces.create(db, slug=slug, name=name or slug, now=utcnow())
            created = True
    if json_output:
        emit_json({"database": _database(), "workspace": found.slug, "created": created})
        return
    out = console()
    out.print(Text(f"Database ready: {_database()} (schema up to date)."))
    verb = "Created" if created else "Workspace exists already:"
    out.print(Text.assemble((verb, "bold"), f" {found.slug!r} ({found.name})"))


@app.command()
def demo(
    ctx: typer.Context,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the generated data (same seed, same data).")
    ] = 7,
    tour: Annotated[
        bool, typer.Option("--tour/--no-tour", help="Print the tour after building.")
    ] = True,
    json_output: JsonOption = False,
) -> None:
    """Build (or rebuild from scratch) a demo workspace, then print a short tour.

    A few hundred people at about forty companies, deals, exclusions of every kind, a
    persona, audiences, rulesets, sequences, enrollments and opt-outs. Only a workspace
    made by `optout demo` is ever rebuilt.
    """
    from optout.demo.build import build
    from optout.demo.tour import print_tour, summary

    env = env_of(ctx)
    started = time.monotonic()
    now = utcnow()
    with env.transaction() as db:
        story = build(db, slug=env.workspace_slug, now=now, seed=seed, actor=env.actor)
    elapsed = time.monotonic() - started
    with env.transaction() as db:
        if json_output:
            emit_json({"database": _database(), **summary(db, story, now=now)})
            return
        out = console()
        out.print(
            Text.assemble(
                ("optout demo", "bold"),
                f": workspace {story.slug!r} built in {elapsed:.1f}s in {_database()}",
            )
        )
        if tour:
            print_tour(out, db, story, now=now)


@app.command()
def settings(
    ctx: typer.Context,
    create_companies: Annotated[
        bool | None,
        typer.Option(
            "--create-companies/--no-create-companies",
            help="A person whose email domain names no company yet: create that company and "
            "link them (the default), or leave them without a company until one appears.",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show the workspace's settings, or change them."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        if create_companies is not None:
            ws = workspaces.set_company_creation(db, workspace_id=ws.id, enabled=create_companies)
    shown = {
        "workspace": ws.slug,
        "create_companies_from_email_domain": ws.create_companies_from_email_domain,
        "mass_exclusion_share": ws.mass_exclusion_share,
        "mass_unenroll_limit": ws.mass_unenroll_limit,
        "auto_opt_out_on_unsubscribe_reply": ws.auto_opt_out_on_unsubscribe_reply,
    }
    if json_output:
        emit_json(shown)
        return
    out = console()
    for key, value in shown.items():
        out.print(Text.assemble((f"{key.replace('_', ' ')}: ", "bold"), str(value)))
