"""A real SMTP server (aiosmtpd) on 127.0.0.1 for transport tests, and handlers that misbehave."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: list[str]
    content: bytes
    peer: Any  # (host, port) of the client: one per connection


@dataclass
class Recorder:
    """Accepts everything and keeps what it got; subclasses override the replies."""

    received: list[Received] = field(default_factory=list)
    rcpt_calls: int = 0
    data_calls: int = 0

    def rcpt_reply(self, address: str) -> str:
        return "250 OK"

    def data_reply(self) -> str:
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        self.rcpt_calls += 1
        reply = self.rcpt_reply(address)
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.data_calls += 1
        reply = self.data_reply()
        if reply.startswith("250"):
            content = envelope.original_content or b""
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), content, session.peer)
            )
        return reply


@dataclass
class Flaky(Recorder):
    """Answers DATA with `451` the first `failures` times."""

    failures: int = 2

    def data_reply(self) -> str:
        if self.data_calls <= self.failures:
            return "451 4.3.0 Try again later"
        return "250 OK"


@dataclass
class Refusing(Recorder):
    """Refuses the given recipients with the given reply (`times` times, then accepts)."""

    replies: dict[str, str] = field(default_factory=dict)
    times: int = 1_000_000
    _refusals: dict[str, int] = field(default_factory=dict)

    def rcpt_reply(self, address: str) -> str:
        if address in self.replies and self._refusals.get(address, 0) < self.times:
            self._refusals[address] = self._refusals.get(address, 0) + 1
            return self.replies[address]
        return "250 OK"


@dataclass
class RejectingData(Recorder):
    def data_reply(self) -> str:
        return "554 5.7.1 Message rejected as spam"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def smtp_server(handler: Recorder, **smtp_parameters: Any) -> Iterator[int]:
    """Run `handler` behind aiosmtpd on 127.0.0.1; yields the port."""
    controller = Controller(handler, hostname=HOST, port=free_port(), **smtp_parameters)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


def accept_login(user: str, password: str) -> Any:
    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # False: the server answers 535

    return authenticator


@dataclass(frozen=True)
class Certificate:
    cert_pem: bytes
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.cert_pem.decode())


def self_signed_certificate(folder: Path) -> Certificate:
    """A certificate for 127.0.0.1 (as an IP SAN), which a client context can be told to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert_pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Certificate(cert_pem, cert_path, key_path)


@dataclass
class DroppingAfterData(Recorder):
    """Keeps the message, then drops the connection instead of answering (the first
    `times` times): the client cannot know whether it was accepted."""

    times: int = 1

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if self.data_calls <= self.times and server.transport is not None:
            server.transport.close()
        return reply
