"""`optout in-doubt ...`: emails the worker stopped on between handing them to the mail
server and recording its answer. They may or may not have arrived: a person releases
each (sent again with the same Message-ID) or cancels it."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, env_of, moment
from optout.cli.render import console, emit_json
from optout.services.enrollments import in_doubt

in_doubt_app = typer.Typer(
    no_args_is_help=True,
    help="Emails that may or may not have been delivered: release or cancel them.",
)
app.add_typer(in_doubt_app, name="in-doubt")

EmailArgument = Annotated[int, typer.Argument(help="The email's id (see `optout in-doubt list`).")]


@in_doubt_app.command("list")
def list_(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Emails in doubt, oldest first, with why and the Message-ID a re-send reuses."""
    with env_of(ctx).workspace() as (db, workspace):
        rows = in_doubt.listing(db, workspace_id=workspace.id)
        minutes = in_doubt.resend_minutes(db, workspace_id=workspace.id)
    if json_output:
        emit_json(
            {"items": [vars(row) for row in rows], "resend_after_minutes": minutes},
        )
        return
    out = console()
    policy = (
        "held until someone decides"
        if minutes is None
        else f"sent again automatically after {minutes} minutes"
    )
    if not rows:
        out.print(Text(f"No emails in doubt (they are {policy}).", "dim"))
        return
    table = Table(title=f"Emails in doubt ({policy})", title_justify="left")
    for column in ("id", "to", "sequence", "step", "in doubt since", "why"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            str(row.email_id),
            Text(row.to),
            Text(row.sequence),
            str(row.step),
            f"{row.in_doubt_at:%Y-%m-%d %H:%M}" if row.in_doubt_at else "",
            Text(row.reason),
        )
    out.print(table)


@in_doubt_app.command("release")
def release(
    ctx: typer.Context,
    email_id: EmailArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send the email again now, with the same Message-ID (checked for eligibility first)."""
    env = env_of(ctx)
    with env.workspace() as (db, workspace):
        in_doubt.release(
            db, workspace_id=workspace.id, email_id=email_id, actor=env.actor, now=moment(now)
        )
    if json_output:
        emit_json({"email_id": email_id, "status": "queued", "actor": env.actor})
        return
    console().print(f"Email {email_id} will be sent again by the next worker pass.")


@in_doubt_app.command("cancel")
def cancel(
    ctx: typer.Context,
    email_id: EmailArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Do not send the email again; its enrollment ends."""
    env = env_of(ctx)
    with env.workspace() as (db, workspace):
        in_doubt.cancel(
            db, workspace_id=workspace.id, email_id=email_id, actor=env.actor, now=moment(now)
        )
    if json_output:
        emit_json({"email_id": email_id, "status": "cancelled", "actor": env.actor})
        return
    console().print(f"Email {email_id} is cancelled and will not be sent.")


@in_doubt_app.command("policy")
def policy(
    ctx: typer.Context,
    resend_after: Annotated[
        int | None,
        typer.Option(
            "--resend-after",
            min=1,
            max=in_doubt.MAX_RESEND_MINUTES,
            help="Send emails in doubt again after this many minutes (a receiver may get "
            "one twice).",
        ),
    ] = None,
    hold: Annotated[
        bool, typer.Option("--hold", help="Hold emails in doubt until someone decides.")
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show, or set, what happens to emails in doubt: held (the default) or sent again."""
    env = env_of(ctx)
    if hold and resend_after is not None:
        raise typer.BadParameter("give --hold or --resend-after, not both")
    with env.workspace() as (db, workspace):
        if hold or resend_after is not None:
            in_doubt.set_resend_minutes(
                db,
                workspace_id=workspace.id,
                minutes=resend_after,
                actor=env.actor,
                now=moment(now),
            )
        minutes = in_doubt.resend_minutes(db, workspace_id=workspace.id)
    if json_output:
        emit_json({"resend_after_minutes": minutes})
        return
    console().print(
        "Emails in doubt are held until someone decides."
        if minutes is None
        else f"Emails in doubt are sent again after {minutes} minutes."
    )
