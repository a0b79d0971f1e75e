"""`optout audience ...`: the audiences with their sizes; adding one; switching an
exclusion off (or on again) for one; and for one audience every exclusion with what it
does to enrollments from it (R30)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.lookups import audience_rows
from optout.cli.render import console, emit_json, plain
from optout.clock import utcnow
from optout.filters import to_text
from optout.services.sequences import audiences
from optout.services.sequences.audiences import AffectingExclusion

audience_app = typer.Typer(
    no_args_is_help=True, help="Audiences: people filters (and personas) that feed sequences."
)
app.add_typer(audience_app, name="audience")

STATE_STYLES = {
    "enforced": "red bold",
    "applies": "yellow",
    "switched_off": "cyan",
    "disabled": "dim",
}


@audience_app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every audience: its filter, persona, size now, switched-off exclusions and sequences."""
    env = env_of(ctx)
    now = utcnow()
    rows = []
    with env.workspace() as (db, ws):
        for row in audience_rows(db, workspace_id=ws.id):
            spec = audiences.spec(db, workspace_id=ws.id, audience_id=row["id"])
            rows.append(
                {
                    "name": spec.name,
                    "filter": to_text(spec.filter) if spec.filter is not None else None,
                    "persona": row["persona"],
                    "size": audiences.size(db, workspace_id=ws.id, audience=spec, now=now),
                    "exclusions_switched_off": len(spec.switched_off),
                    "sequences": row["sequences"],
                }
            )
    if json_output:
        emit_json(rows)
        return
    if not rows:
        console().print(Text("No audiences in this workspace.", "dim"))
        return
    table = Table(title="Audiences", title_justify="left")
    table.add_column("name", style="bold")
    table.add_column("people", justify="right")
    table.add_column("persona")
    table.add_column("switched off", justify="right")
    table.add_column("feeds")
    table.add_column("filter", overflow="fold")
    for row in rows:
        table.add_row(
            Text(str(row["name"])),
            str(row["size"]),
            Text(str(row["persona"] or "")),
            str(row["exclusions_switched_off"]),
            Text(", ".join(row["sequences"])),
            Text(str(row["filter"] or "(everyone)")),
        )
    console().print(table)


def exclusions_view(name: str, affecting: list[AffectingExclusion]) -> Table:
    table = Table(title=f"Exclusions for audience {name!r}", title_justify="left")
    table.add_column("exclusion", style="bold")
    table.add_column("level")
    table.add_column("state")
    table.add_column("what it does", overflow="fold")
    for rule in affecting:
        table.add_row(
            Text(rule.name),
            rule.level,
            Text(rule.state.replace("_", " "), STATE_STYLES.get(rule.state, "")),
            Text(rule.note),
        )
    return table


@audience_app.command("exclusions")
def exclusions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The audience's name.")],
    json_output: JsonOption = False,
) -> None:
    """Every exclusion and what it does to enrollments from this audience.

    States: enforced (applies everywhere, cannot be switched off), applies, switched off
    by this audience, or disabled.
    """
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        affecting = audiences.affecting_exclusions(db, workspace_id=ws.id, audience=name)
    if json_output:
        emit_json({"audience": name, "exclusions": plain(affecting)})
        return
    if not affecting:
        console().print(Text("No exclusions in this workspace.", "dim"))
        return
    console().print(exclusions_view(name, affecting))


@audience_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The audience's name.")],
    filter_text: Annotated[
        str | None,
        typer.Option("--filter", help="Who is in it, as a people filter (default: everyone)."),
    ] = None,
    persona: Annotated[
        str | None, typer.Option("--persona", help="Only people who fit this persona (its name).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Add an audience: a people filter, a persona, or both, that sequences enroll from."""
    env = env_of(ctx)
    now = utcnow()
    with env.workspace() as (db, ws):
        audience_id = audiences.create(
            db, workspace_id=ws.id, name=name, now=now, filter=filter_text, persona=persona
        )
        spec = audiences.spec(db, workspace_id=ws.id, audience_id=audience_id)
        size = audiences.size(db, workspace_id=ws.id, audience=spec, now=now)
    data = {
        "name": spec.name,
        "filter": to_text(spec.filter) if spec.filter is not None else None,
        "persona": persona,
        "size": size,
    }
    if json_output:
        emit_json(data)
        return
    console().print(Text.assemble("Added audience ", (spec.name, "bold"), f": {size} people now."))


def _switch(ctx: typer.Context, audience: str, exclusion: str, *, off: bool) -> list[Any]:
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        switch = audiences.switch_off if off else audiences.switch_on
        switch(
            db,
            workspace_id=ws.id,
            audience=audience,
            exclusion=exclusion,
            actor=env.actor,
            now=utcnow(),
        )
        return list(audiences.affecting_exclusions(db, workspace_id=ws.id, audience=audience))


AudienceArgument = Annotated[str, typer.Argument(help="The audience's name.")]
ExclusionArgument = Annotated[str, typer.Argument(help="The exclusion's name.")]


@audience_app.command("switch-off")
def switch_off(
    ctx: typer.Context,
    audience: AudienceArgument,
    exclusion: ExclusionArgument,
    json_output: JsonOption = False,
) -> None:
    """Stop applying an exclusion to enrollments from this audience. An exclusion that
    applies to every sequence cannot be switched off."""
    affecting = _switch(ctx, audience, exclusion, off=True)
    if json_output:
        emit_json({"audience": audience, "exclusions": plain(affecting)})
        return
    console().print(
        Text.assemble(
            (exclusion, "bold"), " no longer applies to enrollments from ", (audience, "bold"), "."
        )
    )
    console().print(exclusions_view(audience, affecting))


@audience_app.command("switch-on")
def switch_on(
    ctx: typer.Context,
    audience: AudienceArgument,
    exclusion: ExclusionArgument,
    json_output: JsonOption = False,
) -> None:
    """Apply a switched-off exclusion to enrollments from this audience again."""
    affecting = _switch(ctx, audience, exclusion, off=False)
    if json_output:
        emit_json({"audience": audience, "exclusions": plain(affecting)})
        return
    console().print(
        Text.assemble(
            (exclusion, "bold"), " applies to enrollments from ", (audience, "bold"), " again."
        )
    )
    console().print(exclusions_view(audience, affecting))
