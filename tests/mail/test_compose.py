"""The outbound message: RFC 5322 on the wire, unsubscribe headers (R3), validated input (R34)."""

from __future__ import annotations

import email
import re
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.charset import QP, Charset
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optout.errors import InvalidInput
from optout.mail.compose import compose, new_message_id
from optout.mail.templates import Rendered

NOW = datetime(2026, 11, 2, 9, 0, 0)
URL = "https://optout.example.com/u/" + "T" * 180
MAILTO = "mailto:unsubscribe@vendor.com?subject=unsubscribe%20abc"
FEEDBACK_ADDRESS = "unsubscribe@vendor.com"
FEEDBACK_ID = "AbCdEf0123456789_-AbCdEf0123456789_-AbCdEf0123456789"
RENDERED = Rendered(
    subject="Grüße, Ada — quick question",
    text="Hi Ada,\n\nA line with ümlauts and a long one " + "x" * 120 + "\n\nUnsubscribe: " + URL,
    html='<p>Hi Ada, ümlauts</p>\n<p><a href="' + URL + '">Unsubscribe</a></p>\n',
)


def _compose(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "rendered": RENDERED,
        "from_address": "sam@vendor.com",
        "reply_to": "replies@vendor.com",
        "to_address": "ada@acme.com",
        "unsubscribe_url": URL,
        "unsubscribe_mailto": MAILTO,
        "feedback_address": FEEDBACK_ADDRESS,
        "feedback_id": FEEDBACK_ID,
        "message_id": "<0f1e2d3c@vendor.com>",
        "now": NOW,
        "dkim": None,
    }
    arguments.update(changes)
    return compose(**arguments)


