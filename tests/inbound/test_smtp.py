"""The inbound SMTP listener over real SMTP (smtplib to aiosmtpd on 127.0.0.1): 250 after
the commit, 451 when storing fails, 552 over the size limit, 554 for no message."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.db import tables as t
from optout.db.engine import create_engine
from optout.errors import InvalidInput
from optout.inbound.smtp import DEFAULT_MAX_BYTES, InboundSmtpServer, parse_listen
from tests.factories import World
from tests.inbound.helpers import OPTIONS, TOKENS, reply, sent_world
from tests.sending.smtp_server import HOST, free_port

T0 = datetime(2026, 11, 2, 9, 0)


@contextmanager
def listening(engine: Engine, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[int]:
    port = free_port()
    server = InboundSmtpServer(
        engine,
        host=HOST,
        port=port,
        max_bytes=max_bytes,
        options=OPTIONS,
        clock=lambda: T0 + timedelta(hours=1),
    )
    with server:
        yield port


def _seed(engine: Engine) -> tuple[int, dict[str, int], dict[str, str]]:
    with engine.begin() as db:
        s = sent_world(World(db, T0))
        return s.ws, s.ids, s.message_ids


def _status(engine: Engine, person_id: int) -> str:
    e = t.enrollments
    with engine.connect() as db:
        return str(db.scalar(sa.select(e.c.status).where(e.c.person_id == person_id)))


def _send(
    port: int, raw: bytes, *, sender: str = "ann@acme.com", to: str = "sam@acme-sales.com"
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(HOST, port, timeout=10) as client:
        return client.sendmail(sender, [to], raw)


def test_R5_reply_over_smtp_is_committed_before_250(fresh_engine: Engine) -> None:
    _, ids, message_ids = _seed(fresh_engine)
    raw = reply(
        sender="Ann <ann@acme.com>",
        body="Yes, let's talk.",
        in_reply_to=message_ids["ann"],
        message_id="<smtp-1@client.example>",
    )
    with listening(fresh_engine) as port, smtplib.SMTP(HOST, port, timeout=10) as client:
        client.ehlo()
        client.mail("ann@acme.com")
        client.rcpt("sam@acme-sales.com")
        code, text = client.data(raw)
        assert code == 250
        assert b"reply, replied" in text
        assert _status(fresh_engine, ids["ann"]) == "replied"  # visible to others already
        # The sender retries after a lost 250: recognized, nothing done twice.
        client.mail("ann@acme.com")
        client.rcpt("sam@acme-sales.com")
        code, _ = client.data(raw)
        assert code == 250
    m = t.inbound_messages
    with fresh_engine.connect() as db:
        rows = db.execute(sa.select(m.c.source, m.c.raw)).all()
    assert len(rows) == 1
    assert rows[0].source == "smtp"
    assert rows[0].raw.startswith(b"Return-Path: <ann@acme.com>\r\nDelivered-To: sam@acme")
    assert _status(fresh_engine, ids["ben"]) == "in_progress"


def test_R4_verp_token_in_the_envelope_recipient_matches(fresh_engine: Engine) -> None:
    ws, ids, _ = _seed(fresh_engine)
    token = TOKENS.issue(workspace_id=ws, person_id=ids["ben"], email="ben@acme.com")
    raw = reply(sender="Ben <ben.private@example.org>", body="Please remove me.")
    with listening(fresh_engine) as port:
        _send(port, raw, sender="ben.private@example.org", to=f"sam+{token}@acme-sales.com")
    assert _status(fresh_engine, ids["ben"]) == "replied"
    x = t.suppressions
    with fresh_engine.connect() as db:
        assert db.execute(sa.select(x.c.email, x.c.kind)).all() == [("ben@acme.com", "opt_out")]


def test_R34_no_message_gets_554_and_nothing_is_stored(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    with listening(engine) as port, pytest.raises(smtplib.SMTPDataError) as refused:
        _send(port, b"\x00\x01 this is not a message")
    assert refused.value.smtp_code == 554
    assert b"not a MIME message" in refused.value.smtp_error


def test_R34_storage_failure_gets_451_so_the_sender_retries(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-tables.sqlite3'}")  # never migrated
    with listening(engine) as port, pytest.raises(smtplib.SMTPDataError) as deferred:
        _send(port, reply(sender="ann@acme.com", body="hello"))
    assert deferred.value.smtp_code == 451


def test_R34_messages_over_the_size_limit_get_552(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    big = reply(sender="ann@acme.com", body="x" * 70 + ("\n" + "y" * 70) * 100)
    with listening(engine, max_bytes=4096) as port, smtplib.SMTP(HOST, port, timeout=10) as c:
        c.ehlo()
        assert c.has_extn("size")
        c.esmtp_features.pop("size")  # a client that ignores SIZE: refused after DATA
        c.mail("ann@acme.com")
        c.rcpt("sam@acme-sales.com")
        code, _ = c.data(big)
    assert code == 552


def test_listen_address_is_parsed_and_checked() -> None:
    assert parse_listen("127.0.0.1:2525") == ("127.0.0.1", 2525)
    assert parse_listen("[::1]:25") == ("::1", 25)
    for bad in ("2525", "host:", "host:99999", ":25"):
        with pytest.raises(InvalidInput):
            parse_listen(bad)


def test_R5_many_senders_at_once_each_answered_after_the_commit(fresh_engine: Engine) -> None:
    """Twelve replies and a message that is none, sent at the same moment on thirteen
    connections: the messages that wait go together, and each sender still gets its own
    answer, after the commit."""
    names = [f"rep{n}" for n in range(12)]
    with fresh_engine.begin() as db:
        s = sent_world(World(db, T0), [f"{name}@acme.com" for name in names])
    raws = [
        reply(sender=f"{name}@acme.com", body="Yes.", in_reply_to=s.message_ids[name])
        for name in names
    ]

    def send(raw: bytes) -> int:
        try:
            _send(port, raw)
        except smtplib.SMTPDataError as refused:
            return refused.smtp_code
        return 250

    with listening(fresh_engine) as port, ThreadPoolExecutor(max_workers=13) as pool:
        codes = list(pool.map(send, [*raws, b"\x00\x01 not a message"]))
    assert codes == [250] * 12 + [554]
    assert {_status(fresh_engine, s.ids[name]) for name in names} == {"replied"}
    m = t.inbound_messages
    with fresh_engine.connect() as db:
        assert db.scalar(sa.select(sa.func.count()).where(m.c.outcome == "replied")) == 12
