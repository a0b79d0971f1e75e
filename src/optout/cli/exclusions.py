"""`optout exclusion ...`: add, list, show, preview, enable, disable, edit (R12-R22).

Filters are written in the text syntax (`optout.filters.parse`); a bad one prints the
InvalidFilter message with a caret under the position. A save that needs confirmation
(R22) prints its preview and the reasons, and exits 2 until re-run with --confirm.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, env_of, moment
from optout.cli.exclusion_saves import draft, pointing_at, save_exclusion
from optout.cli.render import (
    console,
    emit_json,
    exclusion_json,
    exclusions_table,
    preview_json,
    print_preview,
    toggles,
)
from optout.clock import utcnow
from optout.filters import Level, to_text
from optout.services import fresh_rules
from optout.services.exclusions import saves
from optout.services.exclusions.preview import preview

exclusion_app = typer.Typer(
    no_args_is_help=True,
    help="Exclusions: company- or people-level rules that keep people out of sequences.",
)
app.add_typer(exclusion_app, name="exclusion")

NameArgument = Annotated[str, typer.Argument(help="The exclusion's name.")]
LevelOption = Annotated[
    Level | None,
    typer.Option(
        "--level", help="company: exclude everyone at matching companies; people: only matches."
    ),
]
FilterOption = Annotated[
    str | None,
    typer.Option(
        "--filter",
        help="Filter in the text syntax, e.g. 'company.domain in (acme.com, globex.io)' "
        "(`optout exclusion fields` lists the fields).",
    ),
]
ConfirmOption = Annotated[
    bool, typer.Option("--confirm", help="Save even when it excludes or unenrolls many.")
]
FromSequencesToggle = Annotated[
    bool | None,
    typer.Option(
        "--exclude-from-sequences/--no-exclude-from-sequences",
        help="Also remove people who come to match mid-sequence, in every sequence, or "
        "only block new enrollments.",
        show_default=False,
    ),
]
UnenrollToggle = Annotated[
    bool | None,
    typer.Option(
        "--unenroll-existing-on-save/--no-unenroll-existing-on-save",
        help="On save, unenroll everyone it matches from active sequences and cancel their "
        "queued emails.",
        show_default=False,
    ),
]


@exclusion_app.command("add")
def add(
    ctx: typer.Context,
    name: NameArgument,
    level: Annotated[
        Level, typer.Option("--level", help="company (whole companies) or people (only matches).")
    ],
    filter_text: Annotated[
        str,
        typer.Option(
            "--filter",
            help="Filter in the text syntax, e.g. 'person.title = cto' "
            "(`optout exclusion fields` lists the fields).",
        ),
    ],
    exclude_from_sequences: Annotated[
        bool,
        typer.Option(
            "--exclude-from-sequences",
            help="Also remove people who come to match mid-sequence, in every sequence; no "
            "audience can switch it off. Without it, it only blocks new enrollments.",
        ),
    ] = False,
    unenroll_existing_on_save: Annotated[
        bool,
        typer.Option(
            "--unenroll-existing-on-save",
            help="On save, unenroll everyone it matches and cancel their queued emails.",
        ),
    ] = False,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Save it switched off (applies nowhere).")
    ] = False,
    confirm: ConfirmOption = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create an exclusion. Shows its impact; a mass exclusion needs --confirm."""
    with pointing_at(filter_text):
        save_exclusion(
            ctx,
            verb="Saved",
            json_output=json_output,
            now_at=now,
            save=lambda db, ws, actor, now: saves.create(
                db,
                workspace_id=ws,
                name=name,
                level=level,
                filter=filter_text,
                actor=actor,
                now=now,
                enabled=not disabled,
                exclude_from_sequences=exclude_from_sequences,
                unenroll_existing_on_save=unenroll_existing_on_save,
                confirm=confirm,
                unenroll_now=False,
            ),
            draft=lambda db, ws: draft(
                None,
                name=name,
                level=level,
                filter_text=filter_text,
                enabled=not disabled,
                exclude_from_sequences=exclude_from_sequences,
                unenroll_existing_on_save=unenroll_existing_on_save,
            ),
        )


