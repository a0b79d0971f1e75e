"""`optout mailbox ...`: the sender mailboxes sequences send from, their daily limits,
gaps, time zones and transports (R37, R40), through the services the API uses."""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, env_of, moment
from optout.cli.render import console, emit_json, plain
from optout.config import encryption_keys_from
from optout.sending import drain
from optout.services.mailboxes import removal, reputation, sender_mailboxes
from optout.services.mailboxes.imap_logins import ImapLogin

mailbox_app = typer.Typer(
    no_args_is_help=True,
    help="Sender mailboxes: daily limits, gaps between sends, time zones, pauses.",
)
app.add_typer(mailbox_app, name="mailbox")

AddressArgument = Annotated[str, typer.Argument(help="The mailbox's address.")]
NameOption = Annotated[str | None, typer.Option("--name", help="Its display name in From.")]
SignatureOption = Annotated[
    str | None,
    typer.Option("--signature", help="Its signature, for templates as sender.signature."),
]
LimitOption = Annotated[
    int | None, typer.Option("--daily-limit", help="Emails it may send in one of its days.")
]
GapOption = Annotated[
    int | None, typer.Option("--gap", help="Seconds at least between two of its emails.")
]
JitterOption = Annotated[
    float | None,
    typer.Option("--jitter", help="A random share of the gap added each time (0 to 1)."),
]
ZoneOption = Annotated[
    str | None, typer.Option("--time-zone", help="Its time zone, e.g. Europe/Berlin.")
]
OwnerOption = Annotated[
    str | None, typer.Option("--owner", help="The member who owns it (their sign-in address).")
]
SmtpOption = Annotated[
    str | None,
    typer.Option(
        "--smtp",
        help="Its own mail server, smtp://user@host:587 (default: the shared relay). The "
        "password comes from OPTOUT_MAILBOX_SMTP_PASSWORD and is stored encrypted.",
    ),
]
ImapHostOption = Annotated[
    str | None,
    typer.Option(
        "--imap-host",
        help="The IMAP server its replies arrive at, read by `optout inbound mailboxes`. The "
        "password comes from OPTOUT_MAILBOX_IMAP_PASSWORD and is stored encrypted.",
    ),
]
ImapUserOption = Annotated[
    str | None, typer.Option("--imap-user", help="Its IMAP login (default: its address).")
]
ImapPortOption = Annotated[
    int | None, typer.Option("--imap-port", help="[default: 993 with TLS, else 143]")
]
ImapSslOption = Annotated[
    bool, typer.Option("--imap-ssl/--imap-no-ssl", help="IMAP over TLS (IMAPS).")
]
ImapFolderOption = Annotated[str, typer.Option("--imap-folder", help="The folder to read.")]


def _password() -> str | None:
    return os.environ.get("OPTOUT_MAILBOX_SMTP_PASSWORD") or None


def _imap(
    host: str | None, user: str | None, port: int | None, ssl: bool, folder: str, address: str
) -> ImapLogin | None:
    if host is None:
        return None
    return ImapLogin(
        host=host,
        user=user or address,
        password=os.environ.get("OPTOUT_MAILBOX_IMAP_PASSWORD") or None,
        port=port,
        ssl=ssl,
        folder=folder,
    )


def _show(box: sender_mailboxes.Mailbox, json_output: bool, verb: str) -> None:
    if json_output:
        emit_json(plain(box))
        return
    limit = "no daily limit" if box.daily_limit is None else f"{box.daily_limit} a day"
    state = "active" if box.status == "active" else f"paused: {box.pause_reason}"
    console().print(
        Text.assemble(
            f"{verb} ",
            (box.sender, "bold"),
            f": {limit}, at least {box.min_gap_seconds} s apart, {box.time_zone}, {state}.",
        )
    )


