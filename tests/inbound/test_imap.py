"""The IMAP poller against a real IMAP server (Dovecot): unseen messages are processed,
marked seen only after their transaction committed, and never processed twice, also
across a restart or a crash between commit and the \\Seen flag (R5, R7, R34)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.inbound.imap import ImapAccount, ImapPoller
from tests.factories import World
from tests.inbound.helpers import OPTIONS, corpus, readdress, reply, sent_world
from tests.inbound.imap_server import Dovecot, dovecot_server
from tests.sending.smtp_server import HOST

T0 = datetime(2026, 11, 2, 9, 0)


@pytest.fixture
def imap_server() -> Iterator[Dovecot]:
    with dovecot_server() as server:
        yield server


def _poller(engine: Engine, server: Dovecot, **kw: int) -> ImapPoller:
    account = ImapAccount(HOST, server.port, server.user, server.password, ssl=False, timeout=10)
    return ImapPoller(
        engine, account=account, options=OPTIONS, clock=lambda: T0 + timedelta(hours=1), **kw
    )


def _seed(engine: Engine) -> tuple[dict[str, int], dict[str, str]]:
    with engine.begin() as db:
        s = sent_world(World(db, T0), ["ann@acme.com", "ben@acme.com", "dee@globex.io"])
        return s.ids, s.message_ids


def _statuses(engine: Engine) -> dict[int, str]:
    e = t.enrollments
    with engine.connect() as db:
        return {r.person_id: r.status for r in db.execute(sa.select(e.c.person_id, e.c.status))}


def _stored(engine: Engine) -> int:
    with engine.connect() as db:
        return int(db.scalar(sa.select(sa.func.count()).select_from(t.inbound_messages)) or 0)


def test_R5_R7_poller_processes_unseen_and_marks_them_seen(
    fresh_engine: Engine, imap_server: Dovecot
) -> None:
    ids, message_ids = _seed(fresh_engine)
    imap_server.append(
        reply(sender="ann@acme.com", body="Let's talk", in_reply_to=message_ids["ann"])
    )
    imap_server.append(
        readdress(corpus("ooo_exchange_english.eml"), In_Reply_To=message_ids["ben"])
    )
    imap_server.append(readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=message_ids["dee"]))
    imap_server.append(reply(sender="ben@acme.com", body="old, already read"), seen=True)
    result = _poller(fresh_engine, imap_server).poll_once()
    assert (result.fetched, result.processed, result.failed) == (3, 3, 0)
    assert [r.outcome for r in result.results] == ["replied", "auto_reply", "bounced"]
    assert imap_server.unseen() == []
    statuses = _statuses(fresh_engine)
    assert statuses[ids["ann"]] == "replied"
    assert statuses[ids["ben"]] == "in_progress"  # the seen message was left alone
    assert statuses[ids["dee"]] == "bounced"
    again = _poller(fresh_engine, imap_server).poll_once()
    assert again.fetched == 0


def test_R34_poller_resumes_after_restart_and_never_processes_twice(
    fresh_engine: Engine, imap_server: Dovecot
) -> None:
    ids, message_ids = _seed(fresh_engine)
    imap_server.append(reply(sender="ann@acme.com", body="Yes", in_reply_to=message_ids["ann"]))
    assert _poller(fresh_engine, imap_server).poll_once().processed == 1
    # Someone marks the message unread again: the folder cursor keeps it from coming back.
    imap_server.mark_unseen(1)
    assert _poller(fresh_engine, imap_server).poll_once().fetched == 0
    # A crash between the commit and the \Seen flag, and a lost cursor: the message comes
    # back, is recognized by its Message-ID and body, and is only marked this time.
    with fresh_engine.begin() as db:
        db.execute(t.inbound_mailboxes.delete())
    again = _poller(fresh_engine, imap_server).poll_once()
    assert (again.fetched, again.duplicates, again.processed) == (1, 1, 0)
    assert imap_server.unseen() == []
    assert _stored(fresh_engine) == 1
    with fresh_engine.connect() as db:
        replies = db.scalar(
            sa.select(sa.func.count()).where(
                t.events.c.kind == "reply_received", t.events.c.person_id == ids["ann"]
            )
        )
    assert replies == 1


def test_R34_not_a_message_is_marked_seen_and_skipped(
    fresh_engine: Engine, imap_server: Dovecot
) -> None:
    _seed(fresh_engine)
    imap_server.append(b"\x00\x01 garbage that is no message\r\n")
    imap_server.append(reply(sender="ann@acme.com", body="hi"))
    result = _poller(fresh_engine, imap_server, batch=10).poll_once()
    assert (result.fetched, result.rejected, result.processed) == (2, 1, 1)
    assert imap_server.unseen() == []
    assert _stored(fresh_engine) == 1


def _refuse_messages_from(engine: Engine, address: str) -> None:
    """A database that refuses to store one sender's messages (a failure on our side)."""
    with engine.begin() as db:
        if db.dialect.name == "sqlite":
            db.exec_driver_sql(
                "CREATE TRIGGER refuse BEFORE INSERT ON inbound_messages "
                f"WHEN NEW.from_address = '{address}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
            return
        db.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"IF NEW.from_address = '{address}' THEN RAISE EXCEPTION 'refused'; END IF; "
            "RETURN NEW; END $$"
        )
        db.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON inbound_messages "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )


def test_R34_a_message_that_fails_on_our_side_stays_unseen_and_holds_the_cursor(
    fresh_engine: Engine, imap_server: Dovecot
) -> None:
    """Messages go several to a transaction; when one fails, its transaction's messages
    are tried one by one: the others are done, the failed one stays unseen and the folder
    cursor stays before it, so the next pass takes it again."""
    ids, message_ids = _seed(fresh_engine)
    imap_server.append(reply(sender="ann@acme.com", body="Yes", in_reply_to=message_ids["ann"]))
    imap_server.append(reply(sender="ben@acme.com", body="No", in_reply_to=message_ids["ben"]))
    imap_server.append(readdress(corpus("bounce_postfix_dsn.eml"), In_Reply_To=message_ids["dee"]))
    _refuse_messages_from(fresh_engine, "ben@acme.com")
    first = _poller(fresh_engine, imap_server).poll_once()
    assert (first.fetched, first.processed, first.failed) == (3, 2, 1)
    assert imap_server.unseen() == [2]
    with fresh_engine.connect() as db:
        assert db.scalar(sa.select(t.inbound_mailboxes.c.last_uid)) == 1
    with fresh_engine.begin() as db:
        db.exec_driver_sql(
            "DROP TRIGGER refuse" + ("" if db.dialect.name == "sqlite" else " ON inbound_messages")
        )
    second = _poller(fresh_engine, imap_server).poll_once()
    assert (second.fetched, second.processed, second.failed) == (1, 1, 0)
    assert imap_server.unseen() == []
    statuses = _statuses(fresh_engine)
    assert (statuses[ids["ann"]], statuses[ids["ben"]], statuses[ids["dee"]]) == (
        "replied",
        "replied",
        "bounced",
    )
    assert _stored(fresh_engine) == 3
