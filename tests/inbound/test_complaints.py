"""Spam complaints through the real inbound path on both databases (R36, R31, R35):
each provider's report suppresses the person it is about, ends their enrollments,
cancels their queued email and queues the CRM write-back, in the transaction that
stores the report; a redacted report still finds the person by the CFBL-Feedback-ID,
a forged one finds nobody, and a not-spam report suppresses nothing."""

from __future__ import annotations

import base64
import smtplib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from optout.db import tables as t
from optout.inbound import InboundResult, process_message
from optout.mail.feedback_ids import FeedbackIds
from optout.services import events
from optout.services.suppression import writebacks
from tests.factories import World
from tests.inbound.helpers import OPTIONS, TOKENS, Sent1, row_of, sent_world
from tests.inbound.test_arf import SAMPLES, sample
from tests.inbound.test_smtp import T0, listening
from tests.sending.smtp_server import HOST

COMPLAINTS = sorted(
    name for name, want in SAMPLES.items() if want["kind"] == "complaint" and name != "not_spam.eml"
)
FOREIGN_ID = "<not-one-of-ours@elsewhere.example>"


def email_of(db: Connection, person_id: int) -> tuple[int, str]:
    """The id and Message-ID of the email a person was sent."""
    o = t.outbound_emails
    row = db.execute(
        sa.select(o.c.id, o.c.message_id).where(o.c.person_id == person_id, o.c.status == "sent")
    ).one()
    return int(row.id), str(row.message_id)


def feedback_id(s: Sent1, name: str) -> str:
    email_id, _ = email_of(s.world.db, s.ids[name])
    return TOKENS.feedback_ids.issue(workspace_id=s.ws, sequence_id=s.seq, email_id=email_id)


def report(
    s: Sent1,
    sample_name: str,
    name: str,
    *,
    message_id: str | None = None,
    cfbl_id: str | None = None,
) -> bytes:
    """A sample report about the email `name` was sent: its Message-ID, address and
    CFBL-Feedback-ID in place of the sample's."""
    want = SAMPLES[sample_name]
    raw = sample(sample_name)
    address = s.world.db.scalar(sa.select(t.people.c.email).where(t.people.c.id == s.ids[name]))
    ours = email_of(s.world.db, s.ids[name])[1]
    raw = raw.replace(want["message_id"].encode(), (message_id or ours).encode())
    if want["recipient"]:
        raw = raw.replace(want["recipient"].encode(), str(address).encode())
    return raw.replace(b"SAMPLE-FEEDBACK-ID", (cfbl_id or feedback_id(s, name)).encode())


def process(s: Sent1, raw: bytes) -> InboundResult:
    return process_message(
        s.world.db, raw=raw, now=s.world.now + timedelta(hours=3), source="test", options=OPTIONS
    )


def suppressions(s: Sent1) -> list[tuple[str, str]]:
    x = t.suppressions
    rows = s.world.db.execute(sa.select(x.c.email, x.c.kind).where(x.c.workspace_id == s.ws))
    return sorted((r.email, r.kind) for r in rows)


def queued(s: Sent1, name: str) -> int:
    o = t.outbound_emails
    return int(
        s.world.db.scalar(
            sa.select(sa.func.count()).where(o.c.person_id == s.ids[name], o.c.status == "queued")
        )
    )


def complained_flag(s: Sent1, name: str) -> bool:
    p = t.people
    return bool(s.world.db.scalar(sa.select(p.c.complained).where(p.c.id == s.ids[name])))