@mailbox_app.command("add")
def add(
    ctx: typer.Context,
    address: AddressArgument,
    name: NameOption = None,
    signature: SignatureOption = None,
    daily_limit: LimitOption = None,
    gap: GapOption = None,
    jitter: JitterOption = None,
    time_zone: ZoneOption = None,
    owner: OwnerOption = None,
    smtp: SmtpOption = None,
    imap_host: ImapHostOption = None,
    imap_user: ImapUserOption = None,
    imap_port: ImapPortOption = None,
    imap_ssl: ImapSslOption = True,
    imap_folder: ImapFolderOption = "INBOX",
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Add a sender mailbox (default: 50 a day, 90 s apart with up to 50% jitter, UTC)."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        box = sender_mailboxes.create(
            db,
            workspace_id=ws.id,
            address=address,
            display_name=name or "",
            signature=signature or "",
            daily_limit=sender_mailboxes.DEFAULT_DAILY_LIMIT
            if daily_limit is None
            else daily_limit,
            min_gap_seconds=sender_mailboxes.DEFAULT_GAP_SECONDS if gap is None else gap,
            gap_jitter=sender_mailboxes.DEFAULT_JITTER if jitter is None else jitter,
            time_zone=time_zone or "UTC",
            owner=owner,
            smtp_url=smtp,
            smtp_password=_password() if smtp else None,
            imap=_imap(imap_host, imap_user, imap_port, imap_ssl, imap_folder, address),
            keys=encryption_keys_from(os.environ),
            actor=env.actor,
            now=moment(now),
        )
    _show(box, json_output, "Added")


@mailbox_app.command("list")
def list_mailboxes(
    ctx: typer.Context, now: NowOption = None, json_output: JsonOption = False
) -> None:
    """Every mailbox: its limits, today's sends, what waits, paused or not and why."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        found = sender_mailboxes.listing(db, workspace_id=ws.id, now=moment(now))
    if json_output:
        emit_json([plain(m) for m in found])
        return
    table = Table("Mailbox", "Today", "Gap", "Time zone", "Waiting", "Sends via", "State")
    for m in found:
        today = f"{m.sent_today} of {m.daily_limit}" if m.daily_limit else f"{m.sent_today}"
        table.add_row(
            m.sender,
            today,
            f"{m.min_gap_seconds} s",
            m.time_zone,
            str(m.queued),
            "shared relay" if m.transport == sender_mailboxes.RELAY else m.transport,
            "active" if m.status == "active" else f"paused: {m.pause_reason}",
        )
    console().print(table)


@mailbox_app.command("capacity")
def capacity(ctx: typer.Context, now: NowOption = None, json_output: JsonOption = False) -> None:
    """Each mailbox's sends today, what is queued, and the day its queue will have gone out
    at these limits."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        found = drain.forecast(db, workspace_id=ws.id, now=moment(now))
    if json_output:
        emit_json(
            {
                "mailboxes": [
                    {**plain(c), "forecast": c.forecast(), "assuming": c.assumption()}
                    for c in found.mailboxes
                ],
                "totals": {**plain(found.totals), "forecast": found.totals.forecast()},
            }
        )
        return
    table = Table("Mailbox", "Sent today", "Queued", "Due now", "State", "Queue", "Assuming")
    for c in found.mailboxes:
        limit = f" of {c.daily_limit}" if c.daily_limit is not None else " (no limit)"
        table.add_row(
            c.address,
            f"{c.sent_today}{limit} ({c.today_text}, {c.time_zone})",
            str(c.queued),
            str(c.due_now),
            "sending" if not c.paused else f"paused: {c.pause_reason}",
            c.forecast(),
            c.assumption() if c.queued else "",
        )
    console().print(table)
    totals = found.totals
    paused = (
        f"; {totals.waiting_on_paused} wait on paused mailboxes" if totals.waiting_on_paused else ""
    )
    console().print(
        f"All {totals.mailboxes} mailboxes: {totals.sent_today} sent today, "
        f"{totals.queued} queued ({totals.due_now} due now), {totals.forecast()}{paused}."
    )
    console().print(
        "The forecast leaves out the follow-ups these emails will queue and people enrolled "
        "from now on: it is the earliest day at these limits."
    )


