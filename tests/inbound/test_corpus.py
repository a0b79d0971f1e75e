"""Every corpus message gets its expected class, by the expected rule (R4, R5, R7, R34).

The corpus (`corpus/*.eml`, expectations in `corpus/manifest.json`) holds the
shapes real clients and servers send: Gmail, Outlook and Apple Mail replies with
their quoting, out-of-office notes in four languages with the headers each system
sets, DSNs from Postfix, Exchange and Gmail, text bounces, and the hard cases.
"""

from __future__ import annotations

import pytest

from optout.inbound import Kind, classify, parse_message
from optout.inbound.dsn import delivery_report
from tests.inbound.helpers import CORPUS, MANIFEST, corpus


def _names(spec: str, *kinds: str) -> list[str]:
    return sorted(
        name
        for name, want in MANIFEST.items()
        if want["spec"] == spec and (not kinds or want["kind"] in kinds)
    )


def _check(name: str) -> None:
    verdict = classify(parse_message(corpus(name)))
    want = MANIFEST[name]
    assert (verdict.kind.value, verdict.rule) == (want["kind"], want["rule"]), verdict.evidence
    assert verdict.evidence  # every decision carries what it saw
    assert verdict.checks[-1].rule == verdict.rule
    assert all(not check.hit for check in verdict.checks[:-1])


def test_manifest_names_every_corpus_file() -> None:
    assert {p.name for p in CORPUS.glob("*.eml")} == set(MANIFEST)


@pytest.mark.parametrize("name", _names("R5"))
def test_R5_corpus_human_replies_are_replies(name: str) -> None:
    _check(name)


@pytest.mark.parametrize("name", _names("R4"))
def test_R4_corpus_unsubscribe_requests_and_hard_cases(name: str) -> None:
    _check(name)


@pytest.mark.parametrize("name", _names("R7", "auto_reply"))
def test_R7_corpus_auto_replies_are_not_replies(name: str) -> None:
    _check(name)


@pytest.mark.parametrize("name", _names("R7", "bounce"))
def test_R7_corpus_bounces_are_bounces(name: str) -> None:
    _check(name)


@pytest.mark.parametrize("name", _names("R34"))
def test_R34_corpus_hostile_messages_are_read_safely(name: str) -> None:
    _check(name)


def test_R4_quoted_footer_and_forwarded_text_never_reach_the_new_text() -> None:
    for name in (
        "reply_interested_quotes_footer.eml",
        "reply_interested_outlook_footer_unquoted.eml",
        "reply_forward_gmail.eml",
        "reply_outlook_german.eml",
        "reply_gmail_french.eml",
    ):
        text = classify(parse_message(corpus(name))).text.text.lower()
        assert "unsubscribe" not in text
        assert "remove me" not in text
        assert "abmel" not in text
        assert "sabonn" not in text
    forwarded = classify(parse_message(corpus("reply_forward_gmail.eml"))).text
    assert forwarded.forwarded
    assert forwarded.text == "Dana, looping you in — you own tooling decisions now."


@pytest.mark.parametrize(
    ("name", "address", "status", "severity", "original_message_id"),
    [
        ("bounce_postfix_dsn.eml", "dee@globex.io", "5.1.1", "permanent",
         "<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>"),
        ("bounce_exchange_dsn.eml", "ed@acme.com", "5.1.10", "permanent",
         "<3c2b1a09-8f7e-5d6c-9b5a-4f3e2d1c0b9a@acme-sales.com>"),
        ("bounce_gmail_dsn.eml", "fay@gmail.com", "5.1.1", "permanent",
         "<4d3c2b1a-0f9e-5d8c-8b7a-6f5e4d3c2b1a@acme-sales.com>"),
        ("bounce_postfix_delayed_dsn.eml", "cat@globex.io", "4.4.1", "delayed",
         "<5d7e9f10-1a2b-5c3d-8e4f-6a7b8c9d0e1f@acme-sales.com>"),
        ("bounce_mailbox_full_4xx_dsn.eml", "gus@globex.io", "4.2.2", "transient", ""),
        ("bounce_postfix_text_only.eml", "dee@globex.io", "5.1.1", "permanent",
         "<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>"),
        ("bounce_exchange_text_only.eml", "ed@acme.com", "5.1.1", "permanent",
         "<3c2b1a09-8f7e-5d6c-9b5a-4f3e2d1c0b9a@acme-sales.com>"),
        ("bounce_gmail_text_only.eml", "fay@gmail.com", "", "permanent", ""),
        ("bounce_qmail.eml", "dee@globex.io", "5.1.1", "permanent",
         "<6e5d4c3b-2a19-5087-96a5-b4c3d2e1f0a9@acme-sales.com>"),
        ("bounce_exim.eml", "pablo@initech.es", "5.1.1", "permanent",
         "<8d7c6b5a-4938-5271-a0b9-c8d7e6f5a4b3@acme-sales.com>"),
    ],
)  # fmt: skip
def test_R7_delivery_reports_name_the_failed_address_and_its_status(
    name: str, address: str, status: str, severity: str, original_message_id: str
) -> None:
    report = delivery_report(parse_message(corpus(name)))
    assert report is not None
    (recipient,) = report.recipients
    assert (recipient.address, recipient.status, recipient.severity) == (
        address,
        status,
        severity,
    )
    assert report.original_message_id == original_message_id


def test_R7_a_read_receipt_is_no_bounce_and_no_reply() -> None:
    verdict = classify(parse_message(corpus("auto_read_receipt.eml")))
    assert verdict.kind is Kind.AUTO_REPLY
    assert verdict.report is None
