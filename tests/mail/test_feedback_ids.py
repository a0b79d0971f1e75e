"""CFBL-Feedback-ID values (R36): opaque, unforgeable, readable after a key rotation."""

from __future__ import annotations

import base64

import pytest

from optout.mail.feedback_ids import FeedbackIds, InvalidFeedbackId
from optout.mail.tokens import UnsubscribeTokens

OLD = "old-feedback-secret-0123456789abcdef"
NEW = "new-feedback-secret-0123456789abcdef"


def test_R36_feedback_id_reads_back_and_verifies_for_its_email() -> None:
    ids = FeedbackIds([NEW])
    value = ids.issue(workspace_id=7, sequence_id=3, email_id=12345)
    claims = ids.read(value)
    assert (claims.workspace_id, claims.email_id) == (7, 12345)
    assert claims.verify(workspace_id=7, sequence_id=3, email_id=12345)
    assert not claims.verify(workspace_id=7, sequence_id=4, email_id=12345)
    assert not claims.verify(workspace_id=8, sequence_id=3, email_id=12345)


def test_R36_feedback_id_is_atext_and_reveals_no_id() -> None:
    ids = FeedbackIds([NEW])
    first = ids.issue(workspace_id=1, sequence_id=1, email_id=1)
    second = ids.issue(workspace_id=1, sequence_id=1, email_id=2)
    assert first.replace("-", "").replace("_", "").isalnum()
    raw_first = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    raw_second = base64.urlsafe_b64decode(second + "=" * (-len(second) % 4))
    # Only the version and the key id are shared; the rest differs wholly.
    assert raw_first[:5] == raw_second[:5]
    assert sum(a == b for a, b in zip(raw_first[5:], raw_second[5:], strict=True)) < 8
    assert (2).to_bytes(8, "big") not in raw_second


def test_R36_feedback_id_survives_key_rotation() -> None:
    value = FeedbackIds([OLD]).issue(workspace_id=2, sequence_id=5, email_id=99)
    rotated = FeedbackIds([NEW, OLD])
    claims = rotated.read(value)
    assert claims.verify(workspace_id=2, sequence_id=5, email_id=99)
    assert rotated.read(rotated.issue(workspace_id=2, sequence_id=5, email_id=99)).email_id == 99
    with pytest.raises(InvalidFeedbackId):
        FeedbackIds([NEW]).read(value)  # the old key is gone: unreadable


def test_R36_forged_or_altered_feedback_ids_are_refused() -> None:
    ids = FeedbackIds([NEW])
    value = ids.issue(workspace_id=2, sequence_id=5, email_id=99)
    raw = bytearray(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    raw[-1] ^= 1  # the tag: still readable, no longer verifies
    altered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    assert not ids.read(altered).verify(workspace_id=2, sequence_id=5, email_id=99)
    for forged in ("", "x" * 50, "not an id", value[:-4], value + "AAAA", "A" * 200):
        with pytest.raises(InvalidFeedbackId):
            ids.read(forged)
    with pytest.raises(InvalidFeedbackId):
        FeedbackIds(["somebody-elses-secret-0123456789"]).read(value)


def test_R36_whitespace_inside_a_returned_feedback_id_is_ignored() -> None:
    ids = FeedbackIds([NEW])
    value = ids.issue(workspace_id=2, sequence_id=5, email_id=99)
    assert ids.read(f" {value[:20]}\r\n {value[20:]} ").email_id == 99


def test_R36_unsubscribe_tokens_carry_feedback_ids_of_the_same_keys() -> None:
    value = UnsubscribeTokens([NEW]).feedback_ids.issue(workspace_id=1, sequence_id=2, email_id=3)
    assert FeedbackIds([NEW]).read(value).verify(workspace_id=1, sequence_id=2, email_id=3)