@mailbox_app.command("edit")
def edit(
    ctx: typer.Context,
    address: AddressArgument,
    new_address: Annotated[str | None, typer.Option("--address", help="Its new address.")] = None,
    name: NameOption = None,
    signature: SignatureOption = None,
    daily_limit: LimitOption = None,
    no_daily_limit: Annotated[
        bool, typer.Option("--no-daily-limit", help="Send without a daily limit.")
    ] = False,
    gap: GapOption = None,
    jitter: JitterOption = None,
    time_zone: ZoneOption = None,
    owner: OwnerOption = None,
    smtp: SmtpOption = None,
    shared_relay: Annotated[
        bool, typer.Option("--shared-relay", help="Send through the shared relay again.")
    ] = False,
    imap_host: ImapHostOption = None,
    imap_user: ImapUserOption = None,
    imap_port: ImapPortOption = None,
    imap_ssl: ImapSslOption = True,
    imap_folder: ImapFolderOption = "INBOX",
    no_imap: Annotated[
        bool, typer.Option("--no-imap", help="Forget its IMAP login (its replies stop coming in).")
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Change a mailbox; what is not given stays."""
    env = env_of(ctx)
    changes = sender_mailboxes.Changes(
        address=new_address,
        display_name=name,
        signature=signature,
        daily_limit=daily_limit,
        no_daily_limit=no_daily_limit,
        min_gap_seconds=gap,
        gap_jitter=jitter,
        time_zone=time_zone,
        owner=owner,
        smtp_url=smtp,
        smtp_password=_password() if smtp else None,
        shared_relay=shared_relay,
        imap=_imap(imap_host, imap_user, imap_port, imap_ssl, imap_folder, address),
        no_imap=no_imap,
    )
    with env.workspace() as (db, ws):
        box = sender_mailboxes.edit(
            db,
            workspace_id=ws.id,
            address=address,
            changes=changes,
            keys=encryption_keys_from(os.environ),
            actor=env.actor,
            now=moment(now),
        )
    _show(box, json_output, "Changed")


@mailbox_app.command("pause")
def pause(
    ctx: typer.Context,
    address: AddressArgument,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the audit log.")] = "",
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Stop a mailbox's sends; its emails wait in their place."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        box = sender_mailboxes.pause(
            db, workspace_id=ws.id, address=address, reason=reason, actor=env.actor, now=moment(now)
        )
    _show(box, json_output, "Paused")


@mailbox_app.command("resume")
def resume(
    ctx: typer.Context,
    address: AddressArgument,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Let a paused mailbox send again (written in the audit log)."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        box = sender_mailboxes.resume(
            db, workspace_id=ws.id, address=address, actor=env.actor, now=moment(now)
        )
    _show(box, json_output, "Resumed")


@mailbox_app.command("remove")
def remove(
    ctx: typer.Context,
    address: AddressArgument,
    move_to: Annotated[
        str | None,
        typer.Option(
            "--move-to",
            help="The mailbox its active enrollments (and its sequences) move to.",
        ),
    ] = None,
    round_robin: Annotated[
        bool,
        typer.Option(
            "--round-robin",
            help="Deal its active enrollments over the other mailboxes of their sequences. "
            "A mailbox with active enrollments needs this or --move-to.",
        ),
    ] = False,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Remove a mailbox."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        removed = removal.remove(
            db,
            workspace_id=ws.id,
            address=address,
            move_to=move_to,
            round_robin=round_robin,
            actor=env.actor,
            now=moment(now),
        )
    if json_output:
        emit_json(plain(removed))
        return
    moved = ""
    if removed.moved_to:
        moved = f"; {removed.enrollments_moved} enrollment(s) now send from {removed.moved_to}"
    elif removed.round_robin:
        moved = (
            f"; {removed.enrollments_moved} enrollment(s) were dealt over the other mailboxes "
            "of their sequences"
        )
    console().print(Text.assemble("Removed ", (removed.address, "bold"), f"{moved}."))


@mailbox_app.command("breaker")
def breaker(
    ctx: typer.Context,
    bounce_rate: Annotated[
        float | None,
        typer.Option("--bounce-rate", help="Pause a mailbox above this share of hard bounces."),
    ] = None,
    complaint_rate: Annotated[
        float | None,
        typer.Option("--complaint-rate", help="Pause a mailbox above this share of complaints."),
    ] = None,
    domain_complaint_rate: Annotated[
        float | None,
        typer.Option(
            "--domain-complaint-rate",
            help="Pause every mailbox of a sending domain above this share of complaints.",
        ),
    ] = None,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Show the lines that pause a mailbox (shares of its last 200 sends), or change them."""
    env = env_of(ctx)
    with env.workspace() as (db, ws):
        lines = reputation.set_lines(
            db,
            workspace_id=ws.id,
            actor=env.actor,
            now=moment(now),
            bounce_pause_rate=bounce_rate,
            complaint_pause_rate=complaint_rate,
            domain_complaint_pause_rate=domain_complaint_rate,
        )
    if json_output:
        emit_json(plain(lines))
        return
    console().print(
        f"A mailbox pauses above {lines.bounce_pause_rate:.1%} hard bounces or "
        f"{lines.complaint_pause_rate:.1%} spam complaints of its last {reputation.WINDOW} "
        f"sends; a whole sending domain above {lines.domain_complaint_pause_rate:.1%} "
        "complaints."
    )