@pytest.mark.parametrize("sample_name", COMPLAINTS)
def test_R36_each_providers_complaint_suppresses_the_person(world: World, sample_name: str) -> None:
    s = sent_world(world)
    assert queued(s, "ann") == 1  # step 2 is waiting
    result = process(s, report(s, sample_name, "ann"))
    assert (result.kind, result.rule, result.outcome) == (
        "complaint",
        "feedback_report",
        "complained",
    )
    assert result.person_id == s.ids["ann"]
    assert suppressions(s) == [("ann@acme.com", "complaint")]
    assert complained_flag(s, "ann")
    assert s.status("ann") == "opted_out"
    assert queued(s, "ann") == 0
    assert [w.email for w in writebacks.pending_writebacks(world.db, workspace_id=s.ws)] == [
        "ann@acme.com"
    ]
    # Only the person complained about: a colleague goes on.
    assert (s.status("ben"), queued(s, "ben")) == ("in_progress", 1)
    kinds = [e.kind for e in events.history(world.db, workspace_id=s.ws, person_id=s.ids["ann"])]
    assert {"complaint_received", "complained"} <= set(kinds)
    received = next(
        e
        for e in events.history(world.db, workspace_id=s.ws, person_id=s.ids["ann"])
        if e.kind == "complaint_received"
    )
    assert (received.email_id, received.sequence_id) == (result.email_id, s.seq)
    stored = row_of(world.db, result.id)
    assert (stored["kind"], stored["outcome"], stored["person_id"]) == (
        "complaint",
        "complained",
        s.ids["ann"],
    )
    complaint = stored["evidence"]["complaint"]
    assert complaint["feedback_type"] == "abuse"
    assert complaint["reporting_domain"] == SAMPLES[sample_name]["reporting_domain"]
    assert complaint["matched_by"] == result.match_by
    # The CFBL-Feedback-ID is checked first where the report carries one.
    assert result.match_by == (
        "cfbl_feedback_id" if SAMPLES[sample_name]["feedback_id"] else "report_message_id"
    )


def test_R36_the_same_report_twice_changes_nothing_the_second_time(world: World) -> None:
    s = sent_world(world)
    raw = report(s, "yahoo_cfl.eml", "ann")
    first = process(s, raw)
    again = process(s, raw)
    assert (again.duplicate, again.id) == (True, first.id)
    assert suppressions(s) == [("ann@acme.com", "complaint")]


def test_R36_a_redacted_report_is_matched_by_the_cfbl_feedback_id(world: World) -> None:
    s = sent_world(world)
    # Recipient redacted, and a Message-ID a relay rewrote: only the CFBL id is left.
    result = process(s, report(s, "cfbl_redacted_headers_only.eml", "ben", message_id=FOREIGN_ID))
    assert (result.outcome, result.match_by, result.person_id) == (
        "complained",
        "cfbl_feedback_id",
        s.ids["ben"],
    )
    assert suppressions(s) == [("ben@acme.com", "complaint")]
    assert s.status("ann") == "in_progress"


def test_R36_a_redacted_report_without_a_cfbl_id_is_matched_by_message_id(world: World) -> None:
    s = sent_world(world)
    raw = report(s, "aol_verizon_redacted.eml", "ben").replace(b"CFBL-Feedback-ID", b"X-Dropped")
    result = process(s, raw)
    assert (result.outcome, result.match_by, result.person_id) == (
        "complained",
        "report_message_id",
        s.ids["ben"],
    )


