"""The `CFBL-Feedback-ID` of every email (RFC 9477; SPEC R36): an opaque value a
mailbox provider returns in its complaint report, even when it redacts the
recipient, that finds the email again and cannot be forged.

The value carries the email and workspace ids encrypted as one AES block (a keyed
pseudorandom permutation of a value that is never repeated, so it reveals
nothing) and an HMAC-SHA256 over the workspace, sequence and email ids. Reading
it decrypts the ids; the caller then checks the HMAC against the sequence the
email really belongs to (`verify`), so an altered or invented value finds
nobody. It is made from the link keys, like the unsubscribe tokens: the first
key issues, every key reads, so a key rotation keeps old mail answerable.
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

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from optout.errors import InvalidInput

_VERSION = 1
_IDS = struct.Struct(">QQ")  # email id, workspace id: exactly one AES block
_SIGNED = struct.Struct(">BQQQ")  # version, workspace id, sequence id, email id
_TAG_BYTES = 16
_RAW = struct.Struct(f">B4s{_IDS.size}s{_TAG_BYTES}s")  # version, key id, block, tag
_MAX_ID = 2**63 - 1
_SHAPE = re.compile(r"[A-Za-z0-9_-]{40,80}")


class InvalidFeedbackId(InvalidInput):
    """Not a CFBL-Feedback-ID issued with any of the current keys."""

    code = "invalid_feedback_id"


@dataclass(frozen=True)
class FeedbackClaims:
    """What a readable value says; `verify` before trusting it."""

    workspace_id: int
    email_id: int
    _tag: bytes = field(repr=False)
    _mac_key: bytes = field(repr=False, compare=False)

    def verify(self, *, workspace_id: int, sequence_id: int, email_id: int) -> bool:
        """Whether the value was issued for exactly this workspace, sequence and email."""
        expected = _tag(self._mac_key, workspace_id, sequence_id, email_id)
        return hmac.compare_digest(expected, self._tag)


@dataclass(frozen=True)
class _Key:
    id: bytes
    cipher: Cipher[modes.ECB]
    mac_key: bytes


class FeedbackIds:
    """Issues and reads CFBL-Feedback-ID values; `keys` are the link secrets, newest first."""

    def __init__(self, keys: Sequence[str]) -> None:
        secrets = [key.strip() for key in keys if key.strip()]
        if not secrets:
            raise InvalidInput("feedback ids need at least one secret key")
        self._keys = [_derive(secret) for secret in secrets]
        self._by_id = {key.id: key for key in reversed(self._keys)}

    def issue(self, *, workspace_id: int, sequence_id: int, email_id: int) -> str:
        """An opaque value of letters, digits, `-` and `_` (RFC 5322 atext)."""
        for name, value in (
            ("workspace_id", workspace_id),
            ("sequence_id", sequence_id),
            ("email_id", email_id),
        ):
            if not 0 < value <= _MAX_ID:
                raise InvalidInput(f"{name} must be a positive id, not {value!r}")
        key = self._keys[0]
        encryptor = key.cipher.encryptor()
        block = encryptor.update(_IDS.pack(email_id, workspace_id)) + encryptor.finalize()
        tag = _tag(key.mac_key, workspace_id, sequence_id, email_id)
        raw = _RAW.pack(_VERSION, key.id, block, tag)
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")

    def read(self, value: str) -> FeedbackClaims:
        """The ids a value carries, or raise InvalidFeedbackId; whitespace is ignored."""
        compact = re.sub(r"\s+", "", value or "")
        if not _SHAPE.fullmatch(compact):
            raise InvalidFeedbackId("not a feedback id of ours")
        padded = compact + "=" * (-len(compact) % 4)
        try:
            raw = base64.urlsafe_b64decode(padded)
            version, key_id, block, tag = _RAW.unpack(raw)
        except (binascii.Error, ValueError, struct.error) as exc:
            raise InvalidFeedbackId("not a feedback id of ours") from exc
        key = self._by_id.get(key_id)
        if version != _VERSION or key is None:
            raise InvalidFeedbackId("not a feedback id of ours")
        decryptor = key.cipher.decryptor()
        email_id, workspace_id = _IDS.unpack(decryptor.update(block) + decryptor.finalize())
        if not (0 < email_id <= _MAX_ID and 0 < workspace_id <= _MAX_ID):
            raise InvalidFeedbackId("not a feedback id of ours")
        return FeedbackClaims(workspace_id, email_id, tag, key.mac_key)


def _derive(secret: str) -> _Key:
    """Independent sub-keys from one link secret: a key id, the AES key, the HMAC key."""
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=4 + 16 + 32,
        salt=None,
        info=b"optout cfbl feedback id v1",
    ).derive(secret.encode("utf-8"))
    # One block, never the same plaintext twice (email ids are unique): ECB is the
    # plain block cipher here, with none of its many-block weakness.
    cipher = Cipher(algorithms.AES(material[4:20]), modes.ECB())
    return _Key(id=material[:4], cipher=cipher, mac_key=material[20:])


def _tag(key: bytes, workspace_id: int, sequence_id: int, email_id: int) -> bytes:
    signed = _SIGNED.pack(_VERSION, workspace_id, sequence_id, email_id)
    return hmac.new(key, signed, hashlib.sha256).digest()[:_TAG_BYTES]
