"""Replies come back to the rep's own mailbox: the IMAP poller run over every sender
mailbox that has its own IMAP login (R37).

Each mailbox is read by an `ImapPoller` scoped to the mailbox's workspace, so a reply is
matched only among that workspace's emails, by `process_message` as every way in does.
A mailbox whose server fails is told and tried again next pass; the others go on. The
logins are read again at every pass, so a mailbox added or changed on the page is
polled from the next pass on, without a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from optout.clock import utcnow
from optout.errors import ConnectorError
from optout.inbound.imap import ImapAccount, ImapPoller, PollResult
from optout.inbound.process import DEFAULT_OPTIONS, InboundOptions
from optout.services.mailboxes import imap_logins

log = logging.getLogger("optout.inbound.mailboxes")


@dataclass(frozen=True)
class MailboxPoll:
    """One mailbox's pass: what its folder gave, or why it could not be read."""

    address: str
    workspace_id: int
    result: PollResult | None
    error: str = ""


def pollers(
    engine: Engine,
    *,
    keys: Sequence[str],
    options: InboundOptions = DEFAULT_OPTIONS,
    workspace_id: int | None = None,
    clock: Callable[[], datetime] = utcnow,
    timeout: float = 60.0,
) -> list[tuple[str, ImapPoller]]:
    """(address, poller) of every mailbox with an IMAP login, of one workspace or all."""
    with engine.connect() as db:
        logins = imap_logins.logins(db, keys=keys, workspace_id=workspace_id)
    return [
        (
            login.address,
            ImapPoller(
                engine,
                account=ImapAccount(
                    host=login.host,
                    port=login.port,
                    user=login.user,
                    password=login.password,
                    folder=login.folder,
                    ssl=login.ssl,
                    timeout=timeout,
                ),
                workspace_id=login.workspace_id,
                options=options,
                clock=clock,
            ),
        )
        for login in logins
    ]


def poll_once(
    engine: Engine,
    *,
    keys: Sequence[str],
    options: InboundOptions = DEFAULT_OPTIONS,
    workspace_id: int | None = None,
    clock: Callable[[], datetime] = utcnow,
    timeout: float = 60.0,
) -> list[MailboxPoll]:
    """One pass over every mailbox's folder, one mailbox after the other."""
    done: list[MailboxPoll] = []
    for address, poller in pollers(
        engine,
        keys=keys,
        options=options,
        workspace_id=workspace_id,
        clock=clock,
        timeout=timeout,
    ):
        scope = poller.workspace_id or 0
        try:
            done.append(MailboxPoll(address, scope, poller.poll_once()))
        except ConnectorError as exc:
            log.warning("%s: %s; trying again next pass", address, exc.message)
            done.append(MailboxPoll(address, scope, None, exc.message))
    return done


def run_forever(
    engine: Engine,
    stop: threading.Event,
    *,
    keys: Sequence[str],
    options: InboundOptions = DEFAULT_OPTIONS,
    workspace_id: int | None = None,
    interval: float = 60.0,
) -> None:
    """Pass after pass until `stop` is set; a failed pass is logged and retried."""
    while not stop.is_set():
        try:
            for polled in poll_once(engine, keys=keys, options=options, workspace_id=workspace_id):
                if polled.result is not None and polled.result.fetched:
                    log.info(
                        "%s: processed %s, duplicates %s, rejected %s, failed %s",
                        polled.address,
                        polled.result.processed,
                        polled.result.duplicates,
                        polled.result.rejected,
                        polled.result.failed,
                    )
        except Exception:
            log.exception("the pass over the mailboxes failed; trying again in %s s", interval)
        stop.wait(interval)