def _altered(value: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[-1] ^= 0x55
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


@pytest.mark.parametrize("forgery", ["invented", "altered", "other_keys"])
def test_R36_a_forged_cfbl_feedback_id_matches_nobody(world: World, forgery: str) -> None:
    s = sent_world(world)
    email_id, _ = email_of(world.db, s.ids["ann"])
    value = {
        "invented": "A" * 50,
        "altered": _altered(feedback_id(s, "ann")),
        "other_keys": FeedbackIds(["an-attackers-own-secret-0123456789"]).issue(
            workspace_id=s.ws, sequence_id=s.seq, email_id=email_id
        ),
    }[forgery]
    raw = report(s, "cfbl_redacted_headers_only.eml", "ann", message_id=FOREIGN_ID, cfbl_id=value)
    result = process(s, raw)
    assert (result.kind, result.outcome, result.match_by) == ("complaint", "unmatched", None)
    assert "CFBL-Feedback-ID" in result.reason
    assert suppressions(s) == []
    assert s.status("ann") == "in_progress"
    assert row_of(world.db, result.id)["evidence"]["complaint"]["matched_by"] is None


def test_R36_a_cfbl_id_of_another_sequence_does_not_verify(world: World) -> None:
    s = sent_world(world)
    email_id, _ = email_of(world.db, s.ids["ann"])
    wrong = TOKENS.feedback_ids.issue(workspace_id=s.ws, sequence_id=s.seq + 1, email_id=email_id)
    raw = report(s, "cfbl_redacted_headers_only.eml", "ann", message_id=FOREIGN_ID, cfbl_id=wrong)
    assert process(s, raw).outcome == "unmatched"
    assert suppressions(s) == []


def test_R36_a_report_about_an_email_we_never_sent_changes_nothing(world: World) -> None:
    s = sent_world(world)
    raw = sample("rfc5965_b2_optional_fields.eml")  # somebody else's spam, to strangers
    result = process(s, raw)
    assert (result.kind, result.outcome) == ("complaint", "unmatched")
    assert suppressions(s) == []


def test_R36_the_complaining_address_matches_when_nothing_else_does(world: World) -> None:
    s = sent_world(world)
    raw = report(s, "microsoft_jmrp.eml", "ben", message_id=FOREIGN_ID).replace(
        b"CFBL-Feedback-ID", b"X-Dropped"
    )
    result = process(s, raw)
    assert (result.outcome, result.match_by, result.person_id) == (
        "complained",
        "complainant",
        s.ids["ben"],
    )


def test_R36_not_spam_is_recorded_and_suppresses_nothing(world: World) -> None:
    s = sent_world(world)
    result = process(s, report(s, "not_spam.eml", "ann"))
    assert (result.kind, result.outcome, result.person_id) == (
        "complaint",
        "not_spam",
        s.ids["ann"],
    )
    assert suppressions(s) == []
    assert (s.status("ann"), queued(s, "ann")) == ("in_progress", 1)
    assert writebacks.pending_writebacks(world.db, workspace_id=s.ws) == []
    kinds = [e.kind for e in events.history(world.db, workspace_id=s.ws, person_id=s.ids["ann"])]
    assert "not_spam_reported" in kinds
    stored = row_of(world.db, result.id)
    assert (stored["kind"], stored["outcome"]) == ("complaint", "not_spam")
    assert stored["evidence"]["complaint"]["feedback_type"] == "not-spam"


def test_R36_a_dmarc_failure_report_is_no_complaint(world: World) -> None:
    s = sent_world(world)
    result = process(s, report(s, "dmarc_auth_failure.eml", "ann"))
    assert (result.kind, result.rule) == ("unclassified", "other_feedback")
    assert suppressions(s) == []
    assert s.status("ann") == "in_progress"


def test_R36_a_complaint_over_the_smtp_listener_is_committed_before_250(
    fresh_engine: Engine,
) -> None:
    with fresh_engine.begin() as db:
        s = sent_world(World(db, T0))
        raw = report(s, "aol_verizon_redacted.eml", "ann").replace(b"\n", b"\r\n")  # SMTP
        ws, ann, ben = s.ws, s.ids["ann"], s.ids["ben"]
    with listening(fresh_engine) as port, smtplib.SMTP(HOST, port, timeout=10) as client:
        client.ehlo()
        client.mail("scomp@aol.net")
        client.rcpt("unsubscribe@acme-sales.com")
        code, text = client.data(raw)
        assert (code, text) == (250, b"2.0.0 Accepted: complaint, complained")
        with fresh_engine.connect() as db:  # committed before the 250: others see it
            e, x = t.enrollments, t.suppressions
            statuses = dict(db.execute(sa.select(e.c.person_id, e.c.status)).all())
            suppressed = db.execute(sa.select(x.c.email, x.c.kind)).all()
            pending = writebacks.pending_writebacks(db, workspace_id=ws)
    assert statuses == {ann: "opted_out", ben: "in_progress"}
    assert suppressed == [("ann@acme.com", "complaint")]
    assert [w.email for w in pending] == ["ann@acme.com"]
