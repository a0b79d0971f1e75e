"""DKIM signing of outbound mail (RFC 6376; SPEC R3 needs the unsubscribe headers covered,
R36 and RFC 9477 the CFBL headers).

Relaxed/relaxed canonicalization and rsa-sha256. Headers that identify the
message or carry the unsubscribe are signed once more than they occur
("oversigned"), so a relay cannot add a second From or List-Unsubscribe
without breaking the signature.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from optout.errors import InvalidInput

SIGNED_HEADERS = (
    "from", "to", "cc", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
    "list-unsubscribe-post", "mime-version", "content-type", "content-transfer-encoding",
    "feedback-id", "cfbl-address", "cfbl-feedback-id",
)  # fmt: skip
"""Signed when present (RFC 6376 5.4.1, RFC 8058 section 4, RFC 9477 section 3.1.3)."""

OVERSIGNED_HEADERS = (
    "from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
    "list-unsubscribe-post", "cfbl-address", "cfbl-feedback-id",
)  # fmt: skip
"""Listed once more than they occur, which seals them against being added later."""

MIN_KEY_BITS = 1024  # what verifiers accept (RFC 8301); 2048 is the recommended size
_SELECTOR = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
_DOMAIN = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")


class DkimSigner:
    """Signs messages for one `d=` domain with one selector's RSA key."""

    def __init__(self, selector: str, domain: str, private_key_pem: bytes) -> None:
        self.selector = selector.strip().lower()
        self.domain = domain.strip().rstrip(".").lower()
        if not _SELECTOR.match(self.selector):
            raise InvalidInput(f"not a DKIM selector: {selector!r}")
        if not _DOMAIN.match(self.domain):
            raise InvalidInput(f"not a DKIM signing domain (ASCII form expected): {domain!r}")
        self._key, public_der = _load_key(private_key_pem)
        self._public_b64 = base64.b64encode(public_der).decode("ascii")

    @classmethod
    def from_files(cls, selector: str, domain: str, key_path: Path | str) -> DkimSigner:
        try:
            pem = Path(key_path).read_bytes()
        except OSError as exc:
            raise InvalidInput(f"cannot read DKIM key {key_path}: {exc.strerror}") from exc
        return cls(selector, domain, pem)

    def sign(self, message: bytes) -> bytes:
        """Return the message with its DKIM-Signature header prepended."""
        try:
            signature: bytes = dkim.sign(
                message,
                self.selector.encode("ascii"),
                self.domain.encode("ascii"),
                self._key,
                canonicalize=(b"relaxed", b"relaxed"),
                signature_algorithm=b"rsa-sha256",
                include_headers=signed_header_list(message),
                linesep=b"\r\n",
            )
        except dkim.DKIMException as exc:
            raise InvalidInput(f"cannot DKIM-sign this message: {exc}") from exc
        return signature + message

    @property
    def dns_name(self) -> str:
        """Where the public key is published: `<selector>._domainkey.<domain>`."""
        return f"{self.selector}._domainkey.{self.domain}"

    def dns_record(self) -> str:
        """The TXT record to publish at `dns_name`."""
        return f"v=DKIM1; k=rsa; p={self._public_b64}"

    def __repr__(self) -> str:
        return f"DkimSigner(selector={self.selector!r}, domain={self.domain!r})"


def signed_header_list(message: bytes) -> list[bytes]:
    """The `h=` list for a message: present headers of SIGNED_HEADERS, plus the oversigned."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(message)
    present = Counter(name.lower() for name in headers)
    names: list[bytes] = []
    for name in SIGNED_HEADERS:
        count = present[name] + (1 if name in OVERSIGNED_HEADERS else 0)
        names += [name.encode("ascii")] * count
    return names


def _load_key(pem: bytes) -> tuple[bytes, bytes]:
    """Load an unencrypted PEM RSA key: (PKCS#1 PEM, which dkimpy reads; public key DER)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise InvalidInput("DKIM key must be an RSA key (rsa-sha256)")
    if key.key_size < MIN_KEY_BITS:
        raise InvalidInput(f"DKIM key has {key.key_size} bits; at least {MIN_KEY_BITS} needed")
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public
