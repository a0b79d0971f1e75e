"""The send worker end to end on real databases, a real outbox and a real SMTP server
(R1, R3, R5-R7 groundwork, R26, R28)."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from email import policy
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.db import tables as t
from optout.sending.transports import OutboxTransport, SmtpTransport
from optout.sending.worker import Mailer, run_once
from optout.services import events
from optout.services.directory import people
from optout.services.sequences import definitions
from optout.services.suppression import optouts
from tests.factories import World
from tests.sending.smtp_server import Recorder, Refusing, RejectingData, smtp_server

KEYS = ("worker-test-secret-key-0123456789",)
T0 = datetime(2026, 11, 2, 9, 0)
STEPS = (
    definitions.Step(
        kind="email",
        subject="Quick question, {{ person.first_name | default('there') }}",
        body_text="Hi {{ person.first_name }}, how is {{ company.name }} doing?",
    ),
    definitions.Step(kind="wait", wait_seconds=2 * 86400),
    definitions.Step(kind="email", subject="Following up", body_text="Just checking in."),
)


@contextmanager
def committed(engine: Engine, now: datetime = T0) -> Iterator[World]:
    with engine.begin() as db:
        yield World(db, now)


def _settings(base_url: str = "https://links.example.com") -> Settings:
    return Settings(database_url="unused://", secret_keys=KEYS, base_url=base_url)


def _outbox_mailer(folder: Path) -> Mailer:
    return Mailer(_settings(), OutboxTransport(folder))


def _messages(folder: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for path in sorted(folder.glob("*.eml"))
    ]


def _statuses(engine: Engine, person_id: int) -> list[str]:
    e = t.enrollments
    with engine.connect() as db:
        return list(db.scalars(sa.select(e.c.status).where(e.c.person_id == person_id)))


def _build(engine: Engine) -> dict[str, int]:
    with committed(engine) as world:
        world.company("acme.com", "Acme Corp")
        ids = {
            "ann": world.person("ann@acme.com", company="acme.com", first_name="Ann"),
            "ben": world.person("ben@acme.com", company="acme.com", first_name="Ben"),
        }
        ids["seq"] = world.sequence("Outbound", steps=STEPS)
        world.enroll(ids["seq"], [ids["ann"], ids["ben"]])
        ids["ws"] = world.ws
    return ids


def test_R26_worker_sends_each_step_in_order_then_finishes(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    ids = _build(fresh_engine)
    mailer = _outbox_mailer(tmp_path)
    first = run_once(fresh_engine, mailer=mailer, now=T0)
    assert (first.claimed, first.sent, first.cancelled) == (2, 2, 0)
    messages = _messages(tmp_path)
    assert sorted(str(m["To"]) for m in messages) == ["Ann <ann@acme.com>", "Ben <ben@acme.com>"]
    ann = next(m for m in messages if "ann@" in str(m["To"]))
    assert ann["Subject"] == "Quick question, Ann"
    assert "how is Acme Corp doing?" in ann.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert _statuses(fresh_engine, ids["ann"]) == ["in_progress"]

    assert run_once(fresh_engine, mailer=mailer, now=T0 + timedelta(days=1)).sent == 0
    second = run_once(fresh_engine, mailer=mailer, now=T0 + timedelta(days=2))
    assert second.sent == 2
    assert [m["Subject"] for m in _messages(tmp_path)].count("Following up") == 2
    assert _statuses(fresh_engine, ids["ann"]) == ["finished"]
    with fresh_engine.connect() as db:
        kinds = [e.kind for e in events.history(db, workspace_id=ids["ws"], person_id=ids["ann"])]
        person = people.get(db, workspace_id=ids["ws"], person_id=ids["ann"])
    assert kinds == ["enrolled", "email_sent", "email_sent", "enrollment_finished"]
    assert person["last_emailed_at"] == T0 + timedelta(days=2)
    assert person["last_activity_at"] is None  # our own sends never count (R21)


def test_R28_at_most_one_email_per_enrollment_step(fresh_engine: Engine, tmp_path: Path) -> None:
    _build(fresh_engine)
    mailer = _outbox_mailer(tmp_path)
    run_once(fresh_engine, mailer=mailer, now=T0)
    again = run_once(fresh_engine, mailer=mailer, now=T0 + timedelta(minutes=1))
    assert (again.claimed, again.sent) == (0, 0)
    assert len(_messages(tmp_path)) == 2


def test_R3_sent_message_carries_working_unsubscribe_headers(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    _build(fresh_engine)
    run_once(fresh_engine, mailer=_outbox_mailer(tmp_path), now=T0)
    message = _messages(tmp_path)[0]
    header = str(message["List-Unsubscribe"])
    assert header.startswith("<https://links.example.com/u/")
    assert "<mailto:unsubscribe@" in header
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header[1 : header.index(">")]
    assert url in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "acme.com" not in url


def test_R1_opt_out_between_passes_stops_the_next_email_colleague_continues(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    ids = _build(fresh_engine)
    mailer = _outbox_mailer(tmp_path)
    run_once(fresh_engine, mailer=mailer, now=T0)
    with fresh_engine.begin() as db:
        optouts.opt_out(
            db,
            workspace_id=ids["ws"],
            email="ann@acme.com",
            actor="ann",
            channel="reply",
            now=T0 + timedelta(days=1),
        )
    result = run_once(fresh_engine, mailer=mailer, now=T0 + timedelta(days=2))
    assert result.sent == 1
    followups = [m for m in _messages(tmp_path) if m["Subject"] == "Following up"]
    assert [str(m["To"]) for m in followups] == ["Ben <ben@acme.com>"]
    assert _statuses(fresh_engine, ids["ann"]) == ["opted_out"]


def test_R28_dry_run_shows_what_would_be_sent_and_changes_nothing(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    ids = _build(fresh_engine)
    with fresh_engine.begin() as db:
        optouts.opt_out(
            db, workspace_id=ids["ws"], email="ben@acme.com", actor="a", channel="manual", now=T0
        )
    preview = run_once(fresh_engine, mailer=_outbox_mailer(tmp_path), now=T0, dry_run=True)
    assert [c.person["email"] for c in preview.would_send] == ["ann@acme.com"]
    assert list(tmp_path.glob("*.eml")) == []
    o = t.outbound_emails
    with fresh_engine.connect() as db:
        assert set(db.scalars(sa.select(o.c.status))) == {"queued", "cancelled"}


def test_R7_recipient_refused_permanently_is_a_hard_bounce(fresh_engine: Engine) -> None:
    ids = _build(fresh_engine)
    handler = Refusing(replies={"ben@acme.com": "550 5.1.1 <ben@acme.com>: user unknown"})
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5, retries=0)
        result = run_once(fresh_engine, mailer=Mailer(_settings(), transport), now=T0)
        transport.close()
    assert (result.sent, result.failed) == (1, 1)
    assert _statuses(fresh_engine, ids["ben"]) == ["bounced"]
    assert _statuses(fresh_engine, ids["ann"]) == ["in_progress"]
    s = t.suppressions
    with fresh_engine.connect() as db:
        rows = db.execute(sa.select(s.c.email, s.c.kind, s.c.reason)).all()
    assert [(r.email, r.kind) for r in rows] == [("ben@acme.com", "bounce")]
    assert "user unknown" in rows[0].reason


def test_R26_data_refusal_is_no_bounce_but_ends_the_enrollment_with_the_reason(
    fresh_engine: Engine,
) -> None:
    ids = _build(fresh_engine)
    with smtp_server(RejectingData()) as port:
        transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5, retries=0)
        result = run_once(fresh_engine, mailer=Mailer(_settings(), transport), now=T0)
        transport.close()
    assert (result.sent, result.failed) == (0, 2)
    assert _statuses(fresh_engine, ids["ann"]) == ["unenrolled"]
    e = t.enrollments
    with fresh_engine.connect() as db:
        reason = db.scalar(sa.select(e.c.end_reason).where(e.c.person_id == ids["ann"]))
        assert db.scalar(sa.select(sa.func.count()).select_from(t.suppressions)) == 0
    assert reason is not None
    assert "spam" in reason


def test_R26_worker_delivers_over_real_smtp(fresh_engine: Engine) -> None:
    _build(fresh_engine)
    handler = Recorder()
    with smtp_server(handler) as port:
        transport = SmtpTransport("127.0.0.1", port, security="none", timeout=5)
        result = run_once(fresh_engine, mailer=Mailer(_settings(), transport), now=T0)
        transport.close()
    assert result.sent == 2
    assert sorted(r.recipients[0] for r in handler.received) == ["ann@acme.com", "ben@acme.com"]
    assert all(
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in r.content for r in handler.received
    )


def test_R26_each_enrollment_gets_its_own_sequences_next_step(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    """Two sequences sending their first email in the same batch: each queues its own
    second step, never the other's."""
    with committed(fresh_engine) as world:
        ann = world.person("ann@acme.com", company="acme.com", first_name="Ann")
        first = world.sequence("First", steps=STEPS)
        second = world.sequence(
            "Second",
            steps=(
                definitions.Step(kind="email", subject="B one", body_text="B"),
                definitions.Step(kind="wait", wait_seconds=86400),
                definitions.Step(kind="email", subject="B two", body_text="B"),
            ),
        )
        world.enroll(first, [ann])
        world.enroll(second, [ann])
    run_once(fresh_engine, mailer=_outbox_mailer(tmp_path), now=T0)
    o, e, st = t.outbound_emails, t.enrollments, t.sequence_steps
    with fresh_engine.connect() as db:
        queued = db.execute(
            sa.select(e.c.sequence_id, st.c.sequence_id, st.c.subject)
            .join(e, e.c.id == o.c.enrollment_id)
            .join(st, st.c.id == o.c.step_id)
            .where(o.c.status == "queued")
            .order_by(e.c.sequence_id)
        ).all()
    assert [(row[0], row[1], row[2]) for row in queued] == [
        (first, first, "Following up"),
        (second, second, "B two"),
    ]