def _parse(wire: bytes) -> EmailMessage:
    message = email.message_from_bytes(wire, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_R3_message_has_list_unsubscribe_headers() -> None:
    message = _parse(_compose())
    assert message.get_all("List-Unsubscribe") == [f"<{URL}>, <{MAILTO}>"]
    assert message.get_all("List-Unsubscribe-Post") == ["List-Unsubscribe=One-Click"]


def test_R3_long_unsubscribe_uri_is_sent_verbatim_not_encoded() -> None:
    wire = _compose()
    assert f"\r\nList-Unsubscribe: <{URL}>,\r\n <{MAILTO}>\r\n".encode() in wire
    assert b"=?utf-8?q?=3Chttps" not in wire


def test_message_round_trips_through_the_parser() -> None:
    wire = _compose(from_name="Sam Seller", to_name="Ada Lovelace")
    message = _parse(wire)
    assert str(message["From"]) == "Sam Seller <sam@vendor.com>"
    assert str(message["To"]) == "Ada Lovelace <ada@acme.com>"
    assert str(message["Reply-To"]) == "replies@vendor.com"
    assert str(message["Subject"]) == RENDERED.subject
    assert str(message["Message-ID"]) == "<0f1e2d3c@vendor.com>"
    assert str(message["Date"]) == "Mon, 02 Nov 2026 09:00:00 +0000"
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert all(part["MIME-Version"] is None for part in parts)
    assert parts[0].get_content().replace("\r\n", "\n").rstrip("\n") == RENDERED.text
    assert parts[1].get_content().replace("\r\n", "\n") == RENDERED.html
    assert "Auto-Submitted" not in message
    assert "Bcc" not in message


def test_wire_form_is_crlf_and_7bit_with_encoded_subject() -> None:
    wire = _compose()
    assert wire.isascii()
    assert b"\n" not in wire.replace(b"\r\n", b"")
    assert max(len(line) for line in wire.split(b"\r\n")) <= 998
    subject = re.search(rb"\r\nSubject: (.*?)\r\n(?! )", wire, re.DOTALL)
    assert subject is not None
    assert subject.group(1).startswith(b"=?utf-8?")


@pytest.mark.parametrize(
    "now",
    [
        NOW,
        NOW.replace(tzinfo=UTC),
        (NOW + timedelta(hours=2)).replace(tzinfo=timezone(timedelta(hours=2))),
    ],
)
def test_date_is_utc_whatever_the_clock_gives(now: datetime) -> None:
    assert _parse(_compose(now=now))["Date"] == "Mon, 02 Nov 2026 09:00:00 +0000"


def test_reply_to_is_left_out_when_not_given() -> None:
    assert "Reply-To" not in _parse(_compose(reply_to=None))


def test_display_names_in_the_address_and_non_ascii_names() -> None:
    message = _parse(_compose(from_address='"Seller, Sam" <Sam@Vendor.com>', to_name="Zoë Ünal"))
    assert message["From"].addresses[0].display_name == "Seller, Sam"
    assert message["From"].addresses[0].addr_spec == "sam@vendor.com"
    assert message["To"].addresses[0].display_name == "Zoë Ünal"


def test_extra_headers_are_added() -> None:
    message = _parse(_compose(headers={"X-Optout-Email": "42", "Feedback-ID": "s1:c1:optout"}))
    assert message["X-Optout-Email"] == "42"
    assert message["Feedback-ID"] == "s1:c1:optout"


@pytest.mark.parametrize(
    "changes",
    [
        {"rendered": Rendered("Hi\r\nBcc: victim@evil.test", "t", "h")},
        {"rendered": Rendered("Hi\nthere", "t", "h")},
        {"rendered": Rendered("Hi\u2028there", "t", "h")},
        {"from_name": "Sam\r\nBcc: victim@evil.test"},
        {"to_name": "Ada\n"},
        {"to_address": "ada@acme.com\r\nBcc: victim@evil.test"},
        {"reply_to": "replies@vendor.com\nBcc: victim@evil.test"},
        {"message_id": "<a@b.com>\r\nBcc: victim@evil.test"},
        {"unsubscribe_url": "https://optout.example.com/u/x\r\nBcc: victim@evil.test"},
        {"unsubscribe_mailto": "mailto:u@vendor.com\nBcc: victim@evil.test"},
        {"headers": {"X-Tag": "a\r\nBcc: victim@evil.test"}},
        {"headers": {"X-Tag": "a\x00b"}},
    ],
)
def test_R34_header_injection_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="line breaks and control characters"):
        _compose(**changes)


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"to_address": "not-an-email"}, "not an email address"),
        ({"to_address": "ada@acme"}, "not an email address"),
        ({"from_address": "Sam <sam@>"}, "not an email address"),
        ({"reply_to": "replies at vendor.com"}, "not an email address"),
        ({"to_address": "zoë@acme.com"}, "SMTPUTF8"),
        ({"unsubscribe_url": "http://optout.example.com/u/x"}, "https URL"),
        ({"unsubscribe_url": "https://optout.example.com/u/a b"}, "https URL"),
        ({"unsubscribe_url": "https:///u/x"}, "https URL"),
        ({"unsubscribe_mailto": "https://optout.example.com/u/x"}, "mailto: URI"),
        ({"unsubscribe_mailto": "mailto:nobody?subject=x"}, "not an email address"),
        ({"message_id": "0f1e2d3c@vendor.com"}, "not a Message-ID"),
        ({"message_id": "<no-at-sign>"}, "not a Message-ID"),
        ({"headers": {"X Bad": "1"}}, "not a header name"),
        ({"headers": {"X:Bad": "1"}}, "not a header name"),
        ({"headers": {"list-unsubscribe": "<https://evil.test>"}}, "cannot be set"),
        ({"headers": {"From": "evil@evil.test"}}, "cannot be set"),
    ],
)
def test_R34_malformed_input_is_refused_with_the_reason(
    changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        _compose(**changes)


def test_R36_message_carries_the_cfbl_address_and_feedback_id() -> None:
    wire = _compose()
    message = _parse(wire)
    assert message.get_all("CFBL-Address") == [f"{FEEDBACK_ADDRESS}; report=arf"]
    assert message.get_all("CFBL-Feedback-ID") == [FEEDBACK_ID]
    assert f"\r\nCFBL-Feedback-ID: {FEEDBACK_ID}\r\n".encode() in wire


def test_R36_cfbl_address_may_be_at_a_subdomain_of_the_from_domain() -> None:
    message = _parse(_compose(feedback_address="FBL@Mail.Vendor.com"))
    assert message["CFBL-Address"] == "fbl@mail.vendor.com; report=arf"


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"feedback_address": "fbl@other.com"}, "From domain vendor.com"),
        ({"feedback_address": "fbl@notvendor.com"}, "From domain vendor.com"),
        ({"feedback_address": "fbl@vendor.com\r\nBcc: x@evil.test"}, "line breaks"),
        ({"feedback_address": "no address"}, "not an email address"),
        ({"feedback_id": ""}, "not a CFBL-Feedback-ID"),
        ({"feedback_id": "has space"}, "not a CFBL-Feedback-ID"),
        ({"feedback_id": "a\r\nBcc: x@evil.test"}, "not a CFBL-Feedback-ID"),
        ({"headers": {"CFBL-Address": "evil@evil.test"}}, "cannot be set"),
        ({"headers": {"cfbl-feedback-id": "x"}}, "cannot be set"),
    ],
)
def test_R36_cfbl_headers_are_checked(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        _compose(**changes)


def test_new_message_id_is_unique_under_the_sending_domain() -> None:
    ids = {new_message_id("Vendor.com") for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"<[0-9a-f]{32}@vendor\.com>", value) for value in ids)
    assert new_message_id("bücher.de").endswith("@xn--bcher-kva.de>")
    _compose(message_id=new_message_id("vendor.com"))


