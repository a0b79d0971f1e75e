"""Commands about one person: opt-out, clear-opt-out (R33, also of a spam complaint, R36),
history (R35). `explain` (R29) has a module of its own, `optout.cli.explain`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from optout.audit_words import actor_words
from optout.cli.app import EmailArgument, JsonOption, NowOption, app, env_of, moment
from optout.cli.lookups import names_by_id
from optout.cli.render import console, emit_json, event_json, events_table, plain
from optout.db import tables as t
from optout.errors import InvalidInput, NotFound
from optout.normalize import normalize_email
from optout.services import events
from optout.services.directory import people
from optout.services.suppression import optouts


@app.command("opt-out")
def opt_out(
    ctx: typer.Context,
    email: EmailArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the audit log).")],
    channel: Annotated[
        str,
        typer.Option(
            "--channel", help=f"How the opt-out came in: {', '.join(sorted(optouts.CHANNELS))}."
        ),
    ] = "manual",
    now_at: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Opt an address out of all email, now and for any record that gets it later.

    Ends every active enrollment of the address and cancels its queued emails.
    """
    env = env_of(ctx)
    now = moment(now_at)
    with env.workspace() as (db, ws):
        holders = people.ids_by_email(db, workspace_id=ws.id, email=email)
        done = optouts.opt_out(
            db,
            workspace_id=ws.id,
            email=email,
            actor=env.actor,
            channel=channel,
            now=now,
            reason=reason,
        )
    if json_output:
        emit_json({**plain(done), "people": len(holders)})
        return
    out = console()
    if done.new:
        out.print(Text.assemble(("Opted out ", "bold"), done.email, f" (via {channel})."))
    else:
        out.print(Text(f"{done.email} had opted out already; recorded again.", "yellow"))
    out.print(
        f"Ended {done.enrollments_ended} active enrollment(s), "
        f"cancelled {done.emails_cancelled} queued email(s)."
    )
    if not holders:
        out.print(
            Text(
                "No person has this address yet: the opt-out applies to anyone who gets it.",
                "dim",
            )
        )


@app.command("clear-opt-out")
def clear_opt_out(
    ctx: typer.Context,
    email: EmailArgument,
    reason: Annotated[
        str, typer.Option("--reason", help="Why the opt-out is lifted (required, audited).")
    ],
    complaint: Annotated[
        bool,
        typer.Option(
            "--complaint",
            help="Clear the address's spam complaint instead of its opt-out (each is "
            "cleared on its own).",
        ),
    ] = False,
    now_at: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Lift an opt-out, or with --complaint a spam complaint: an explicit, audited act
    with a reason."""
    env = env_of(ctx)
    now = moment(now_at)
    kind, what = ("complaint", "spam complaint") if complaint else ("opt_out", "opt-out")
    if not reason.strip():
        article = "a" if complaint else "an"
        raise InvalidInput(f"clearing {article} {what} needs a reason (--reason)")
    with env.workspace() as (db, ws):
        optouts.clear_opt_out(
            db,
            workspace_id=ws.id,
            email=email,
            actor=env.actor,
            reason=reason,
            now=now,
            kind=kind,
        )
    address = normalize_email(email).address
    if json_output:
        emit_json(
            {
                "email": address,
                "kind": kind,
                "cleared": True,
                "reason": reason,
                "actor": env.actor,
            }
        )
        return
    console().print(
        Text.assemble((f"Cleared the {what} of ", "bold"), address, f" (reason: {reason}).")
    )


@app.command()
def history(ctx: typer.Context, email: EmailArgument, json_output: JsonOption = False) -> None:
    """Everything that happened to a person, oldest first.

    Also shows the opt-out, bounce and spam complaint ledger of their address.
    """
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        ids = people.ids_by_email(db, workspace_id=ws.id, email=email)
        ledger = optouts.ledger(db, workspace_id=ws.id, email=email)
        if not ids and not ledger:
            raise NotFound(
                f"no person and no opt-out with address {normalize_email(email).address}"
            )
        found = sorted(
            (e for i in ids for e in events.history(db, workspace_id=ws.id, person_id=i)),
            key=lambda e: (e.at, e.id),
        )
        names = {
            "sequence": names_by_id(
                db, t.sequences, workspace_id=ws.id, ids=(e.sequence_id for e in found)
            ),
            "exclusion": names_by_id(
                db, t.exclusions, workspace_id=ws.id, ids=(e.exclusion_id for e in found)
            ),
        }
    if json_output:
        emit_json({"events": [event_json(e, names) for e in found], "ledger": ledger})
        return
    out = console()
    if found:
        out.print(events_table(found, names))
    else:
        out.print(Text("No events for this person yet.", "dim"))
    if ledger:
        out.print(_ledger_table(ledger))


# What each suppression kind is called where people read it.
KIND_WORDS = {"opt_out": "opt-out", "bounce": "hard bounce", "complaint": "spam complaint"}


def _ledger_table(ledger: list[dict[str, Any]]) -> Table:
    table = Table(
        title="Opt-out, bounce and spam complaint ledger of the address", title_justify="left"
    )
    for column in ("when (UTC)", "action", "kind", "by", "channel", "reason"):
        table.add_column(column)
    for row in ledger:
        table.add_row(
            row["at"].strftime("%Y-%m-%d %H:%M:%S"),
            row["action"],
            KIND_WORDS.get(row["kind"], row["kind"]),
            Text(actor_words(str(row["actor"]))),
            row["channel"],
            Text(str(row["reason"] or "")),
        )
    return table