@exclusion_app.command("edit")
def edit(
    ctx: typer.Context,
    name: NameArgument,
    level: LevelOption = None,
    filter_text: FilterOption = None,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename it.")] = None,
    exclude_from_sequences: FromSequencesToggle = None,
    unenroll_existing_on_save: UnenrollToggle = None,
    confirm: ConfirmOption = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change an exclusion's filter, level, name or toggles.

    A level change keeps the filter, which must fit the new level; nothing is
    reset. A change that would exclude or unenroll many needs --confirm.
    """
    with pointing_at(filter_text):
        save_exclusion(
            ctx,
            verb="Updated",
            json_output=json_output,
            now_at=now,
            save=lambda db, ws, actor, now: saves.update(
                db,
                workspace_id=ws,
                name=name,
                actor=actor,
                now=now,
                new_name=new_name,
                level=level,
                filter=filter_text,
                exclude_from_sequences=exclude_from_sequences,
                unenroll_existing_on_save=unenroll_existing_on_save,
                confirm=confirm,
                unenroll_now=False,
            ),
            draft=lambda db, ws: draft(
                saves.get(db, workspace_id=ws, name=name),
                name=new_name,
                level=level,
                filter_text=filter_text,
                exclude_from_sequences=exclude_from_sequences,
                unenroll_existing_on_save=unenroll_existing_on_save,
            ),
        )


def _switch(
    ctx: typer.Context,
    name: str,
    *,
    enabled: bool,
    confirm: bool,
    json_output: bool,
    now: str | None,
) -> None:
    save_exclusion(
        ctx,
        verb="Enabled" if enabled else "Disabled",
        json_output=json_output,
        now_at=now,
        save=lambda db, ws, actor, now: saves.set_enabled(
            db,
            workspace_id=ws,
            name=name,
            enabled=enabled,
            actor=actor,
            now=now,
            confirm=confirm,
            unenroll_now=False,
        ),
        draft=lambda db, ws: draft(saves.get(db, workspace_id=ws, name=name), enabled=enabled),
    )


@exclusion_app.command("enable")
def enable(
    ctx: typer.Context,
    name: NameArgument,
    confirm: ConfirmOption = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Switch an exclusion on (a mass exclusion needs --confirm)."""
    _switch(ctx, name, enabled=True, confirm=confirm, json_output=json_output, now=now)


@exclusion_app.command("disable")
def disable(
    ctx: typer.Context, name: NameArgument, now: NowOption = None, json_output: JsonOption = False
) -> None:
    """Switch an exclusion off: it applies nowhere until enabled again."""
    _switch(ctx, name, enabled=False, confirm=False, json_output=json_output, now=now)


@exclusion_app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Every exclusion with its toggles and how many people and companies it matches now."""
    env = env_of(ctx)
    now = utcnow()
    with env.workspace() as (db, ws):
        specs = fresh_rules.all_specs(db, workspace_id=ws.id)
        impacts = {s.id: preview(db, workspace_id=ws.id, exclusion=s, now=now) for s in specs}
    if json_output:
        emit_json(
            [
                {
                    **exclusion_json(s),
                    "people_matched": impacts[s.id].people_matched,
                    "companies_matched": impacts[s.id].companies_matched,
                }
                for s in specs
            ]
        )
        return
    if not specs:
        console().print(Text("No exclusions yet: `optout exclusion add --help`.", "dim"))
        return
    console().print(exclusions_table(specs, matched=impacts))


@exclusion_app.command("fields")
def fields(
    level: Annotated[
        Level | None,
        typer.Option("--level", help="Only the fields a company- or people-level filter takes."),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """The fields a filter can use: each by its name on the pages, and as a filter writes it."""
    from optout.cli.filter_fields import fields_json, fields_table

    if json_output:
        emit_json(fields_json(level))
        return
    console().print(fields_table(level))


@exclusion_app.command("show")
def show(
    ctx: typer.Context, name: NameArgument, now: NowOption = None, json_output: JsonOption = False
) -> None:
    """One exclusion: its filter, its toggles and its live impact."""
    env = env_of(ctx)
    at = moment(now)
    with env.workspace() as (db, ws):
        spec = saves.get(db, workspace_id=ws.id, name=name)
        impact = preview(db, workspace_id=ws.id, exclusion=spec, now=at)
    if json_output:
        emit_json({"exclusion": exclusion_json(spec), "preview": preview_json(impact)})
        return
    out = console()
    out.print(Text.assemble((spec.name, "bold"), f"  ({spec.level.value} level)"))
    out.print(Text.assemble(("filter: ", "bold"), to_text(spec.filter)))
    out.print(toggles(spec))
    print_preview(out, impact, spec=spec)


@exclusion_app.command("preview")
def preview_command(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A saved exclusion (optionally with changes).")
    ] = None,
    level: LevelOption = None,
    filter_text: FilterOption = None,
    exclude_from_sequences: FromSequencesToggle = None,
    unenroll_existing_on_save: UnenrollToggle = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """What an exclusion would match, before you save it.

    People and companies matched, their share, the active enrollments and queued emails a
    save removes, a sample, near-miss domains and warnings. Give --level and --filter for
    a new exclusion, or the NAME of a saved one (plus any changes to try).
    """
    env = env_of(ctx)
    at = moment(now)
    with pointing_at(filter_text), env.workspace() as (db, ws):
        base = saves.get(db, workspace_id=ws.id, name=name) if name else None
        spec = draft(
            base,
            level=level,
            filter_text=filter_text,
            exclude_from_sequences=exclude_from_sequences,
            unenroll_existing_on_save=unenroll_existing_on_save,
        )
        impact = preview(db, workspace_id=ws.id, exclusion=spec, now=at)
    if json_output:
        emit_json({"exclusion": exclusion_json(spec), "preview": preview_json(impact)})
        return
    out = console()
    out.print(
        Text.assemble(("Preview ", "bold"), f"({spec.level.value} level): ", to_text(spec.filter))
    )
    print_preview(out, impact, spec=spec)