def test_R34_new_message_id_refuses_a_bad_domain() -> None:
    with pytest.raises(InvalidInput):
        new_message_id("not a domain")


_UTF8 = Charset("utf-8")
_UTF8.header_encoding = QP
_UTF8.body_encoding = QP


class _Verbatim(policy.Compat32):
    """Headers written as given, as compose writes them."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        return f"{name}: {value}{self.linesep}"


def _as_the_email_package_writes_it(wire: bytes, rendered: Rendered) -> bytes:
    """The same headers and bodies, serialized by `email.mime` and its generator."""
    head = wire.split(b"\r\n\r\n", 1)[0].decode("ascii")
    fields = re.split(r"\r\n(?![ \t])", head)
    pairs = [tuple(field.split(": ", 1)) for field in fields]
    boundary = re.search(r'boundary="([^"]+)"', fields[0])
    assert boundary is not None
    message = MIMEMultipart("alternative", boundary=boundary.group(1))
    for name, value in pairs[2:]:  # after Content-Type and MIME-Version, which it writes
        message[name] = value
    for content, subtype in ((rendered.text, "plain"), (rendered.html, "html")):
        part = MIMEText(content, subtype, _UTF8)  # type: ignore[arg-type]  # a Charset works
        del part["MIME-Version"]
        message.attach(part)
    return message.as_bytes(policy=_Verbatim(linesep="\r\n", max_line_length=0))


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(),
    html=st.text(),
    reply_to=st.sampled_from([None, "replies@vendor.com"]),
    thread=st.sampled_from([None, "<first-7@vendor.com>"]),
)
def test_R3_R36_the_wire_form_is_what_the_email_package_writes(
    text: str, html: str, reply_to: str | None, thread: str | None
) -> None:
    rendered = Rendered(subject="Grüße", text=text, html=html)
    wire = _compose(
        rendered=rendered,
        reply_to=reply_to,
        in_reply_to=thread,
        headers={"X-Campaign": "Q4 — Grüße"},
    )
    assert wire == _as_the_email_package_writes_it(wire, rendered)
