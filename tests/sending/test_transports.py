"""Transports against a real SMTP server (aiosmtpd) and a real folder."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from optout.errors import ConnectorError, InvalidInput
from optout.mail import transport_urls
from optout.sending import transports
from optout.sending.transports import (
    InDoubtDeliveryError,
    OutboxTransport,
    PermanentDeliveryError,
    SmtpTransport,
    TransientDeliveryError,
    Transport,
    transport_from_url,
)
from tests.sending.smtp_server import (
    HOST,
    Certificate,
    DroppingAfterData,
    Flaky,
    Recorder,
    Refusing,
    RejectingData,
    accept_login,
    free_port,
    self_signed_certificate,
    smtp_server,
)

SENDER = "sam@vendor.com"
MESSAGE = (
    b"From: sam@vendor.com\r\nTo: ada@acme.com\r\nSubject: hi\r\n\r\n"
    b"Hello\r\n.leading dot survives\r\n"
)


def _smtp(port: int, **options: object) -> SmtpTransport:
    settings: dict[str, object] = {"security": "none", "backoff": 0.01, "timeout": 5.0}
    settings.update(options)
    return SmtpTransport(HOST, port, **settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


def test_smtp_returns_the_servers_answer_to_the_message() -> None:
    with smtp_server(Recorder()) as port, _smtp(port) as transport:
        assert transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"]) == "250 OK"


def test_smtp_answer_lost_after_the_data_is_in_doubt_and_never_retried() -> None:
    handler = DroppingAfterData()
    with smtp_server(handler) as port, _smtp(port, retries=3) as transport:
        with pytest.raises(InDoubtDeliveryError, match="answer never came"):
            transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
        assert handler.data_calls == 1  # a retry could have delivered it twice
        assert transport.send(MESSAGE, sender=SENDER, recipients=["bob@acme.com"]) == "250 OK"
    assert [r.recipients for r in handler.received] == [["ada@acme.com"], ["bob@acme.com"]]


def test_smtp_delivers_over_one_reused_connection() -> None:
    handler = Recorder()
    with smtp_server(handler) as port, _smtp(port) as transport:
        for number in range(3):
            transport.send(MESSAGE, sender=SENDER, recipients=[f"p{number}@acme.com"])
    assert [r.recipients for r in handler.received] == [[f"p{n}@acme.com"] for n in range(3)]
    assert all(r.sender == SENDER for r in handler.received)
    assert handler.received[0].content.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    assert len({r.peer for r in handler.received}) == 1


def test_smtp_reconnects_at_once_when_the_server_dropped_an_idle_connection() -> None:
    handler = Recorder()
    with smtp_server(handler, timeout=0.2) as port, _smtp(port, retries=0) as transport:
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
        time.sleep(0.5)  # the server times the idle session out and closes it
        transport.send(MESSAGE, sender=SENDER, recipients=["bob@acme.com"])
    assert [r.recipients for r in handler.received] == [["ada@acme.com"], ["bob@acme.com"]]
    assert len({r.peer for r in handler.received}) == 2


def test_smtp_retries_451_with_backoff_then_delivers_once() -> None:
    handler = Flaky(failures=2)
    with smtp_server(handler) as port, _smtp(port, retries=3, backoff=0.05) as transport:
        started = time.monotonic()
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
        elapsed = time.monotonic() - started
    assert handler.data_calls == 3
    assert len(handler.received) == 1
    assert elapsed >= 0.05 + 0.1  # exponential: 0.05 then 0.1


def test_smtp_gives_up_after_its_retries_with_a_transient_error() -> None:
    handler = Flaky(failures=100)
    with (
        smtp_server(handler) as port,
        _smtp(port, retries=2) as transport,
        pytest.raises(TransientDeliveryError, match="gave up after 3 attempts") as caught,
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert caught.value.smtp_code == 451
    assert handler.data_calls == 3
    assert isinstance(caught.value, ConnectorError)


def test_smtp_550_recipient_is_permanent_and_not_retried() -> None:
    handler = Refusing(replies={"gone@acme.com": "550 5.1.1 No such user"})
    with (
        smtp_server(handler) as port,
        _smtp(port, retries=3) as transport,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["gone@acme.com"])
    assert caught.value.refused == {"gone@acme.com": (550, "5.1.1 No such user")}
    assert caught.value.smtp_code == 550
    assert handler.rcpt_calls == 1


def test_smtp_connection_survives_a_refused_recipient() -> None:
    handler = Refusing(replies={"gone@acme.com": "550 5.1.1 No such user"})
    with smtp_server(handler) as port, _smtp(port) as transport:
        with pytest.raises(PermanentDeliveryError):
            transport.send(MESSAGE, sender=SENDER, recipients=["gone@acme.com"])
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert [r.recipients for r in handler.received] == [["ada@acme.com"]]


def test_smtp_rejected_message_is_permanent_without_refused_recipients() -> None:
    handler = RejectingData()
    with (
        smtp_server(handler) as port,
        _smtp(port) as transport,
        pytest.raises(PermanentDeliveryError, match="554") as caught,
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert caught.value.refused == {}
    assert handler.data_calls == 1


def test_smtp_partial_refusal_delivers_to_the_others_and_names_the_refused() -> None:
    handler = Refusing(replies={"gone@acme.com": "550 5.1.1 No such user"})
    with (
        smtp_server(handler) as port,
        _smtp(port) as transport,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com", "gone@acme.com"])
    assert [r.recipients for r in handler.received] == [["ada@acme.com"]]
    assert set(caught.value.refused) == {"gone@acme.com"}


def test_smtp_deferred_recipient_is_retried_alone() -> None:
    handler = Refusing(replies={"slow@acme.com": "450 4.2.1 Mailbox busy"}, times=1)
    with smtp_server(handler) as port, _smtp(port) as transport:
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com", "slow@acme.com"])
    assert [r.recipients for r in handler.received] == [["ada@acme.com"], ["slow@acme.com"]]


def test_smtp_unreachable_server_is_transient() -> None:
    transport = _smtp(free_port(), retries=1)
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])


def test_smtp_starttls_and_login(certificate: Certificate) -> None:
    handler = Recorder()
    server = {
        "tls_context": certificate.server_context(),
        "require_starttls": True,
        "authenticator": accept_login("sam", "s3cret"),
        "auth_required": True,
    }
    with smtp_server(handler, **server) as port:
        trusting = certificate.client_context()
        with _smtp(
            port, security="starttls", username="sam", password="s3cret", ssl_context=trusting
        ) as transport:
            transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
        assert len(handler.received) == 1

        wrong = _smtp(
            port, security="starttls", username="sam", password="nope", ssl_context=trusting
        )
        with pytest.raises(PermanentDeliveryError, match="login refused: 535") as caught:
            wrong.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
        assert caught.value.refused == {}

        untrusting = _smtp(port, security="starttls", username="sam", password="s3cret")
        with pytest.raises(PermanentDeliveryError, match="TLS certificate not trusted"):
            untrusting.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert len(handler.received) == 1


def test_smtp_starttls_is_never_skipped_when_the_server_lacks_it() -> None:
    handler = Recorder()
    with (
        smtp_server(handler) as port,
        _smtp(port, security="starttls") as transport,
        pytest.raises(PermanentDeliveryError, match="STARTTLS"),
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert handler.received == []


def test_smtp_implicit_tls(certificate: Certificate) -> None:
    handler = Recorder()
    with (
        smtp_server(handler, ssl_context=certificate.server_context()) as port,
        _smtp(port, security="tls", ssl_context=certificate.client_context()) as transport,
    ):
        transport.send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert len(handler.received) == 1


def test_R34_smtp_send_needs_a_recipient() -> None:
    with pytest.raises(InvalidInput):
        _smtp(free_port()).send(MESSAGE, sender=SENDER, recipients=[])


OUTBOX_NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{8}\.eml$")


def test_outbox_writes_each_message_whole_under_a_unique_name(tmp_path: Path) -> None:
    folder = tmp_path / "var" / "outbox"
    transport: Transport = OutboxTransport(folder)
    messages = [MESSAGE + f"number {n}\r\n".encode() for n in range(40)]
    for message in messages:
        transport.send(message, sender=SENDER, recipients=["ada@acme.com"])
    names = sorted(os.listdir(folder))
    assert len(names) == 40
    assert all(OUTBOX_NAME.match(name) for name in names)
    assert sorted((folder / name).read_bytes() for name in names) == sorted(messages)


def test_outbox_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transports, "utcnow", lambda: datetime(2026, 11, 2, 9, 0, 0))
    ids: Iterator[str] = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr("secrets.token_hex", lambda n: next(ids))
    outbox = OutboxTransport(tmp_path)
    first = outbox.write(b"first\r\n")
    second = outbox.write(b"second\r\n")
    assert first.name == "20261102T090000.000000Z-aaaaaaaa.eml"
    assert second.name == "20261102T090000.000000Z-bbbbbbbb.eml"
    assert first.read_bytes() == b"first\r\n"
    assert second.read_bytes() == b"second\r\n"
    assert sorted(os.listdir(tmp_path)) == [first.name, second.name]


def test_outbox_failed_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_space(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.link", no_space)
    with pytest.raises(TransientDeliveryError, match="No space left"):
        OutboxTransport(tmp_path).send(MESSAGE, sender=SENDER, recipients=["ada@acme.com"])
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "smtp://sam:p%40ss%3Aw@mail.example.com:2525?security=starttls",
            ("mail.example.com", 2525, "starttls", "sam", "p@ss:w"),
        ),
        ("smtp://mail.example.com", ("mail.example.com", 587, "starttls", None, None)),
        ("smtp://localhost?security=none", ("localhost", 25, "none", None, None)),
        ("smtps://mail.example.com", ("mail.example.com", 465, "tls", None, None)),
        ("SMTPS://u@[::1]:4650?security=tls", ("::1", 4650, "tls", "u", None)),
    ],
)
def test_transport_from_smtp_url(
    url: str, expected: tuple[str, int, str, str | None, str | None]
) -> None:
    transport = transport_from_url(url)
    assert isinstance(transport, SmtpTransport)
    assert (
        transport.host,
        transport.port,
        transport.security,
        transport.username,
        transport.password,
    ) == expected


def test_transport_from_smtp_url_options() -> None:
    transport = transport_from_url(
        "smtp://h.example.com?timeout=2.5&retries=0&backoff=0.5&local_hostname=worker1.vendor.com"
    )
    assert isinstance(transport, SmtpTransport)
    assert (transport.timeout, transport.retries, transport.backoff) == (2.5, 0, 0.5)
    assert transport.local_hostname == "worker1.vendor.com"


def test_transport_from_outbox_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = transport_from_url(f"outbox://{tmp_path}/mail")
    assert isinstance(absolute, OutboxTransport)
    assert absolute.folder == tmp_path / "mail"
    monkeypatch.chdir(tmp_path)
    relative = transport_from_url("outbox:var/outbox")
    assert isinstance(relative, OutboxTransport)
    assert relative.folder == Path("var/outbox")
    assert (tmp_path / "var" / "outbox").is_dir()


BAD_URLS = [
    "",
    "mail.example.com",
    "http://mail.example.com",
    "smtp://",
    "smtp://mail.example.com:99999",
    "smtp://mail.example.com/path",
    "smtp://mail.example.com?security=ssl",
    "smtps://mail.example.com?security=starttls",
    "smtp://mail.example.com?retries=x",
    "smtp://mail.example.com?retries=-1",
    "smtp://mail.example.com?retries=1&retries=2",
    "smtp://sam:hunter2@mail.example.com?bogus=1",
    "outbox:",
    "outbox://host/folder",
    "outbox:var/outbox?x=1",
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_R34_bad_transport_urls_are_refused_without_echoing_secrets(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        transport_from_url(url)
    assert "hunter2" not in caught.value.message


@pytest.mark.parametrize("url", BAD_URLS)
def test_R34_a_mailbox_server_url_is_refused_as_the_worker_would_refuse_it(url: str) -> None:
    """A mailbox's own server address is checked when it is saved by reading it alone,
    without building the SMTP client: the same address is refused, with the same words."""
    with pytest.raises(InvalidInput) as read:
        transport_urls.read(url)
    with pytest.raises(InvalidInput) as built:
        transport_from_url(url)
    assert read.value.message == built.value.message
