"""Malformed and hostile MIME (R34): a clear InvalidInput or a safe stored result, never
a crash and never a partial write, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.errors import InvalidInput
from optout.inbound import process_message
from tests.conftest import NOW
from tests.factories import World
from tests.inbound.helpers import MANIFEST, OPTIONS, corpus, readdress, row_of, sent_world

TABLES = (
    t.inbound_messages,
    t.events,
    t.suppressions,
    t.activities,
    t.inbound_soft_bounces,
    t.crm_writebacks,
)


def _counts(db: Connection) -> tuple[int, ...]:
    return tuple(
        int(db.scalar(sa.select(sa.func.count()).select_from(table)) or 0) for table in TABLES
    )


def _feed(db: Connection, raw: bytes) -> None:
    """Process `raw` in a savepoint: it either works, or raises InvalidInput having
    written nothing."""
    savepoint = db.begin_nested()
    try:
        before = _counts(db)
        try:
            result = process_message(db, raw=raw, now=NOW, source="fuzz", options=OPTIONS)
        except InvalidInput:
            assert _counts(db) == before
        else:
            row = row_of(db, result.id)
            assert row["raw_size"] == len(raw)
            assert row["kind"] == result.kind
    finally:
        savepoint.rollback()


@contextmanager
def _world(engine: Engine) -> Iterator[tuple[Connection, dict[str, str]]]:
    """A workspace with sent emails, in a transaction rolled back at the end."""
    with engine.connect() as db:
        transaction = db.begin()
        try:
            world = World(db, NOW, slug=f"fuzz-{uuid.uuid4().hex[:8]}")
            sent = sent_world(world, ["ann@acme.com", "dee@globex.io", "gus@globex.io"])
            yield db, sent.message_ids
        finally:
            transaction.rollback()


FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def test_R34_random_bytes_never_crash(engine: Engine) -> None:
    with _world(engine) as (db, _):

        @FUZZ
        @given(st.binary(max_size=3000) | st.binary(max_size=200).map(lambda b: b"From: x\n" + b))
        def check(raw: bytes) -> None:
            _feed(db, raw)

        check()


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.integers(0, 400)),
    st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=60)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(1, 300)),
)


def _mutate(raw: bytes, mutations: list[tuple[str, int, object]]) -> bytes:
    data = bytearray(raw)
    for kind, where, what in mutations:
        at = where % (len(data) + 1)
        if kind == "flip" and data:
            data[at % len(data)] = int(what)  # type: ignore[call-overload]
        elif kind == "cut":
            del data[at : at + int(what)]  # type: ignore[call-overload]
        elif kind == "insert":
            data[at:at] = bytes(what)  # type: ignore[call-overload]
        elif kind == "repeat":
            data[at:at] = data[at : at + int(what)] * 3  # type: ignore[call-overload]
    return bytes(data)


def test_R34_mutated_corpus_messages_never_crash(engine: Engine) -> None:
    with _world(engine) as (db, message_ids):

        @FUZZ
        @given(
            name=st.sampled_from(sorted(MANIFEST)),
            answer=st.sampled_from([None, *sorted(message_ids.values())]),
            mutations=st.lists(_mutation, max_size=6),
        )
        def check(name: str, answer: str | None, mutations: list[tuple[str, int, object]]) -> None:
            raw = corpus(name)
            if answer is not None:  # aim it at a real email, so the actions run too
                raw = readdress(raw, In_Reply_To=answer)
            _feed(db, _mutate(raw, mutations))

        check()


def _hostile() -> dict[str, bytes]:
    head = b"From: Ben <ben@acme.com>\r\nTo: sam@acme-sales.com\r\nSubject: Re: hi\r\n"
    nested = b"Content-Type: text/plain\r\n\r\nunsubscribe\r\n"
    for level in range(3000):
        b = b"x%d" % level
        nested = (
            b'Content-Type: multipart/mixed; boundary="'
            + b
            + b'"\r\n\r\n--'
            + b
            + b"\r\n"
            + nested
            + b"\r\n--"
            + b
            + b"--\r\n"
        )
    return {
        "huge header": head.replace(b"Subject: Re: hi", b"Subject: " + b"A" * 2_000_000)
        + b"\r\nbody",
        "many headers": head + b"X-Junk: 1\r\n" * 20_000 + b"\r\nbody",
        "deep nesting": head + nested,
        "no boundary": head + b"Content-Type: multipart/alternative\r\n\r\n--a\r\nhello\r\n",
        "wrong boundary": head
        + b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n--other\r\n\r\nhi\r\n',
        "nul bytes everywhere": head.replace(b"Re: hi", b"Re: \x00\x00hi")
        + b"X-Null: a\x00b\r\n\r\n\x00\x01\x02 binary \xff\xfe\x00",
        "8-bit headers": b"From: J\xfcrgen M\xfcller <j@acme.com>\r\nSubject: \xe4\xf6\xfc \xc3\x28"
        b"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xc3\x28 invalid utf-8\r\n",
        "bad encoded words": head.replace(b"Re: hi", b"=?utf-16?B?2D3eAA==?= =?x?Q?=ZZ?=")
        + b'Content-Type: text/plain; charset="utf-16"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n2D3eAA=====\r\n",
        "lone surrogate charset": head + b"Content-Type: text/plain; charset=utf-16-le\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nANg=\r\n",
        "broken delivery report": b"From: MAILER-DAEMON@x.example\r\nSubject: Undelivered\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        b"--r\r\nContent-Type: message/delivery-status\r\nContent-Transfer-Encoding: base64"
        b"\r\n\r\n!!!notbase64\r\n--r\r\nContent-Type: message/rfc822\r\n\r\n--r--\r\n",
        "endless html": head + b"Content-Type: text/html\r\n\r\n" + b"<div>" * 50_000,
        "broken base64 encoded word": head.replace(b"Re: hi", b"=?utf-8?B?abcde?=") + b"\r\nbody",
        "nul in the charset of 8-bit text": head
        + b'Content-Type: text/plain; charset="utf\x00-8"\r\n\r\n\xff\xfe body\r\n',
    }


@pytest.mark.parametrize("name", sorted(_hostile()))
def test_R34_hostile_messages_are_stored_safely(engine: Engine, name: str) -> None:
    raw = _hostile()[name]
    with _world(engine) as (db, _):
        result = process_message(db, raw=raw, now=NOW, source="hostile", options=OPTIONS)
        row = row_of(db, result.id)
        assert row["raw_size"] == len(raw)
        assert len(row["raw"]) <= OPTIONS.max_stored_bytes
        assert "\x00" not in row["subject"] + row["headers"] + row["new_text"]
        if name in ("deep nesting", "no boundary"):
            assert (result.kind, result.rule) == ("unclassified", "unreadable")
