"""RFC 9477 headers on what the worker really sends (R36): every email carries the
CFBL-Address and a CFBL-Feedback-ID that names it, both under the DKIM signature."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dkim  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.engine import Engine

from optout.config import Settings
from optout.mail.dkim import DkimSigner
from optout.mail.tokens import UnsubscribeTokens
from optout.sending.transports import OutboxTransport
from optout.sending.worker import Mailer, run_once
from tests.sending.test_worker import KEYS, T0, _build

SELECTOR = "s1"
DOMAIN = "acme-sales.com"  # the mailbox of the test world: From, d= and CFBL-Address align


def _signer(key: rsa.RSAPrivateKey) -> DkimSigner:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimSigner(SELECTOR, DOMAIN, pem)


def _dns(key: rsa.RSAPrivateKey):  # type: ignore[no-untyped-def]
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return lambda name, timeout=5: record if name.startswith(SELECTOR.encode()) else None


def _header(raw: bytes, name: str) -> list[str]:
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", raw.split(b"\r\n\r\n", 1)[0]).decode()
    return [
        line.split(":", 1)[1].strip()
        for line in unfolded.split("\r\n")
        if line.lower().startswith(name.lower() + ":")
    ]


def test_R36_sent_emails_carry_cfbl_headers_covered_by_dkim(
    fresh_engine: Engine, tmp_path: Path
) -> None:
    ids = _build(fresh_engine)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = Settings(database_url="unused://", secret_keys=KEYS, inbound_local_part="fbl")
    mailer = Mailer(settings, OutboxTransport(tmp_path), _signer(key))
    assert run_once(fresh_engine, mailer=mailer, now=T0).sent == 2
    feedback_ids = UnsubscribeTokens(KEYS).feedback_ids
    seen = set()
    for path in sorted(tmp_path.glob("*.eml")):
        raw = path.read_bytes()
        assert dkim.verify(raw, dnsfunc=_dns(key))
        assert _header(raw, "CFBL-Address") == [f"fbl@{DOMAIN}; report=arf"]
        [value] = _header(raw, "CFBL-Feedback-ID")
        signature = re.sub(r"\s+", "", _header(raw, "DKIM-Signature")[0])
        tags = dict(tag.split("=", 1) for tag in signature.split(";") if tag)
        names = tags["h"].lower().split(":")
        assert tags["d"] == DOMAIN
        assert {"cfbl-address", "cfbl-feedback-id"} <= set(names)
        claims = feedback_ids.read(value)
        assert claims.workspace_id == ids["ws"]
        assert claims.verify(
            workspace_id=ids["ws"], sequence_id=ids["seq"], email_id=claims.email_id
        )
        seen.add(claims.email_id)
    assert len(seen) == 2  # one id per email
