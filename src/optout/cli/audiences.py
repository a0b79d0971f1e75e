"""`optout audience ...`: the audiences with their sizes, and for one audience every
exclusion with what it does to enrollments from it (R30)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, app, env_of
from optout.cli.lookups import audience_rows
from optout.cli.render import console, emit_json, plain
from optout.clock import utcnow
from optout.filters import to_text
from optout.services import audiences
from optout.services.audiences import AffectingExclusion

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
