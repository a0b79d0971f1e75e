"""Feedback-loop reports read from the shapes providers send (R36): ARF (RFC 5965) from
the RFC's own examples, Yahoo, AOL/Verizon and RFC 9477 redacted reports, and
Microsoft's JMRP; a not-spam report and a DMARC failure report are no complaints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optout.inbound import Kind, classify, parse_message
from optout.inbound.arf import feedback_report
from optout.inbound.classify import RULES

ARF = Path(__file__).parent / "corpus" / "arf"
SAMPLES: dict[str, dict[str, Any]] = json.loads((ARF / "manifest.json").read_text())


def sample(name: str) -> bytes:
    return (ARF / name).read_bytes()


def test_manifest_names_every_sample() -> None:
    assert {p.name for p in ARF.glob("*.eml")} == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_R36_each_sample_is_read_as_its_provider_sent_it(name: str) -> None:
    want = SAMPLES[name]
    verdict = classify(parse_message(sample(name)))
    assert (verdict.kind.value, verdict.rule) == (want["kind"], want["rule"]), verdict.evidence
    assert all(not check.hit for check in verdict.checks[:-1])
    report = verdict.feedback
    assert report is not None
    assert report.format == want["format"]
    assert report.feedback_type == want["feedback_type"]
    assert report.reporting_domain == want["reporting_domain"]
    assert report.redacted is want["redacted"]
    assert list(report.recipients) == want["recipients"]
    expected_id = want["message_id"] if want["message_id"].startswith("<") else ""
    assert report.message_id == expected_id
    assert report.cfbl_feedback_id == ("SAMPLE-FEEDBACK-ID" if want["feedback_id"] else "")


def test_R36_the_optional_fields_of_rfc5965_are_kept() -> None:
    report = feedback_report(parse_message(sample("rfc5965_b2_optional_fields.eml")))
    assert report is not None
    assert (report.user_agent, report.version) == ("SomeGenerator/1.0", "1")
    assert report.reporting_mta == "mail.example.com"
    assert report.source_ip == "192.0.2.1"
    assert report.original_mail_from == "somespammer@example.net"
    assert report.arrival_date == "Thu, 8 Mar 2005 14:00:00 EDT"
    assert report.reported_domains == ("example.net",)


def test_R36_a_complaint_outranks_the_bounce_and_reply_rules() -> None:
    names = [rule.name for rule in RULES]
    assert names.index("feedback_report") < names.index("delivery_status")
    assert names.index("other_feedback") < names.index("delivery_status")
    # The returned copy carries our List-Unsubscribe mailto and a reply subject: never
    # read as an unsubscribe request or a reply.
    verdict = classify(parse_message(sample("yahoo_cfl.eml")))
    assert verdict.kind is Kind.COMPLAINT


@pytest.mark.parametrize(
    "local", ["redacted", "xxxxxxxx", "XXXXXXXXXX", "hashed", "***", "redacted.user"]
)
def test_R36_redacted_recipients_are_no_address(local: str) -> None:
    raw = sample("rfc5965_b2_optional_fields.eml").replace(
        b"Original-Rcpt-To: <user@example.com>", f"Original-Rcpt-To: {local}@example.com".encode()
    )
    raw = raw.replace(b"Removal-Recipient: user@example.com\n", b"")
    report = feedback_report(parse_message(raw))
    assert report is not None
    assert (report.recipients, report.redacted) == ((), True)


def test_R36_jmrp_needs_a_microsoft_sender() -> None:
    forwarded = sample("microsoft_jmrp.eml").replace(
        b"From: staff@hotmail.com", b"From: someone@acme.com"
    )
    assert feedback_report(parse_message(forwarded)) is None
    assert classify(parse_message(forwarded)).kind is not Kind.COMPLAINT


def test_R36_a_report_forwarded_inside_another_message_is_not_a_report_to_us() -> None:
    inner = sample("rfc5965_b2_optional_fields.eml")
    wrapped = (
        b"From: Ann <ann@acme.com>\nTo: sam@acme-sales.com\nSubject: Fwd: look at this\n"
        b"MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n\n"
        b"--outer\nContent-Type: text/plain\n\nWhat is this?\n\n"
        b"--outer\nContent-Type: message/rfc822\n\n" + inner + b"\n--outer--\n"
    )
    verdict = classify(parse_message(wrapped))
    assert verdict.kind is Kind.REPLY
    assert verdict.feedback is None


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("Abuse", "abuse"),
        ("fraud", "fraud"),
        ("", "abuse"),
        ("opt-out", "opt-out"),
        ("!?", "other"),
    ],
)
def test_R36_feedback_types_are_read_as_tokens(written: str, read: str) -> None:
    raw = sample("rfc5965_b1_simple.eml").replace(
        b"Feedback-Type: abuse", f"Feedback-Type: {written}".encode()
    )
    report = feedback_report(parse_message(raw))
    assert report is not None
    assert report.feedback_type == read
