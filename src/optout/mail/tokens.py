"""Signed unsubscribe tokens: the `/u/<token>` link in every email (SPEC R3).

A token is a Fernet token (AES-128-CBC + HMAC-SHA256) over a small binary
payload: workspace id, person id and a keyed digest of the address it was sent
to. It is encrypted and authenticated, so it reveals no address and no id, and
any change to it makes it unreadable. Fernet does keep its issue time in clear;
nothing else is visible.

Keys rotate without breaking old mail: the first secret signs, every secret
verifies, so put a new secret first and keep the old ones as long as mail
signed with them may still be clicked.

Tokens never expire, on purpose: an unsubscribe link must work in a mail read
years later (CAN-SPAM, RFC 8058). Replaying a token only repeats the opt-out of
the person it was issued for, which is idempotent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from optout.errors import InvalidInput
from optout.mail.feedback_ids import FeedbackIds
from optout.normalize import normalize_email

_VERSION = 1
# version, key id, workspace id, person id, address digest
_PAYLOAD = struct.Struct(">B4sQQ16s")
_MAX_ID = 2**63 - 1
# A real token is about 140 characters; anything far longer is not worth decoding.
MAX_TOKEN_LENGTH = 512
# What `issue` writes: unpadded URL-safe base64. Checked before decoding, because the
# base64 decoder alone would also take `+` for `-`, `/` for `_`, and skip stray `=` or
# spaces: one token must have exactly one spelling.
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]+")


class InvalidToken(InvalidInput):
    """The token was not issued by us with any of the current keys, or was altered."""

    code = "invalid_token"


@dataclass(frozen=True)
class Claims:
    """What a valid token says: whom to opt out, and a digest of the address it was sent to."""

    workspace_id: int
    person_id: int
    email_digest: bytes
    _digest_key: bytes = field(repr=False, compare=False)

    def matches(self, email: str) -> bool:
        """Whether `email` (in any spelling) is the address the token was issued for."""
        try:
            digest = _digest(self._digest_key, email)
        except InvalidInput:
            return False
        return hmac.compare_digest(digest, self.email_digest)


@dataclass(frozen=True)
class _Key:
    id: bytes
    fernet: fernet.Fernet
    digest_key: bytes


class UnsubscribeTokens:
    """Issues and reads unsubscribe tokens; `keys` are secrets, newest (signing) first.

    The same link keys make the CFBL-Feedback-ID of every email (`feedback_ids`, R36),
    so whatever reads our tokens can also recognize our complaint reports.
    """

    def __init__(self, keys: Sequence[str]) -> None:
        secrets = [key.strip() for key in keys if key.strip()]
        if not secrets:
            raise InvalidInput("unsubscribe tokens need at least one secret key")
        self._keys = [_derive(secret) for secret in secrets]
        self._by_id = {key.id: key for key in reversed(self._keys)}
        self._fernet = fernet.MultiFernet([key.fernet for key in self._keys])
        self.feedback_ids = FeedbackIds(secrets)

    def issue(self, *, workspace_id: int, person_id: int, email: str) -> str:
        """A URL-safe token (letters, digits, `-` and `_`, no padding) for this person."""
        for name, value in (("workspace_id", workspace_id), ("person_id", person_id)):
            if not 0 < value <= _MAX_ID:
                raise InvalidInput(f"{name} must be a positive id, not {value!r}")
        signer = self._keys[0]
        payload = _PAYLOAD.pack(
            _VERSION, signer.id, workspace_id, person_id, _digest(signer.digest_key, email)
        )
        return self._fernet.encrypt(payload).decode("ascii").rstrip("=")

    def read(self, token: str) -> Claims:
        """The claims of a token issued with any of the keys, or raise InvalidToken."""
        if len(token) > MAX_TOKEN_LENGTH or not _TOKEN_SHAPE.fullmatch(token):
            raise InvalidToken("this unsubscribe link is not valid")
        padded = (token + "=" * (-len(token) % 4)).encode("ascii")
        try:
            raw = base64.urlsafe_b64decode(padded)
        except (binascii.Error, ValueError) as exc:
            raise InvalidToken("this unsubscribe link is not valid") from exc
        if base64.urlsafe_b64encode(raw) != padded:  # spare low bits set: not our spelling
            raise InvalidToken("this unsubscribe link is not valid")
        try:
            payload = self._fernet.decrypt(padded)
            version, key_id, workspace_id, person_id, digest = _PAYLOAD.unpack(payload)
        except (fernet.InvalidToken, struct.error) as exc:
            raise InvalidToken("this unsubscribe link is not valid") from exc
        key = self._by_id.get(key_id)
        if version != _VERSION or key is None:
            raise InvalidToken("this unsubscribe link is not valid")
        return Claims(workspace_id, person_id, digest, key.digest_key)


def _derive(secret: str) -> _Key:
    """Independent sub-keys from one secret: a key id, the Fernet key, the digest key."""
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=4 + 32 + 32,
        salt=None,
        info=b"optout unsubscribe token v1",
    ).derive(secret.encode("utf-8"))
    return _Key(
        id=material[:4],
        fernet=fernet.Fernet(base64.urlsafe_b64encode(material[4:36])),
        digest_key=material[36:],
    )


def _digest(key: bytes, email: str) -> bytes:
    address = normalize_email(email).address
    return hmac.new(key, address.encode("utf-8"), hashlib.sha256).digest()[:16]
