"""`optout worker`: send due emails, once or in a loop (R26, R28)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from optout.cli.app import JsonOption, NowOption, app, moment, open_engine, shared_settings
from optout.cli.render import console, emit_json
from optout.sending.worker import Mailer, run_forever, run_once


@app.command("worker")
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="One pass over what is due, then exit.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be sent; send and change nothing.")
    ] = False,
    batch: Annotated[int, typer.Option("--batch", help="Emails claimed per transaction.")] = 200,
    poll: Annotated[float, typer.Option("--poll", help="Seconds between passes.")] = 5.0,
    now: NowOption = None,
    json_output: JsonOption = False,
) -> None:
    """Send due emails. Each is re-checked for eligibility when it is claimed.

    Mail goes where OPTOUT_TRANSPORT_URL says (default: .eml files in var/outbox).
    """
    engine = open_engine()
    settings = shared_settings(engine)
    mailer = Mailer.from_settings(settings)
    try:
        if once or dry_run:
            result = run_once(engine, mailer=mailer, now=moment(now), batch=batch, dry_run=dry_run)
            if json_output:
                emit_json(
                    {
                        "claimed": result.claimed,
                        "sent": result.sent,
                        "cancelled": result.cancelled,
                        "retrying": result.retrying,
                        "failed": result.failed,
                        "in_doubt": result.in_doubt,
                        "would_send": [
                            {"email_id": c.email_id, "to": c.person["email"], "subject": c.subject}
                            for c in result.would_send
                        ],
                    }
                )
                return
            out = console()
            if dry_run:
                table = Table("email", "to", "step subject")
                for item in result.would_send:
                    table.add_row(
                        str(item.email_id), Text(item.person["email"]), Text(item.subject)
                    )
                out.print(table)
                out.print(
                    f"Would send {len(result.would_send)}; {result.cancelled} would be "
                    "cancelled by the send-time check. Nothing was sent or changed."
                )
                return
            out.print(
                f"Sent {result.sent}, cancelled {result.cancelled} at the send-time check, "
                f"retrying {result.retrying}, failed {result.failed}"
                + (
                    f"; {result.in_doubt} in doubt (see `optout in-doubt list`)."
                    if result.in_doubt
                    else "."
                )
            )
            return
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        console(stderr=True).print(f"Worker running (every {poll:g} s); Ctrl-C stops it.")
        run_forever(engine, mailer=mailer, stop=stop, poll_seconds=poll, batch=batch)
    finally:
        mailer.transport.close()
        engine.dispose()
