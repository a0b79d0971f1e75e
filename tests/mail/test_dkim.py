"""DKIM: messages are signed over the unsubscribe headers (R3) and verify against the key."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import dkim  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from optout.errors import InvalidInput
from optout.mail.dkim import DkimSigner
from tests.mail.test_compose import FEEDBACK_ADDRESS, FEEDBACK_ID, MAILTO, URL, _compose

SELECTOR = "s2026"
DOMAIN = "vendor.com"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def signer(key: rsa.RSAPrivateKey) -> DkimSigner:
    pem = key.private_bytes(  # PKCS#8, which dkimpy alone cannot read
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimSigner(SELECTOR, DOMAIN, pem)


def _dns(key: rsa.RSAPrivateKey) -> Callable[..., bytes | None]:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return dnsfunc


def _tags(signed: bytes) -> dict[str, str]:
    header = re.match(rb"DKIM-Signature: (.*?)\r\n(?![ \t])", signed, re.DOTALL)
    assert header is not None, "the signature is the first header"
    value = re.sub(r"\s+", "", header.group(1).decode())
    return dict(tag.split("=", 1) for tag in value.split(";") if tag)


def test_R3_message_has_list_unsubscribe_headers_covered_by_dkim(
    key: rsa.RSAPrivateKey, signer: DkimSigner
) -> None:
    signed = _compose(dkim=signer)
    assert dkim.verify(signed, dnsfunc=_dns(key))
    tags = _tags(signed)
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
    )
    signed_headers = tags["h"].lower().split(":")
    for name in (
        "from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
        "list-unsubscribe-post", "mime-version", "content-type",
    ):  # fmt: skip
        assert name in signed_headers
    # Oversigned: listed once more than present, so another copy cannot be added.
    assert signed_headers.count("list-unsubscribe") == 2
    assert signed_headers.count("list-unsubscribe-post") == 2
    assert signed_headers.count("from") == 2


def test_R36_cfbl_headers_are_covered_by_the_dkim_signature(
    key: rsa.RSAPrivateKey, signer: DkimSigner
) -> None:
    signed = _compose(dkim=signer)
    assert dkim.verify(signed, dnsfunc=_dns(key))
    tags = _tags(signed)
    signed_headers = tags["h"].lower().split(":")
    # RFC 9477: both in h=, with d= the From domain, which the CFBL-Address sits at.
    assert signed_headers.count("cfbl-address") == 2  # oversigned: no second one added
    assert signed_headers.count("cfbl-feedback-id") == 2
    assert tags["d"] == DOMAIN == FEEDBACK_ADDRESS.rsplit("@", 1)[1]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(FEEDBACK_ADDRESS.encode(), b"fbl@evil.test"),
        lambda m: m.replace(FEEDBACK_ID.encode(), FEEDBACK_ID[::-1].encode()),
        lambda m: m.replace(b"\r\nDate:", b"\r\nCFBL-Address: fbl@evil.test\r\nDate:"),
    ],
    ids=["address", "feedback-id", "added-address"],
)
def test_R36_tampering_with_cfbl_headers_breaks_the_signature(
    key: rsa.RSAPrivateKey, signer: DkimSigner, tamper: Callable[[bytes], bytes]
) -> None:
    signed = _compose(dkim=signer)
    tampered = tamper(signed)
    assert tampered != signed
    assert not dkim.verify(tampered, dnsfunc=_dns(key))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda m: m.replace(URL.encode(), b"https://evil.test/u/x"),
        lambda m: m.replace(MAILTO.encode(), b"mailto:evil@evil.test"),
        lambda m: m.replace(
            b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
            b"List-Unsubscribe-Post: List-Unsubscribe=Nope\r\n",
        ),
        lambda m: m.replace(b"\r\nDate:", b"\r\nList-Unsubscribe: <https://evil.test>\r\nDate:"),
        lambda m: m.replace(b"Hi Ada", b"Hi Bob"),
    ],
    ids=["https-uri", "mailto-uri", "one-click", "added-list-unsubscribe", "body"],
)
def test_R3_tampering_breaks_the_signature(
    key: rsa.RSAPrivateKey, signer: DkimSigner, tamper: Callable[[bytes], bytes]
) -> None:
    signed = _compose(dkim=signer)
    tampered = tamper(signed)
    assert tampered != signed
    assert not dkim.verify(tampered, dnsfunc=_dns(key))


def test_relaxed_canonicalization_survives_whitespace_changes(
    key: rsa.RSAPrivateKey, signer: DkimSigner
) -> None:
    signed = _compose(dkim=signer)
    refolded = signed.replace(b"List-Unsubscribe-Post: List", b"list-unsubscribe-post:   List")
    assert refolded != signed
    assert dkim.verify(refolded, dnsfunc=_dns(key))


def test_dns_record_publishes_the_public_key(key: rsa.RSAPrivateKey, signer: DkimSigner) -> None:
    assert signer.dns_name == f"{SELECTOR}._domainkey.{DOMAIN}"
    assert signer.dns_record().encode() == _dns(key)(f"{signer.dns_name}.".encode())


def test_signer_from_files(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    signer = DkimSigner.from_files(SELECTOR, DOMAIN, path)
    assert dkim.verify(signer.sign(_compose()), dnsfunc=_dns(key))
    with pytest.raises(InvalidInput, match="cannot read DKIM key"):
        DkimSigner.from_files(SELECTOR, DOMAIN, tmp_path / "missing.pem")


@pytest.mark.parametrize(
    ("selector", "domain", "pem", "complaint"),
    [
        (SELECTOR, DOMAIN, b"not a key", "not an unencrypted PEM private key"),
        (
            SELECTOR,
            DOMAIN,
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "must be an RSA key",
        ),
        ("bad selector", DOMAIN, None, "not a DKIM selector"),
        (SELECTOR, "not a domain", None, "not a DKIM signing domain"),
    ],
)
def test_R34_bad_keys_and_names_are_refused(
    key: rsa.RSAPrivateKey, selector: str, domain: str, pem: bytes | None, complaint: str
) -> None:
    good = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(InvalidInput, match=complaint):
        DkimSigner(selector, domain, pem or good)
